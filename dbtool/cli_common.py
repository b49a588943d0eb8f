"""Pieces every CLI command shares: options, where we connect, how we talk.

Nothing here imports psycopg, yoyo or duckdb: `dbtool --help` costs python + click.
"""

from __future__ import annotations

import functools
import math
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


class Number(click.ParamType):
    """A finite number of `unit`, at least `minimum` (above it with above=True), at most `maximum`.

    click's float (and FloatRange: nan compares false with its bounds) takes nan and inf, which
    then wait forever: here they, and negatives, are refused when the command line is parsed (exit 2).
    """

    def __init__(self, unit: str = "seconds", *, minimum: float = 0, above: bool = False,
                 maximum: float | None = None):
        self.name = unit
        self.unit, self.minimum, self.above, self.maximum = unit, minimum, above, maximum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a number of {self.unit}", param, ctx)
        low = "more than" if self.above else "at least"
        if not math.isfinite(number) or number < self.minimum or (self.above and number == self.minimum):
            self.fail(f"{value!r}: give a finite number of {self.unit}, {low} {self.minimum:g}", param, ctx)
        if self.maximum is not None and number > self.maximum:
            self.fail(f"{value!r}: give at most {self.maximum:g} {self.unit}", param, ctx)
        return number


class Duration(click.ParamType):
    """A PostgreSQL time setting as the server takes it in `-c name=value`: 500ms, 10s, 5min (no space)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from .migration_steps import duration_problem  # the rule sql/ file directives follow too

        text = str(value)
        if problem := duration_problem(text):
            self.fail(f"{text!r}: {problem}", param, ctx)
        return text


SECONDS = Number("seconds")


def lock_options(fn: Callable) -> Callable:
    """Timeouts of commands that change the database."""
    fn = click.option("--statement-timeout", type=Duration(), default=settings.DEFAULT_STATEMENT_TIMEOUT,
                      show_default=True, metavar="DURATION",
                      help="Longest a migration statement may run (a file may override).")(fn)
    fn = click.option("--ddl-lock-timeout", type=Duration(), default=settings.DEFAULT_DDL_LOCK_TIMEOUT,
                      show_default=True, metavar="DURATION",
                      help="Longest a migration waits for a table lock (a file may override).")(fn)
    fn = click.option("--lock-timeout", type=SECONDS, default=settings.DEFAULT_LOCK_TIMEOUT, show_default=True,
                      metavar="SECONDS", help="Seconds to wait for another dbtool run holding the migration lock.")(fn)
    fn = click.option("--terminate-stale/--no-terminate-stale", default=True, show_default=True,
                      help="End the sessions of a dbtool run on this machine whose process is gone (kill -9), "
                           "still running their last statement; with --no-terminate-stale, wait for them.")(fn)
    return fn
