"""Pieces every CLI command shares: options, where we connect, how we talk."""

from __future__ import annotations

import functools

import click

from . import config, migrate as migrate_lib

EPILOG = "Exit codes: 0 ok, 1 drift or failure, 2 usage error, 3 cannot connect or refused."


def say(msg: str) -> None:
    click.echo(msg, err=True)


def database_options(fn):
    """--database-url and --module, shared by every command that talks to PostgreSQL."""

    @click.option("--database-url", envvar=None, metavar="URL",
                  help="PostgreSQL URL; default DATABASE_URL, then PG* variables, then the local dev cluster.")
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
