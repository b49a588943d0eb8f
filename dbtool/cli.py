"""The dbtool command line: each command a few lines over the library.

Exit codes: 0 clean, 1 drift or a failed check, 2 usage error, 3 cannot connect or refused.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import click

from . import paths, settings
from .cli_common import (
    EPILOG,
    database_options,
    database_url_option,
    fleet_options,
    lock_options,
    say,
    setting_option,
    target_for,
)
from .errors import EXIT_CONNECT, EXIT_FINDINGS, EXIT_USAGE, DbtoolError, UsageError, first_line

# psycopg, yoyo and duckdb are imported by the commands that use them: `dbtool --help` stays fast.


@click.group(epilog="""Examples:

\b
  make migrate                      (same as: dbtool migrate && dbtool analytics init)
  dbtool validate --format json
  dbtool status --exit-code

""" + EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dbtool")
@setting_option("DBTOOL_ROOT", "--root", metavar="DIR")
def cli():
    """Raw-SQL migrations and exact schema validation for PostgreSQL."""


CASCADE_HELP = ("Also drop the objects outside the module that depend on it (views, foreign keys, tables "
                "inheriting from its tables, ...); without it they are named and nothing is dropped.")


@cli.command(epilog="""Examples:

\b
  dbtool migrate
  dbtool migrate --module crm --dry-run
  dbtool migrate --to crm_0002_privileges      (or its start: --to crm_0002)
  dbtool migrate --redo crm_0009_loyalty       (or: --redo --module crm, its latest)
  dbtool migrate --ddl-lock-timeout 30s --lock-timeout 300
  dbtool migrate --targets fleet.txt --canary 2 --format junit > migrate.xml

--to X applies the pending migrations of X's module up to and including X, and those
they depend on (in any module); it refuses (exit 2) an unknown id and one already applied
with nothing before it pending. --redo X rolls back X, the latest applied migration of
its module that nothing applied depends on, and applies it again from the files as they
are now: for a file applied only on your own database. In one transaction: if applying
fails, X stays applied as it was. It asks before dropping data, as rollback does.

""" + EPILOG)
@database_options
@fleet_options(report_format=True)
@click.option("--dry-run", is_flag=True, help="List pending migrations and print their SQL; change nothing.")
@click.option("--to", "to", metavar="ID", help="Apply only up to and including this migration (and its dependencies).")
@click.option("--redo", "redo", is_flag=False, flag_value="", default=None, metavar="[ID]",
              help="Roll back this migration (default: the latest applied of the one --module) and apply it again.")
@click.option("--cascade", is_flag=True, help="With --redo: " + CASCADE_HELP[0].lower() + CASCADE_HELP[1:])
@click.option("--yes", is_flag=True, help="With --redo: do not ask (for scripts).")
@setting_option("DBTOOL_PROGRESS", "--progress/--no-progress", default=None, show_default="on a terminal")
@setting_option("DBTOOL_LOCK_RETRIES", "--lock-retries", metavar="N", show_default="0")
@lock_options
def migrate(database_url, modules, dry_run, to, redo, cascade, yes, fleet, fmt, **timeouts):
    """Apply pending migrations (under a lock, each in one transaction)."""
    from . import migrate as migrate_lib
    from . import revisions

    if redo is not None and (to or dry_run):
        raise UsageError(f"--redo does not combine with {'--to' if to else '--dry-run'}")
    if redo is None and (cascade or yes):
        raise UsageError(f"{'--cascade' if cascade else '--yes'} applies to --redo only")
    if fleet:
        if redo is not None:
            raise UsageError("--redo acts on one database (--database-url), not on --targets")
        return fleet.run("migrate", fmt, modules, to=to, dry_run=dry_run, **timeouts)
    target = target_for(database_url)
    if redo is not None:
        def confirm(plan):
            if why := _drops(plan):
                _confirm_drop(plan, target, yes=yes, reason="; ".join(why))

        revisions.redo(target, modules, redo or None, say=say, cascade=cascade, confirm=confirm, **timeouts)
        return
    out = migrate_lib.migrate(target, modules, say=say, dry_run=dry_run, to=to, **timeouts)
    if not dry_run:
        say(f"{len(out.applied)} migration(s) applied in {out.seconds:.2f}s" if out.applied
            else f"nothing to apply ({out.seconds:.2f}s)")


@cli.command(epilog="""Examples:

