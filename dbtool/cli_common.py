"""Pieces every CLI command shares: options, where we connect, how we talk.

Nothing here imports psycopg, yoyo or duckdb: `dbtool --help` costs python + click.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from . import paths, settings
from .errors import UsageError

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


# -- many databases: --targets FILE / --targets-query SQL (dbtool/fleet) ------------------------------------------

@dataclass(frozen=True)
class FleetRequest:
    """Which databases a fleet run acts on, and how; built from the options, before anything is read."""

    file: Path | None
    query: str | None
    registry_url: str | None
    registry_source: str
    database_url: str | None  # with --targets-query and no --registry-url: the registry
    parallel: int
    canary: int
    continue_on_error: bool

    def run(self, command: str, fmt: str, *args: Any, **kw: Any) -> int:
        from .fleet.command import execute

        return execute(self, command, fmt, *args, **kw)


TARGETS_HELP = ("A file naming the databases to act on: per line [LABEL] URL, or [LABEL] service=NAME; # comments "
                "(- reads stdin). Instead of --database-url.")


def fleet_options(fn: Callable | None = None, *, report_format: bool = False) -> Callable:
    """--targets / --targets-query (with --registry-url), --parallel, --canary, --continue-on-error: run the command
    on many databases at once in this process (dbtool/fleet); the command gets `fleet`, a FleetRequest or None.
    report_format: also --format text|json|junit (for commands without one)."""

    def decorate(fn: Callable) -> Callable:
        if report_format:  # listed in --help after the options below
            fn = click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text",
                              show_default=True, help="The report of a run over --targets or --targets-query.")(fn)

        @setting_option("DBTOOL_TARGETS", "--targets", metavar="FILE", help=TARGETS_HELP)
        @click.option("--targets-query", metavar="SQL",
                      help="Read the databases from a registry: a query returning rows of (label, url) or (url), run "
                           "read-only on --registry-url (default: the --database-url).")
        @setting_option("DBTOOL_REGISTRY_URL", "--registry-url", metavar="URL")
        @setting_option("DBTOOL_PARALLEL", "--parallel", metavar="N",
                        show_default="min(8, 2 x CPUs)")
        @click.option("--canary", type=click.IntRange(min=1), metavar="N",
                      help="Run the first N targets first; if any fails, start no other.")
        @click.option("--continue-on-error", is_flag=True,
                      help="Go on starting targets after one failed (default: start no new one; running ones finish).")
        @functools.wraps(fn)
        def wrapper(*args: Any, targets_query: str | None, canary: int | None, continue_on_error: bool,
                    **kw: Any) -> Any:
            kw["fleet"] = fleet_request(click.get_current_context(), kw.get("database_url"), targets_query,
                                        canary, continue_on_error)
            if "fmt" in kw and kw["fmt"] not in ("text", None) and kw["fleet"] is None and report_format:
                raise UsageError(f"--format {kw['fmt']}: the report of a run over --targets or --targets-query; "
                                 "on one database this command reports in text")
            return fn(*args, **kw)

        return wrapper

    return decorate(fn) if fn is not None else decorate


def fleet_request(ctx: click.Context, database_url: str | None, query: str | None, canary: int | None,
                  continue_on_error: bool) -> FleetRequest | None:
    """The command line wins over the environment: --database-url names one database even when DBTOOL_TARGETS is
    set; on the command line, --targets excludes --database-url and --targets-query."""
    from click.core import ParameterSource

    given = {name: ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
             for name in ("targets", "registry_url", "parallel")}
    if query is not None and not query.strip():
        raise UsageError("--targets-query is empty (an unset variable?): give a query, or leave the option out")
    if given["targets"]:
        if query is not None:
            raise UsageError("--targets and --targets-query do not combine: give one")
        if database_url is not None:
            raise UsageError("--targets and --database-url do not combine: --targets names the databases")
        if settings.get("DBTOOL_TARGETS") is None:
            raise UsageError("--targets is empty (an unset variable?): give a file, or leave the option out")
    # DBTOOL_TARGETS from the environment: unless the command line names the databases otherwise.
    file = settings.get("DBTOOL_TARGETS") if given["targets"] or (query is None and database_url is None) else None
    if given["registry_url"] and query is None:
        raise UsageError("--registry-url applies to --targets-query only")
    if file is None and query is None:
        extra = [name for name, on in (("--parallel", given["parallel"]), ("--canary", canary is not None),
                                       ("--continue-on-error", continue_on_error)) if on]
        if extra:
            raise UsageError(f"{extra[0]} applies to a run over --targets or --targets-query (many databases)")
        if database_url is not None and settings.get("DBTOOL_TARGETS") is not None:
            say("note: DBTOOL_TARGETS is set, but --database-url names one database: acting on that one only")
        return None
    registry = settings.get("DBTOOL_REGISTRY_URL") if query is not None else None
    return FleetRequest(file, query, registry or None,
                        "--registry-url" if given["registry_url"] else "DBTOOL_REGISTRY_URL", database_url,
                        settings.get("DBTOOL_PARALLEL"), canary or 0, continue_on_error)
