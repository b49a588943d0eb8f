"""`dbtool seed`, `dbtool stats`, `dbtool smoke`: each a few lines over dbtool.seed, .stats and .smoke."""

from __future__ import annotations

import json

import click

from . import paths
from .cli_common import EPILOG, database_options, database_url_option, say, setting_option, target_for
from .errors import EXIT_FINDINGS

DATA_LOCK_HELP = ("Seconds to wait for a table (or row) lock held by another session, then stop (exit 1) "
                  "naming who holds it; nothing is changed.")


def data_lock_option(fn):
    return setting_option("DBTOOL_DATA_LOCK_TIMEOUT", "--lock-timeout", metavar="SECONDS", show_default="10",
                          help=DATA_LOCK_HELP)(fn)


@click.command(epilog="Example: dbtool seed --module infra --clear\n\n" + EPILOG)
@database_options
@click.option("--clear", is_flag=True,
              help="Remove the rows the seed inserted that still hold the seed's values, and nothing else.")
@data_lock_option
def seed(database_url, modules, clear):
    """Add the specifications' demo rows (idempotent), or remove them with --clear.

    The seed records each row it inserts (dbtool.seeded_row); --clear removes only those rows, and
    only while they still hold every value the seed gave them and nothing references them, and says
    per table what it removed and what it kept, and why.
    """
    from . import seed as seed_lib

    target = target_for(database_url)
    with target.connect() as conn:
        for module in modules:
            out = seed_lib.apply(conn, module, clear=clear)
            say(f"{module:10} {'cleared' if clear else 'seeded'} ({out.path.relative_to(paths.root())})")
            for table in out.cleared:
                say(f"  {table.line()}")
            if clear and not out.cleared:
                say("  no row recorded as inserted by the seed here: nothing removed")


@click.command(epilog="Example: dbtool stats --module crm --format json\n\n" + EPILOG)
@database_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@setting_option("DBTOOL_STATS_EXACT_MAX_BYTES", "--exact-max-bytes", metavar="BYTES", show_default="64 MiB")
@setting_option("DBTOOL_READ_LOCK_TIMEOUT", "--lock-timeout", metavar="SECONDS", show_default="10")
def stats(database_url, modules, fmt):
    """Rows (exact, or estimated for big tables: said which) and total size of every table."""
    from . import stats as stats_lib

    target = target_for(database_url)
    with target.connect() as conn:
        rows = stats_lib.table_stats(conn, modules)
    if fmt == "json":
        click.echo(json.dumps({"tables": [r.as_json() for r in rows]}, indent=1))
        return
    click.echo(f"{'table':36} {'rows':>14} {'counted':10} {'total size':>12}")
    for r in rows:
        n = "?" if r.rows is None else str(r.rows)
        how = "exact" if r.exact else "estimated"
        click.echo(f"{r.module + '.' + r.table:36} {n:>14} {how:10} {stats_lib.human_bytes(r.total_bytes):>12}")


@click.command(epilog="Example: dbtool smoke --module chatbot\n\n" + EPILOG)
@database_options
@setting_option("DBTOOL_READ_LOCK_TIMEOUT", "--lock-timeout", metavar="SECONDS", show_default="10")
def smoke(database_url, modules):
    """Insert, read back and delete a row in every table, inside a transaction that is rolled back."""
    from . import smoke as smoke_lib

    target = target_for(database_url)
    with target.connect() as conn:
        results = smoke_lib.run(conn, modules, say=click.echo)
    failed = [r for r in results if not r.ok]
    say(f"{len(results) - len(failed)} table(s) ok, {len(failed)} failed; nothing was kept")
    return EXIT_FINDINGS if failed else 0


@click.command("erase-user", epilog="""Example: dbtool erase-user --phone +5511999990000 --yes

Deletes the user's rows in every chatbot table and in the DuckDB analytics file (--duckdb, else
var/analytics.duckdb when it exists) in one PostgreSQL transaction, and prints how many rows per
table and per store. A DuckDB file that cannot be opened (locked by another process, damaged) is a
failure (exit 1) and nothing is erased anywhere; --no-duckdb skips DuckDB, saying so.

""" + EPILOG)
@database_url_option
@click.option("--phone", required=True, help="The user's WhatsApp phone number.")
@click.option("--duckdb", "duckdb_path", type=click.Path(exists=True, dir_okay=False), envvar="DBTOOL_DUCKDB_PATH",
              show_envvar=True, help="The DuckDB analytics file to erase from [default: var/analytics.duckdb, "
              "when it exists].")
@click.option("--no-duckdb", is_flag=True, help="Leave the DuckDB analytics file alone (said on stderr).")
@click.option("--yes", is_flag=True, help="Required: erasure cannot be undone.")
@data_lock_option
@click.pass_context
def erase_user(ctx, database_url, phone, duckdb_path, no_duckdb, yes):
    """Erase one chatbot user's data on request (LGPD), PostgreSQL and DuckDB."""
    from . import lock_wait
    from .analytics.erase import duckdb_eraser, open_store
    from .errors import UsageError
    from .repo.chatbot import users

    if not yes:
        raise UsageError("erasure cannot be undone: add --yes")
    if no_duckdb and ctx.get_parameter_source("duckdb_path") == click.core.ParameterSource.COMMANDLINE:
        raise UsageError("give --duckdb or --no-duckdb, not both")
    target = target_for(database_url)
    duck, store = open_store(duckdb_path, skip=no_duckdb)  # never creates a file; fails before erasing
    wait = lock_wait.seconds(setting=lock_wait.DATA_SETTING)
    try:
        with target.connect() as conn:
            lock_wait.limit_session(conn, wait)  # its one transaction waits at most `wait` for each lock
            with lock_wait.naming_blockers(conn, wait, command="erase-user", schemas=["chatbot"],
                                           modes=lock_wait.BLOCKS_WRITES, setting=lock_wait.DATA_SETTING,
                                           outcome="nothing erased anywhere", row_locks=True):
                counts = users.erase(conn, phone_number=phone, erasers=[duckdb_eraser(duck)] if duck else [])
    finally:
        if duck is not None:
            duck.close()
    for table, n in counts.items():
        click.echo(f"{table:40} {n:>8} row(s) erased")
    in_duck = sum(n for table, n in counts.items() if table.startswith("duckdb."))
    say(f"PostgreSQL: {sum(counts.values()) - in_duck} row(s) erased")
    say(f"{store}: {in_duck} row(s) erased" if duck is not None else store)