\b
  dbtool status
  dbtool status --module planning --format json
  dbtool status --exit-code || echo "migrations pending"
  dbtool status --targets fleet.txt --format json

With --exit-code: 1 when anything is pending. """ + EPILOG)
@database_options
@fleet_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text", show_default=True,
              help="junit: with --targets or --targets-query only.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when any migration is pending.")
@setting_option("DBTOOL_READ_LOCK_TIMEOUT", "--lock-timeout", metavar="SECONDS", show_default="10")
def status(database_url, modules, fleet, fmt, exit_code):
    """Applied and pending migrations per module, and files changed since (read-only)."""
    from . import migrate as migrate_lib

    if fleet:
        return fleet.run("status", fmt, modules, exit_code=exit_code)
    if fmt == "junit":
        raise UsageError("--format junit: the report of a run over --targets or --targets-query")
    target = target_for(database_url)
    states = migrate_lib.status(target, modules)
    if fmt == "json":
        click.echo(json.dumps({"format": "dbtool.status/1", "database": target.display(),
                               "migrations": [s.as_dict() for s in states]}, indent=2))
    else:
        for s in states:
            when = s.applied_at.strftime("%Y-%m-%d %H:%M:%S UTC") if s.applied_at else (
                "applied" if s.applied else "pending")
            changed = f"  changed since applied: {', '.join(s.changed_files)}" if s.changed_files else ""
            click.echo(f"{s.module:10} {s.id:40} {when}{changed}")
    return 1 if exit_code and any(not s.applied for s in states) else 0


@cli.command(epilog="""Examples:

\b
  dbtool history
  dbtool history --module crm --limit 10
  dbtool history --format json

Newest first: yoyo's log (apply, rollback, mark, unmark), when (UTC), and who: the host/pid
of the dbtool run that held the migration lock (dbtool.migration_log), "unknown" for rows
written by yoyo itself or an older dbtool; then the dbtool command, the database role and
yoyo's OS user@host. Read-only.

""" + EPILOG)
@database_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Only the latest N entries.")
@setting_option("DBTOOL_READ_LOCK_TIMEOUT", "--lock-timeout", metavar="SECONDS", show_default="10")
def history(database_url, modules, fmt, limit):
    """What ran and when, who ran it, rollbacks included (read-only)."""
    from . import history as history_lib

    given = click.get_current_context().params.get("modules")
    target = target_for(database_url)
    entries = history_lib.log(target, modules if given else None, limit)
    if fmt == "json":
        click.echo(json.dumps({"format": "dbtool.history/1", "database": target.display(),
                               "modules": modules, "entries": [e.as_dict() for e in entries]}, indent=2))
        return
    for e in entries:
        how = ", ".join(x for x in (f"dbtool {e.command}" if e.command else "", f"role {e.role}" if e.role else "",
                                    f"{e.username}@{e.hostname}" if e.username else "") if x)
        click.echo(f"{e.at:%Y-%m-%d %H:%M:%S} UTC  {e.operation:8} {e.module:10} {e.migration_id:40} {e.by}"
                   + (f"  ({how})" if how else ""))
    if not entries:
        say("no migration has run on this database" + (f" in {', '.join(modules)}" if given else ""))


@cli.command(epilog="""Examples:

\b
  dbtool rollback --module infra               (its latest migration)
  dbtool rollback --module infra --all --yes   (every one, without asking)
  dbtool rollback --to crm_0002_privileges     (everything applied after it)
  dbtool rollback --to crm_0002 --dry-run      (what it would roll back and drop)

Asks you to type the module name (or "all") when it would drop tables, or roll back every
module (no --module) or every migration (--all); without a terminal it refuses unless --yes.
Objects outside the module that depend on what it drops are named, and the rollback refused,
unless --cascade. It refuses when a newer applied migration is missing from disk.
--to X rolls back, newest first, the migrations of X's module applied after X and every
applied migration of any module that depends on X or on them; X stays applied. It also asks
when that reaches into another module.

