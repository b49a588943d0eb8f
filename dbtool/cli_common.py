"""Pieces every CLI command shares: options, where we connect, how we talk."""

from __future__ import annotations

import functools

import click

from . import config
from . import migrate as migrate_lib

EPILOG = "Exit codes: 0 ok, 1 drift or failure, 2 usage error, 3 cannot connect or refused."


def say(msg: str) -> None:
    click.echo(msg, err=True)


DATABASE_URL_HELP = "PostgreSQL URL; default DATABASE_URL, then PG* variables, then the local dev cluster."


def database_url_option(fn):
    """--database-url, for commands that talk to PostgreSQL."""
    return click.option("--database-url", metavar="URL", help=DATABASE_URL_HELP)(fn)


def database_options(fn):
    """--database-url and --module, shared by every command that acts on schema modules."""

    @database_url_option
    @click.option("--module", "-m", "modules", multiple=True, metavar="M",
                  help="Act on this schema module only (repeatable).")
    @functools.wraps(fn)
    def wrapper(*args, database_url, modules, **kw):
        return fn(*args, database_url=database_url, modules=migrate_lib.check_modules(modules), **kw)

    return wrapper


def target_for(database_url: str | None) -> config.Target:
    target = config.resolve(database_url)
    say(f"database: {target.display()} (from {target.source})")
    return target


def lock_options(fn):
    """Timeouts of commands that change the database."""
    fn = click.option("--statement-timeout", default=migrate_lib.DEFAULT_STATEMENT_TIMEOUT, show_default=True,
                      metavar="DURATION", help="Longest a migration statement may run (a file may override).")(fn)
    fn = click.option("--ddl-lock-timeout", default=migrate_lib.DEFAULT_DDL_LOCK_TIMEOUT, show_default=True,
                      metavar="DURATION",
                      help="Longest a migration waits for a table lock (a file may override).")(fn)
    fn = click.option("--lock-timeout", type=float, default=migrate_lib.DEFAULT_LOCK_TIMEOUT, show_default=True,
                      metavar="SECONDS", help="Seconds to wait for another dbtool run holding the migration lock.")(fn)
    return fn
