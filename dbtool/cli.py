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
from .cli_common import EPILOG, database_options, database_url_option, lock_options, say, setting_option, target_for
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


@cli.command(epilog="""Examples:

\b
  dbtool migrate
  dbtool migrate --module crm --dry-run
  dbtool migrate --ddl-lock-timeout 30s --lock-timeout 300

""" + EPILOG)
@database_options
@click.option("--dry-run", is_flag=True, help="List pending migrations and print their SQL; change nothing.")
@setting_option("DBTOOL_PROGRESS", "--progress/--no-progress", default=None, show_default="on a terminal")
@lock_options
def migrate(database_url, modules, dry_run, **timeouts):
    """Apply pending migrations (under a lock, each in one transaction)."""
    from . import migrate as migrate_lib

    target = target_for(database_url)
    out = migrate_lib.migrate(target, modules, say=say, dry_run=dry_run, **timeouts)
    if not dry_run:
        say(f"{len(out.applied)} migration(s) applied in {out.seconds:.2f}s" if out.applied
            else f"nothing to apply ({out.seconds:.2f}s)")


@cli.command(epilog="""Examples:

\b
  dbtool status
  dbtool status --module planning --format json
  dbtool status --exit-code || echo "migrations pending"

With --exit-code: 1 when anything is pending. """ + EPILOG)
@database_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--exit-code", is_flag=True, help="Exit 1 when any migration is pending.")
@setting_option("DBTOOL_READ_LOCK_TIMEOUT", "--lock-timeout", metavar="SECONDS", show_default="10")
def status(database_url, modules, fmt, exit_code):
    """Applied and pending migrations per module, and files changed since (read-only)."""
    from . import migrate as migrate_lib

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


CASCADE_HELP = ("Also drop the objects outside the module that depend on it (views, foreign keys, tables "
                "inheriting from its tables, ...); without it they are named and nothing is dropped.")


@cli.command(epilog="""Examples:

\b
  dbtool rollback --module infra               (its latest migration)
  dbtool rollback --module infra --all --yes   (every one, without asking)

Asks you to type the module name (or "all") when it would drop tables, or roll back every
module (no --module) or every migration (--all); without a terminal it refuses unless --yes.
Objects outside the module that depend on what it drops are named, and the rollback refused,
unless --cascade. It refuses when a newer applied migration is missing from disk.

""" + EPILOG)
@database_options
@click.option("--all", "everything", is_flag=True, help="Roll back every applied migration, not only the latest.")
@click.option("--cascade", is_flag=True, help=CASCADE_HELP)
@click.option("--yes", is_flag=True, help="Do not ask (for scripts).")
@lock_options
def rollback(database_url, modules, everything, cascade, yes, **timeouts):
    """Roll back the latest migration of each module (or all with --all); asks before dropping data."""
    from . import migrate as migrate_lib

    every_module = not click.get_current_context().params.get("modules")
    target = target_for(database_url)

    def confirm(plan):
        why = (["of every module"] if every_module else []) + (["of every migration (--all)"] if everything else [])
        why += [f"drops {len(plan.tables)} table(s) and their rows"] if plan.tables else []
        why += [f"drops {len(plan.outside)} object(s) outside the module"] if plan.outside else []
        why += ["runs a rollback that cannot be tried first (not transactional)"] if plan.unpreviewed else []
        if why:
            _confirm_drop(plan, target, yes=yes, reason="; ".join(why))

    out = migrate_lib.rollback(target, modules, say=say, everything=everything, cascade=cascade, confirm=confirm,
                               **timeouts)
    say(f"{len(out.applied)} migration(s) rolled back" if out.applied else "nothing to roll back")


@cli.command(epilog="""Example: dbtool reset --module planning

Asks you to type the module name; without a terminal it refuses unless --yes. Objects outside
the module that depend on it are named, and nothing dropped, unless --cascade.
""" + EPILOG)
@database_url_option
@click.option("--module", "-m", "module", required=True, metavar="M", help="The module to drop.")
@click.option("--cascade", is_flag=True, help=CASCADE_HELP)
@click.option("--yes", is_flag=True, help="Do not ask (for scripts).")
@lock_options
def reset(database_url, module, cascade, yes, **timeouts):
    """Drop a module's schema and its migration records (asks first)."""
    from . import migrate as migrate_lib

    module = paths.check_modules([module])[0]
    target = target_for(database_url)
    migrate_lib.reset(target, module, say=say, cascade=cascade, **timeouts, confirm=lambda plan: _confirm_drop(
        plan, target, yes=yes, reason=f"drops schema {module} and all its data"))


def _confirm_drop(plan, target, *, yes: bool, reason: str) -> None:
    """Type the module name (or "all") on a terminal; without one, refuse unless --yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{plan.command} {reason}: refusing without a terminal to confirm (use --yes)")
    word = plan.modules[0] if len(plan.modules) == 1 else "all"
    lines = [f"This {plan.command} in {target.display()}:"]
    lines += [f"  rolls back {', '.join(plan.migrations)}"] if plan.migrations else []
    lines += [f"  drops schema {plan.modules[0]} and all its data"] if plan.command == "reset" else []
    lines += [f"  drops {len(plan.tables)} table(s) and every row in them: {', '.join(plan.tables)}"] if plan.tables \
        else []
    lines += [f"  also drops, outside the module: {', '.join(str(d) for d in plan.outside)}"] if plan.outside else []
    lines += [f"  cannot tell beforehand what {', '.join(plan.unpreviewed)} drops"] if plan.unpreviewed else []
    typed = click.prompt("\n".join(lines) + f"\nType {word} to confirm", default="", show_default=False, err=True)
    if typed != word:
        undone = "dropped" if plan.command == "reset" else "rolled back"
        raise UsageError(f"confirmation did not match: nothing was {undone}")


@cli.command(epilog="""Examples:

\b
  dbtool validate
  dbtool validate --module crm --strict --format json > drift.json
  dbtool validate --format junit > validate.xml

Findings: missing and different objects are errors, extra objects warnings (errors
with --strict); files edited after they were applied are errors.

""" + EPILOG)
@database_options
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
def validate(database_url, modules, strict, fmt, from_sql, verbose, explain, duckdb_path):
    """Compare the live catalog with what sql/ describes; report every difference."""
    from . import migrate as migrate_lib
    from .catalog import render
    from .catalog import validate as validate_lib

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
    """Regenerate what is derived from sql/: expected catalogs, psql entry files, typed rows."""
    from . import psql_entry
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
