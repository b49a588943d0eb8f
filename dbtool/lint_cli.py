"""`dbtool lint`: a few lines over dbtool.lint (the parser is imported only when the command runs)."""

from __future__ import annotations

from pathlib import Path

import click

from .cli_common import database_url_option, say, setting_option
from .errors import EXIT_FINDINGS, UsageError


@click.command(epilog="""Examples:

\b
  dbtool lint sql/                          (every module's files: 0 findings expected)
  dbtool lint sql/crm/160_loyalty.sql --format json
  dbtool lint --pending --database-url "$DATABASE_URL" --format github
  dbtool lint --list-rules

Each finding names its rule and the safe alternative. Waive a rule for one
statement with a comment on or above it, reason mandatory:

\b
  -- dbtool: ignore create-index-not-concurrent: empty until the backfill

Without a database (--database-url, DATABASE_URL or PG* variables; none is
started) existing tables come from the committed snapshot and volatility and
casts are judged conservatively; with one, from its catalog, pg_proc and pg_cast.

Exit codes: 0 no findings, 1 findings, 2 usage error, 3 cannot connect or refused.""")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--pending", is_flag=True,
              help="Also lint the files of the migrations not yet applied on the database (default: the local "
                   "dev cluster, as for status).")
@click.option("--module", "-m", "modules", multiple=True, metavar="M", help="With --pending: this module only "
                                                                            "(repeatable).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github", "junit"]), default="text",
              show_default=True, help="github: workflow annotations (::warning file=...,line=...::).")
@click.option("--rules", "rule_spec", metavar="LIST",
              help="Comma list of groups (default, style, all) and rule ids to check [default: default].")
@click.option("--style", is_flag=True, help="Also check the opt-in style rules (same as adding 'style' to --rules).")
@click.option("--list-rules", is_flag=True, help="Print every rule with its safe alternative, and exit.")
@database_url_option
@setting_option("DBTOOL_READ_LOCK_TIMEOUT", "--lock-timeout", metavar="SECONDS", show_default="10")
def lint(files, pending, modules, fmt, rule_spec, style, list_rules, database_url):
    """Check migrations for locks, rewrites and breaking changes before they run."""
    from . import paths
    from .lint import engine, report, rules

    if list_rules:
        click.echo(report.rules_table(), nl=False)
        return 0
    try:
        enabled = rules.select(rule_spec, style)
    except ValueError as exc:
        raise UsageError(f"--rules: {exc}") from None
    if modules and not pending:
        raise UsageError("--module applies to --pending only")
    if not files and not pending:
        raise UsageError("nothing to lint: give .sql files or folders, or --pending")
    target = _target(database_url, pending)
    result = engine.lint(list(files), enabled=enabled, target=target, pending=pending,
                         modules=paths.check_modules(modules) if modules else None, say=say)
    for line in report.context_lines(result):
        say(line)
    if fmt == "json":
        click.echo(report.as_json(result), nl=False)
    elif fmt == "github":
        click.echo(report.github(result), nl=False)
    elif fmt == "junit":
        click.echo(report.junit(result), nl=False)
    else:
        click.echo(report.text(result, colour=_colour()), nl=False)
    return EXIT_FINDINGS if result.findings else 0


def _target(database_url: str | None, pending: bool):
    """The database to read: any configured one; with --pending, the default one (dev cluster) too.
    Without --pending and with nothing configured, none: nothing is started."""
    from . import config

    if pending:
        target = config.resolve(database_url)
    else:
        target = config.resolve(database_url, start_dev=False)
        if target.source == "local dev cluster":
            return None
    say(f"database: {target.display()} (from {target.source})")
    return target


def _colour() -> bool:
    import sys

    from .progress import colour_enabled

    return colour_enabled(sys.stdout)


__all__ = ["lint"]
