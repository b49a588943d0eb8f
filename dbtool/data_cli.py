"""`dbtool seed`, `dbtool stats`, `dbtool smoke`: each a few lines over dbtool.seed, .stats and .smoke."""

from __future__ import annotations

import json

import click

from . import paths
from .cli_common import EPILOG, database_options, database_url_option, say, setting_option, target_for
from .errors import EXIT_FINDINGS


@click.command(epilog="Example: dbtool seed --module infra --clear\n\n" + EPILOG)
@database_options
@click.option("--clear", is_flag=True, help="Remove exactly the seed rows (and nothing else) instead of adding them.")
def seed(database_url, modules, clear):
    """Add the specifications' demo rows (idempotent), or remove them with --clear."""
    from . import seed as seed_lib

    target = target_for(database_url)
    with target.connect() as conn:
        for module in modules:
            path = seed_lib.apply(conn, module, clear=clear)
            say(f"{module:10} {'cleared' if clear else 'seeded'} ({path.relative_to(paths.root())})")


@click.command(epilog="Example: dbtool stats --module crm --format json\n\n" + EPILOG)
@database_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@setting_option("DBTOOL_STATS_EXACT_MAX_BYTES", "--exact-max-bytes", metavar="BYTES", show_default="64 MiB")
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

Deletes the user's rows in every chatbot table (and in the DuckDB analytics file when one is
given or configured) in one PostgreSQL transaction, and prints how many rows per table.

""" + EPILOG)
@database_url_option
@click.option("--phone", required=True, help="The user's WhatsApp phone number.")
@click.option("--duckdb", "duckdb_path", type=click.Path(exists=True, dir_okay=False), envvar="DBTOOL_DUCKDB_PATH",
              show_envvar=True, help="Also erase from this existing DuckDB analytics file.")
@click.option("--yes", is_flag=True, help="Required: erasure cannot be undone.")
def erase_user(database_url, phone, duckdb_path, yes):
    """Erase one chatbot user's data on request (LGPD), PostgreSQL and DuckDB."""
    from .analytics.db import connect as duck_connect
    from .analytics.erase import duckdb_eraser
    from .errors import UsageError
    from .repo.chatbot import users

    if not yes:
        raise UsageError("erasure cannot be undone: add --yes")
    target = target_for(database_url)
    duck = duck_connect(duckdb_path, create=False) if duckdb_path else None  # never create an empty file
    try:
        with target.connect() as conn:
            counts = users.erase(conn, phone_number=phone, erasers=[duckdb_eraser(duck)] if duck else [])
    finally:
        if duck is not None:
            duck.close()
    for table, n in counts.items():
        click.echo(f"{table:40} {n:>8} row(s) erased")