""" + EPILOG)
@database_options
@click.option("--all", "everything", is_flag=True, help="Roll back every applied migration, not only the latest.")
@click.option("--to", "to", metavar="ID", help="Roll back everything applied after this migration (it stays applied).")
@click.option("--dry-run", is_flag=True, help="Say what it would roll back and drop; change nothing.")
@click.option("--cascade", is_flag=True, help=CASCADE_HELP)
@click.option("--yes", is_flag=True, help="Do not ask (for scripts).")
@lock_options
def rollback(database_url, modules, everything, to, dry_run, cascade, yes, **timeouts):
    """Roll back the latest migration of each module (or all with --all, or to a migration with --to); asks
    before dropping data."""
    from . import migrate as migrate_lib

    if to and everything:
        raise UsageError("--to and --all do not combine: --to names the migration to roll back to")
    every_module = not click.get_current_context().params.get("modules") and not to
    target = target_for(database_url)

    def confirm(plan):
        why = (["of every module"] if every_module else []) + (["of every migration (--all)"] if everything else [])
        why += _drops(plan) + ([f"rolls back migrations of {len(plan.modules)} modules"]
                               if to and len(plan.modules) > 1 else [])
        if why:
            _confirm_drop(plan, target, yes=yes, reason="; ".join(why))

    out = migrate_lib.rollback(target, modules, say=say, everything=everything, cascade=cascade, confirm=confirm,
                               to=to, dry_run=dry_run, **timeouts)
    if dry_run:
        say(f"dry run: {len(out.applied)} migration(s) would be rolled back; nothing was changed")
    elif out.applied or not to:  # with --to, rollback said why there was nothing to do
        say(f"{len(out.applied)} migration(s) rolled back" if out.applied else "nothing to roll back")


@cli.command(epilog="""Examples:

\b
  dbtool reset --module planning
  dbtool reset --module planning --recreate --yes   (then migrate it again)

Asks you to type the module name; without a terminal it refuses unless --yes. Objects outside
the module that depend on it are named, and nothing dropped, unless --cascade. --recreate then
applies the module's migrations again, holding the same lock.
""" + EPILOG)
@database_url_option
@click.option("--module", "-m", "module", required=True, metavar="M", help="The module to drop.")
@click.option("--recreate", is_flag=True, help="Then apply the module's migrations again (an empty schema).")
@click.option("--cascade", is_flag=True, help=CASCADE_HELP)
@click.option("--yes", is_flag=True, help="Do not ask (for scripts).")
@lock_options
def reset(database_url, module, recreate, cascade, yes, **timeouts):
    """Drop a module's schema and its migration records (asks first); --recreate migrates it again."""
    from . import migrate as migrate_lib

    module = paths.check_modules([module])[0]
    target = target_for(database_url)
    then = ", then migrates it again" if recreate else ""
    migrate_lib.reset(target, module, say=say, cascade=cascade, recreate=recreate, **timeouts,
                      confirm=lambda plan: _confirm_drop(plan, target, yes=yes,
                                                         reason=f"drops schema {module} and all its data{then}"))


def _drops(plan) -> list[str]:
    """Why a rollback (or redo) asks first: what it drops, or cannot tell beforehand."""
    why = [f"drops {len(plan.tables)} table(s) and their rows"] if plan.tables else []
    why += [f"drops {len(plan.outside)} object(s) outside the module"] if plan.outside else []
    return why + (["runs a rollback that cannot be tried first (not transactional)"] if plan.unpreviewed else [])


def _confirm_drop(plan, target, *, yes: bool, reason: str) -> None:
    """Type the module name (or "all") on a terminal; without one, refuse unless --yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{plan.command} {reason}: refusing without a terminal to confirm (use --yes)")
    word = plan.modules[0] if len(plan.modules) == 1 else "all"
    lines = [f"This {plan.command} in {target.display()}:", *plan.lines()]
    typed = click.prompt("\n".join(lines) + f"\nType {word} to confirm", default="", show_default=False, err=True)
    if typed != word:
        undone = {"reset": "dropped", "redo": "changed"}.get(plan.command, "rolled back")
        raise UsageError(f"confirmation did not match: nothing was {undone}")


@cli.command(epilog="""Examples:

