"""`dbtool trace`: a few lines over dbtool.trace (psycopg, yoyo and pg_dump only when the command runs)."""

from __future__ import annotations

from pathlib import Path

import click

from . import settings
from .cli_common import Duration, database_url_option, say, setting_option, target_for
from .errors import EXIT_FINDINGS, UsageError


@click.command(epilog="""Examples:

\b
  dbtool trace --pending                       (what migrate would run, run on a copy)
  dbtool trace --pending --rows 10000 --format json > trace.json
  dbtool trace sql/crm/170_product_updated_at.sql

Makes a scratch database on the target's server (needs CREATEDB) from the target's schema
(pg_dump --schema-only; the module roles' grants included), optionally fills every module
table with N generated rows, runs the migrations there in migrate's transaction shape and
timeouts, statement by statement, and drops it at the end (also on error or Ctrl-C; one left
by a killed run is dropped by the next). For each statement: the locks it took (mode and
relation, from its own session's pg_locks; a lock counts for the first statement that holds
it), the tables and indexes it rewrote (new relfilenode), the constraints it added VALID or
NOT VALID or validated, its time; per migration, how long ACCESS EXCLUSIVE was held, from the
statement that took it to commit. Statements PostgreSQL refuses in a transaction block
(CONCURRENTLY) are watched from a second session: their locks are [sampled].

Exit codes: 0 traced, 1 a statement failed on the copy (file:line), 2 usage error,
3 cannot connect or refused.""")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--pending", is_flag=True,
              help="Trace the migrations not yet applied on the database (default: the local dev cluster).")
@click.option("--module", "-m", "modules", multiple=True, metavar="M",
              help="With --pending: this module's migrations only (repeatable).")
@click.option("--rows", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Fill every table of the module schemas with up to N generated rows first.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--ddl-lock-timeout", type=Duration(), default=settings.DEFAULT_DDL_LOCK_TIMEOUT, show_default=True,
              metavar="DURATION", help="lock_timeout of the traced statements, as migrate sets it (a file may "
                                       "override).")
@click.option("--statement-timeout", type=Duration(), default=settings.DEFAULT_STATEMENT_TIMEOUT, show_default=True,
              metavar="DURATION", help="statement_timeout of the traced statements, as migrate sets it (a file may "
                                       "override).")
@database_url_option
@setting_option("DBTOOL_READ_LOCK_TIMEOUT", "--lock-timeout", metavar="SECONDS", show_default="10",
                help="Seconds reading the target (its status, pg_dump) waits for a table lock.")
def trace(files, pending, modules, rows, fmt, ddl_lock_timeout, statement_timeout, database_url):
    """Run migrations on a scratch copy of the database; report each statement's locks, rewrites, constraints
    and time."""
    from . import paths
    from .trace import report
    from .trace.run import trace as run_trace

    if files and pending:
        raise UsageError("give .sql files or --pending, not both")
    if not files and not pending:
        raise UsageError("nothing to trace: give .sql files or folders, or --pending")
    if modules and not pending:
        raise UsageError("--module applies to --pending only")
    chosen = paths.check_modules(modules)
    target = target_for(database_url)
    result = run_trace(target, files=list(files), pending=pending, modules=chosen, rows=rows,
                       lock_timeout=ddl_lock_timeout, statement_timeout=statement_timeout, say=say)
    click.echo(report.as_json(result) if fmt == "json" else report.text(result), nl=False)
    if result.failure:
        say(f"dbtool: {result.failure.message}")
        return EXIT_FINDINGS
    return 0


__all__ = ["trace"]
