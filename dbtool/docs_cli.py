"""`dbtool wait`, `dbtool backup`, `dbtool restore`, `dbtool docs`: each a few lines over the library."""

from __future__ import annotations

from pathlib import Path

import click

from .cli_common import EPILOG, SECONDS, database_url_option, fleet_options, say, setting_option, target_for
from .errors import EXIT_FINDINGS


@click.command(epilog="""Examples:

\b
  dbtool wait --timeout 60 && dbtool migrate
  dbtool wait --login --database-url postgresql://app@db/app
  dbtool wait --targets fleet.txt --parallel 50 --timeout 120

The server counts as up when it answers, even if it refuses this login (wrong password,
missing database): waiting would not fix that, and the next command reports it. With
--login, wait until a login to the database succeeds. Exit 3 on timeout.

""" + EPILOG)
@database_url_option
@fleet_options(report_format=True)
@click.option("--timeout", type=SECONDS, default=30, show_default=True, metavar="SECONDS",
              help="Give up (exit 3) after this many seconds.")
@click.option("--login", is_flag=True, help="Wait until a login to the configured database succeeds.")
def wait(database_url, fleet, fmt, timeout, login):
    """Wait until the PostgreSQL server accepts connections (exit 0), or time out (exit 3)."""
    from . import wait as wait_lib

    if fleet:
        return fleet.run("wait", fmt, timeout=timeout, login=login)
    target = target_for(database_url)
    ready = wait_lib.wait(target, timeout=timeout, login=login)
    say(f"server up after {ready.seconds:.2f}s ({ready.attempts} attempt(s))"
        + (f"; note: {ready.note}" if ready.note else ""))


@click.command(epilog="""Examples:

\b
  dbtool backup
  dbtool backup --out /backups/prod.dump
  make backup

The archive (mode 0600) gets its name only when complete, and only where nothing was:
--out refuses an existing file unless --force, and never writes through a symbolic link
or to a device, a pipe or a folder. Its folder must exist. Behind a session holding a
table lock, pg_dump waits --lock-timeout seconds, then stops (exit 1, nothing written)
naming that session.

""" + EPILOG)
@database_url_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Where to write the archive [default: var/backups/<dbname>-<UTC time>.dump].")
@click.option("--force", is_flag=True, help="Replace an existing regular file at --out.")
@setting_option("DBTOOL_DATA_LOCK_TIMEOUT", "--lock-timeout", metavar="SECONDS", show_default="10",
                help="Seconds pg_dump waits for a table lock held by another session, then stops (exit 1) "
                     "naming who holds it.")
def backup(database_url, out, force):
    """Back up the whole database with pg_dump -Fc (custom format, for pg_restore)."""
    from . import backup as backup_lib

    target = target_for(database_url)
    done = backup_lib.backup(target, out=out, force=force)
    say(f"backup written: {done.path} ({done.bytes / 1024:.0f} KiB in {done.seconds:.2f}s)")
    click.echo(str(done.path))


@click.command(epilog="""Examples:

\b
  dbtool restore var/backups/dbtool-20250101T120000Z.dump
  make restore FILE=var/backups/dbtool-20250101T120000Z.dump FORCE=1

Refuses a database that already has tables (exit 1, nothing changed) unless --force,
which drops and re-creates what the backup contains. The restore runs in one
transaction: if it fails, the database is left as it was (so too when a lock held by
another session is not granted within --lock-timeout seconds: that session is named).

""" + EPILOG)
@database_url_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Restore into a non-empty database (--clean --if-exists).")
@click.option("--no-owner", is_flag=True,
              help="Do not restore ownership or privileges (restoring as another role or to another server).")
@setting_option("DBTOOL_DATA_LOCK_TIMEOUT", "--lock-timeout", metavar="SECONDS", show_default="10",
                help="Seconds each statement waits for a lock held by another session, then the restore stops "
                     "(exit 1, nothing changed) naming who holds it.")
def restore(database_url, file, force, no_owner):
    """Restore a `dbtool backup` archive with pg_restore."""
    from . import backup as backup_lib

    target = target_for(database_url)
    done = backup_lib.restore(target, file, force=force, no_owner=no_owner)
    say(f"restored {done.path} into {target.display()} in {done.seconds:.2f}s")


@click.command(epilog="""Examples:

\b
  dbtool docs
  dbtool docs --check     # in CI: exit 1 when docs/ is stale

Writes SCHEMA.md (tables, keys, indexes, Mermaid ER diagrams), CLI.md (every --help)
and, when Graphviz `dot` is installed, schema.svg. Needs no database.

""" + EPILOG)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Folder to write to [default: docs/ of the project].")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when the generated files are stale.")
def docs(out, check):
    """Generate docs/SCHEMA.md, docs/CLI.md and docs/schema.svg from sql/ and --help."""
    from . import docs as docs_lib

    if check:
        stale = docs_lib.stale(out)
        say(f"stale: {', '.join(stale)} (run `make docs`)" if stale else "docs are up to date")
        return EXIT_FINDINGS if stale else 0
    for path in docs_lib.write(out):
        say(f"wrote {path}")
    return 0