\b
  dbtool validate
  dbtool validate --module crm --strict --format json > drift.json
  dbtool validate --format junit > validate.xml
  dbtool validate --targets fleet.txt --continue-on-error --format json > fleet.json

Findings: missing and different objects are errors, extra objects warnings (errors
with --strict); files edited after they were applied are errors.

""" + EPILOG)
@database_options
@fleet_options
@click.option("--strict", is_flag=True, help="Treat extra objects as errors.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text", show_default=True)
@click.option("--from-sql", is_flag=True,
              help="Build the expectation from sql/ now, on a scratch database of the same server (needs CREATEDB).")
@click.option("--verbose", "-v", is_flag=True, help="Also show informational findings (comments, old checksums).")
@click.option("--explain", is_flag=True, help="Say under each finding, in one line, why it matters.")
@click.option("--duckdb", "duckdb_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              envvar="DBTOOL_DUCKDB_PATH", show_envvar=True,
              help="Also check this DuckDB analytics file against sql/duckdb/.")
@setting_option("DBTOOL_READ_LOCK_TIMEOUT", "--lock-timeout", metavar="SECONDS", show_default="10")
def validate(database_url, modules, fleet, strict, fmt, from_sql, verbose, explain, duckdb_path):
    """Compare the live catalog with what sql/ describes; report every difference."""
    from . import migrate as migrate_lib
    from .catalog import render
    from .catalog import validate as validate_lib

    if fleet:  # --duckdb checks one local file: refused when given, DBTOOL_DUCKDB_PATH left aside
        if duckdb_path is not None and click.get_current_context().get_parameter_source("duckdb_path") == \
                click.core.ParameterSource.COMMANDLINE:
            raise UsageError("--duckdb checks one local analytics file: run it without --targets")
        return fleet.run("validate", fmt, modules, strict=strict, from_sql=from_sql, verbose=verbose, explain=explain)
    target = target_for(database_url)
    ids = {m: [mig.id for mig in migrate_lib.load([m])] for m in modules}
    report = validate_lib.validate(target, modules, strict=strict, from_sql=from_sql, migration_ids=ids,
                                   duckdb_path=duckdb_path, say=say)
    if fmt == "json":
        click.echo(render.as_json(report), nl=False)
    elif fmt == "junit":
        click.echo(render.junit(report), nl=False)
    else:
        click.echo(render.text(report, verbose=verbose, colour=render.use_colour(), explain=explain), nl=False)
    return 1 if report.errors else 0


@cli.command(epilog="Example: make snapshot  (then review `git diff`)\n\n" + EPILOG)
@database_url_option
def snapshot(database_url):
    """Regenerate what is derived from sql/: expected catalogs, psql entry files, typed rows (and a new
    table's repository module)."""
    from . import psql_entry, scaffold
    from .catalog import expected
    from .paths import modules as all_modules
    from .paths import root
    from .repo import _generate

    written = (expected.SNAPSHOT_DIR.resolve(), _generate.TARGET.resolve())
    if not all(path.is_relative_to(root()) for path in written):  # DBTOOL_ROOT names another checkout
        raise UsageError(f"snapshot writes {written[0]}/ and {written[1]} of the dbtool that runs, outside "
                         f"DBTOOL_ROOT={root()}: nothing written; run that checkout's own dbtool, or unset DBTOOL_ROOT")
    target = target_for(database_url)
    for path in expected.write_snapshots(expected.build(target, all_modules(), say=say)):
        say(f"wrote {path.relative_to(root())}")
    for module in all_modules():
        say(f"wrote sql/{psql_entry.write(module).name}")
    say(f"wrote {_generate.write().relative_to(root())}")
    repo_modules, skipped = scaffold.write_repo_modules()
    for path in repo_modules:
        say(f"wrote {path.relative_to(root())} (a new table's repository module: add its own queries there)")
    for why in skipped:
        say(why)


@cli.command("new", epilog="""Examples:

\b
  dbtool new crm loyalty_points        (sql/crm/NNN_loyalty_points.sql and its migration)
  dbtool new infra events_source_idx

Never replaces a file. Prints the next steps: write the SQL and the rollback, make snapshot,
make docs, make migrate, make test.

""" + EPILOG)
@click.argument("module")
@click.argument("what")
def new(module, what):
    """Start a schema change: the next numbered sql/<module>/NNN_<what>.sql and its migration."""
    from . import scaffold

    for line in scaffold.next_steps(scaffold.create(module, what)):
        click.echo(line)


@cli.group(epilog="Example: dbtool devdb up  (prints the URL to use with psql)\n\n" + EPILOG)
@setting_option("DBTOOL_DEVDB_DIR", "--dir", metavar="DIR")
@setting_option("PG_BINDIR", "--bindir", metavar="DIR")
def devdb():
    """The local PostgreSQL cluster under var/ used when no database is configured."""


@devdb.command("up", epilog="Example: psql \"$(dbtool devdb up)\"")
def devdb_up():
    """Initialise (once) and start the local cluster; print its URL."""
    from . import devdb as devdb_lib

    click.echo(devdb_lib.default_cluster().ensure_running().conninfo())


@devdb.command("down", epilog="Example: dbtool devdb down  (or: make db-down)")
def devdb_down():
    """Stop the local cluster (its data stays under var/pg)."""
    from . import devdb as devdb_lib

    devdb_lib.default_cluster().stop()
    say("local cluster stopped")


# Commands defined in their own modules register here.
# (keep this list short: one import and one add_command per module)
from .data_cli import erase_user, seed, smoke, stats  # noqa: E402

for _cmd in (seed, stats, smoke, erase_user): cli.add_command(_cmd)  # noqa: E701
from .analytics.cli import analytics  # noqa: E402

cli.add_command(analytics)
from .docs_cli import backup, docs, restore, wait  # noqa: E402

for _cmd in (wait, backup, restore, docs): cli.add_command(_cmd)  # noqa: E701
from .jobs_cli import jobs  # noqa: E402

cli.add_command(jobs)
from .lint_cli import lint  # noqa: E402

cli.add_command(lint)
from .trace_cli import trace  # noqa: E402

cli.add_command(trace)


def main() -> None:
    settings.clear_overrides()
    try:
        rv = cli.main(standalone_mode=False)
        sys.exit(rv if isinstance(rv, int) else 0)
    except click.exceptions.Abort:
        say("aborted")
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        shown = io.StringIO()  # click echoes what it could not use, e.g. a URL given as an argument: masked
        exc.show(file=shown)
        sys.stderr.write(_mask(shown.getvalue()))
        sys.exit(EXIT_USAGE)
    except DbtoolError as exc:
        say(f"dbtool: {_mask(str(exc))}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
    except Exception as exc:
        line, code = _database_failure(exc)
        if line is None:
            raise
        say(f"dbtool: {line}")
        sys.exit(code)


def _mask(text: str) -> str:
    from .config import mask_secrets

    return mask_secrets(text)


def _database_failure(exc: Exception) -> tuple[str | None, int]:
    """One line and an exit code for what a database said; (None, 0) for anything else.

    psycopg and duckdb are only consulted when a command already imported them.
    """
    psycopg = sys.modules.get("psycopg")
    duckdb = sys.modules.get("duckdb")
    if psycopg is not None and isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return f"the server refused this role: {_mask(first_line(exc))}", EXIT_CONNECT
    if psycopg is not None and isinstance(exc, psycopg.OperationalError):  # the connection broke
        return f"lost the database: {_mask(first_line(exc))}", EXIT_CONNECT
    if psycopg is not None and isinstance(exc, psycopg.Error):  # anything else the database said
        return f"database error: {_mask(first_line(exc))}", EXIT_FINDINGS
    if duckdb is not None and isinstance(exc, duckdb.Error):
        return f"DuckDB error: {_mask(first_line(exc))}", EXIT_FINDINGS
    return None, 0
