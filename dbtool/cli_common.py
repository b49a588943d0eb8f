"""Pieces every CLI command shares: options, where we connect, how we talk.

Nothing here imports psycopg, yoyo or duckdb: `dbtool --help` costs python + click.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable

import click

from . import paths, settings

if TYPE_CHECKING:
    from .config import Target

EPILOG = "Exit codes: 0 ok, 1 drift or failure, 2 usage error, 3 cannot connect or refused."


def say(msg: str) -> None:
    click.echo(msg, err=True)


DATABASE_URL_HELP = ("PostgreSQL URL or conninfo [env var: DATABASE_URL; then libpq's PG* variables; "
                     "then the local dev cluster]")


def setting_option(name: str, *decls: str, **kw: Any) -> Callable:
    """An option for the setting `name` (see settings.py): its variable shown in --help, its value
    validated as the library would, and recorded so the library sees the command line's choice."""
    setting = settings.SETTINGS[name]

    def record(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None or value == "":
            return None
        try:
            parsed = settings.parse(setting, str(value))
        except settings.UsageError as exc:
            raise click.BadParameter(str(exc).split(": ", 1)[-1]) from None
        settings.override(name, parsed)
        return parsed

    kw.setdefault("help", setting.help[:1].upper() + setting.help[1:] + ".")
    return click.option(*decls, envvar=name, show_envvar=True, callback=record, expose_value=False,
                        is_eager=True, **kw)


def connect_timeout_option(fn: Callable) -> Callable:
    return setting_option("DBTOOL_CONNECT_TIMEOUT", "--connect-timeout", metavar="SECONDS",
                          show_default="10")(fn)


def database_url_option(fn: Callable) -> Callable:
    """--database-url (and --connect-timeout), for commands that talk to PostgreSQL."""
    fn = connect_timeout_option(fn)
    return click.option("--database-url", metavar="URL", help=DATABASE_URL_HELP)(fn)


def database_options(fn: Callable) -> Callable:
    """--database-url and --module, shared by every command that acts on schema modules."""

    @database_url_option
    @click.option("--module", "-m", "modules", multiple=True, metavar="M",
                  help="Act on this schema module only (repeatable).")
    @functools.wraps(fn)
    def wrapper(*args: Any, database_url: str | None, modules: tuple[str, ...], **kw: Any) -> Any:
        return fn(*args, database_url=database_url, modules=paths.check_modules(modules), **kw)

    return wrapper


def target_for(database_url: str | None) -> Target:
    from . import config

    target = config.resolve(database_url)
    say(f"database: {target.display()} (from {target.source})")
    return target


def lock_options(fn: Callable) -> Callable:
    """Timeouts of commands that change the database."""
    fn = click.option("--statement-timeout", default=settings.DEFAULT_STATEMENT_TIMEOUT, show_default=True,
                      metavar="DURATION", help="Longest a migration statement may run (a file may override).")(fn)
    fn = click.option("--ddl-lock-timeout", default=settings.DEFAULT_DDL_LOCK_TIMEOUT, show_default=True,
                      metavar="DURATION",
                      help="Longest a migration waits for a table lock (a file may override).")(fn)
    fn = click.option("--lock-timeout", type=float, default=settings.DEFAULT_LOCK_TIMEOUT, show_default=True,
                      metavar="SECONDS", help="Seconds to wait for another dbtool run holding the migration lock.")(fn)
    return fn
