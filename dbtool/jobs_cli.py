"""`dbtool jobs ...`: the chatbot's scheduled jobs, each a few lines over dbtool.jobs."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any, Callable

import click

from .cli_common import EPILOG, SECONDS, database_url_option, say, setting_option, target_for
from .errors import UsageError

JOBS_EPILOG = """A second run of the same job waits --lock-wait seconds for the first, then
skips (exit 1, naming the run that holds the job's lock); different jobs run side by side.
A table or row lock held by another session is waited for --lock-timeout seconds, then the
job stops (exit 1, nothing done), naming who holds it.

""" + EPILOG


def job_options(fn: Callable) -> Callable:
    fn = setting_option("DBTOOL_DATA_LOCK_TIMEOUT", "--lock-timeout", metavar="SECONDS", show_default="10",
                        help="Seconds to wait for a table or row lock held by another session, then stop "
                             "(exit 1, nothing done) naming who holds it.")(fn)
    fn = click.option("--lock-wait", type=SECONDS, default=5, show_default=True, metavar="SECONDS",
                      help="Seconds to wait for another run of this job before skipping (exit 1).")(fn)
    fn = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
                      help="json: one object (format dbtool.jobs/1) on stdout, for a scheduler.")(fn)
    return database_url_option(fn)


@click.group(epilog="""Examples:

\b
  dbtool jobs expire-sessions
  dbtool jobs roll-up --day 2025-05-01 --format json
  dbtool jobs purge --older-than 180d --dry-run

Each job is idempotent, runs in one transaction under a lock of its own and
reports counts. README "Scheduled jobs" has cron and systemd timer examples.

""" + EPILOG)
def jobs():
    """Scheduled jobs: expire sessions, daily roll-up, retention purge (LGPD)."""


def _run(job: str, database_url: str | None, fmt: str, lock_wait: float,
         work: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """Run `work` under the job's lock; the JSON document (also printed with --format json)."""
    from . import jobs as jobs_lib

    target = target_for(database_url)
    base: dict[str, Any] = {"format": "dbtool.jobs/1", "job": job, "database": target.display()}
    started = time.perf_counter()
    try:
        result = jobs_lib.run(target, job, work, wait=lock_wait)
    except jobs_lib.JobBusy as exc:
        if fmt == "json":
            click.echo(json.dumps({**base, "status": "skipped", "holder": exc.holder}, indent=1))
        raise
    doc = {**base, "status": "done", **result, "seconds": round(time.perf_counter() - started, 3)}
    if fmt == "json":
        click.echo(json.dumps(doc, indent=1, default=str))
    return doc


def _lines(counts: dict[str, int], what: str) -> None:
    for table, n in counts.items():
        click.echo(f"{table:40} {n:>8} row(s) {what}")


@jobs.command("expire-sessions", epilog="""Example: dbtool jobs expire-sessions --format json

Closes (is_active false, state CLOSED) every active session whose 24-hour TTL has
passed. Rows stay: `jobs purge` removes old ones.

""" + JOBS_EPILOG)
@job_options
def expire_sessions(database_url, fmt, lock_wait):
    """Close the chatbot sessions whose 24-hour TTL has passed."""
    from . import jobs as jobs_lib

    doc = _run("expire-sessions", database_url, fmt, lock_wait,
               lambda conn: {"counts": jobs_lib.expire_sessions(conn)})
    if fmt == "text":
        _lines(doc["counts"], "expired (closed)")


class Day(click.ParamType):
    """A calendar day YYYY-MM-DD, not after today (UTC)."""

    name = "day"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            day = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not a day (YYYY-MM-DD)", param, ctx)
        if day > dt.datetime.now(dt.timezone.utc).date():
            self.fail(f"{value!r} is in the future (UTC)", param, ctx)
        return day


@jobs.command("roll-up", epilog="""Example: dbtool jobs roll-up --day 2025-05-01 --format json

Computes the day's row of chatbot.metrics_daily (midnight to midnight UTC) from
messages, sessions and qualified leads, and stores it (an upsert: running it again
for the same day rewrites the same values). Without --day: yesterday (UTC).

""" + JOBS_EPILOG)
@job_options
@click.option("--day", type=Day(), metavar="YYYY-MM-DD", help="The day to roll up [default: yesterday, UTC].")
def roll_up(database_url, fmt, lock_wait, day):
    """Roll one day up into chatbot.metrics_daily (idempotent)."""
    from . import jobs as jobs_lib

    day = day or (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).date()
    doc = _run("roll-up", database_url, fmt, lock_wait, lambda conn: {
        "day": day.isoformat(), "counts": {"chatbot.metrics_daily": 1}, "metrics": jobs_lib.roll_up(conn, day=day)})
    if fmt == "text":
        click.echo(f"chatbot.metrics_daily {day.isoformat()}: " + ", ".join(
            f"{name} {value if value is not None else '-'}" for name, value in doc["metrics"].items()))


class Age(click.ParamType):
    """A retention age: 36h, 90d, 26w; at least a session's 24-hour TTL."""

    name = "age"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.timedelta:
        from .jobs import parse_age

        if isinstance(value, dt.timedelta):
            return value
        try:
            return parse_age(str(value))
        except ValueError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


@jobs.command("purge", epilog="""Examples:

\b
  dbtool jobs purge --older-than 180d --dry-run
  dbtool jobs purge --older-than 26w --format json

Retention rule: a chatbot session that is over (closed or expired) and has had no
activity for --older-than goes, with its messages, car interactions and hand-offs
(every table that depends on it through ON DELETE CASCADE, derived from the
[personal data] column tags and the foreign keys), unless one of those rows is
younger. Qualified leads stay (they lose the session reference); users stay (use
`dbtool erase-user`). In the DuckDB analytics file (--duckdb, else
var/analytics.duckdb when it exists) the same sessions' rows go, in the same run.
Prints rows per table and store; --dry-run counts and changes nothing.

""" + JOBS_EPILOG)
@job_options
@click.option("--older-than", "age", type=Age(), required=True, metavar="AGE",
              help="Retention: 36h, 90d, 26w (hours, days, weeks); at least 24h.")
@click.option("--dry-run", is_flag=True, help="Count what would go, in both stores; change nothing.")
@click.option("--duckdb", "duckdb_path", type=click.Path(dir_okay=False, path_type=Path), envvar="DBTOOL_DUCKDB_PATH",
              show_envvar=True, help="The DuckDB analytics file [default: var/analytics.duckdb, when it exists].")
@click.option("--no-duckdb", is_flag=True, help="Leave the DuckDB file alone (the next analytics sync cleans it).")
@click.pass_context
def purge(ctx, database_url, fmt, lock_wait, age, dry_run, duckdb_path, no_duckdb):
    """Apply the retention rule to chatbot sessions, messages and analytics rows."""
    from . import jobs as jobs_lib
    from .analytics.db import connect, default_path

    given = ctx.get_parameter_source("duckdb_path") == click.core.ParameterSource.COMMANDLINE
    if no_duckdb and given:
        raise UsageError("give --duckdb or --no-duckdb, not both")
    file = Path(duckdb_path) if duckdb_path else default_path()
    if given and not file.is_file():
        raise UsageError(f"--duckdb {file}: no such file")
    duck = None
    if no_duckdb:
        store = "DuckDB: not purged (--no-duckdb); the next `dbtool analytics sync` removes the rows there"
    elif not file.is_file():
        store = f"DuckDB: no DuckDB analytics file at {file}, nothing to purge there"
    else:
        duck, store = connect(file, create=False), f"DuckDB: {file}"  # opened (or refused) before any purge
    try:
        doc = _run("purge", database_url, fmt, lock_wait, lambda conn: _purge_doc(
            jobs_lib.purge(conn, older_than=age, dry_run=dry_run, duck=duck), ctx.params, dry_run, duck, file))
    finally:
        if duck is not None:
            duck.close()
    if fmt == "text":
        _lines(doc["counts"], "would be purged" if dry_run else "purged")
        for table, n in doc["detached"].items():
            click.echo(f"{table:40} {n:>8} row(s) kept, detached: {doc['kept'].get(table, '')}")
        for table, why in doc["kept"].items():
            if table not in doc["detached"]:
                say(f"kept: {table}: {why}")
        in_duck = sum(n for table, n in doc["counts"].items() if table.startswith("duckdb."))
        pg = sum(doc["counts"].values()) - in_duck
        verb = "would be purged (dry run, nothing changed)" if dry_run else "purged"
        say(f"retention {doc['older_than']}: cutoff {doc['cutoff']}; {doc['sessions']} session(s) {verb}")
        say(f"PostgreSQL: {pg} row(s) {verb}")
        say(f"{store}: {in_duck} row(s) {verb}" if duck is not None else store)


def _purge_doc(out, params: dict[str, Any], dry_run: bool, duck, file: Path) -> dict[str, Any]:
    return {"dry_run": dry_run, "older_than": _age_text(params["age"]), "cutoff": out.cutoff.isoformat(),
            "counts": out.counts, "detached": out.detached, "kept": out.kept, "sessions": len(out.sessions),
            "duckdb": str(file) if duck is not None else None}


def _age_text(age: dt.timedelta) -> str:
    hours = int(age.total_seconds() // 3600)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"
