"""`dbtool analytics ...`: the DuckDB side, each command a few lines over the library."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import click

from .. import progress
from ..cli_common import EPILOG, SECONDS, Number, database_url_option, say, setting_option, target_for
from ..errors import UsageError

# duckdb (and numpy) are imported inside the commands: `dbtool --help` does not pay for them.
FLOAT32_MAX = 3.4028234663852886e38  # embeddings are FLOAT[N]: a bigger number becomes infinity
path_option = click.option("--path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
                           envvar="DBTOOL_DUCKDB_PATH", show_envvar=True,
                           help="DuckDB file [default: var/analytics.duckdb].")
format_option = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                             show_default=True)

@click.group(epilog="""Examples:

\b
  dbtool analytics init
  dbtool analytics sync
  dbtool analytics summary --format json

""" + EPILOG)
def analytics():
    """DuckDB analytics of the chatbot: schema, sync from PostgreSQL, search, summaries."""

@analytics.command(epilog="Example: dbtool analytics init --path /tmp/a.duckdb\n\n" + EPILOG)
@path_option
def init(path):
    """Create or update the DuckDB file from sql/duckdb/ (idempotent; each file all or nothing)."""
    from . import db

    target, applied = db.init(path)
    say(f"duckdb: {target}: {len(applied.files)} file(s) applied, {applied.new_objects} new table(s)/index(es)")

@analytics.command(epilog="""Example: dbtool analytics sync --database-url postgresql://app@db/chatbot

Refuses a missing DuckDB file (a mistyped --path would copy everything into a new one) unless
--create; `dbtool analytics init` (run by `make migrate`) creates the default one. Rows deleted
in PostgreSQL are deleted from DuckDB too, and rows changed there (a redacted text, a new phone
number) are rewritten; an embedding of a message whose text changed is dropped. Nothing is
written to disk but the DuckDB file (0600; its WAL and spill files are private too). Behind a
session holding a lock on a chatbot table it waits --lock-timeout seconds, then stops (exit 1,
nothing copied) naming that session.

""" + EPILOG)
@database_url_option
@path_option
@click.option("--create", is_flag=True, help="Create the DuckDB file if it does not exist.")
@click.option("--overlap-minutes", type=Number("minutes", maximum=10**9), metavar="FLOAT", default=10,
              show_default=True, help="Re-read sessions updated this long before the last watermark (late commits).")
@click.option("--wait", type=SECONDS, metavar="FLOAT", default=30, show_default=True,
              help="Seconds to wait for writers open at the snapshot before giving up.")
@setting_option("DBTOOL_DATA_LOCK_TIMEOUT", "--lock-timeout", metavar="SECONDS", show_default="10",
                help="Seconds to wait for a lock on a chatbot table held by another session, then stop (exit 1, "
                     "nothing copied) naming who holds it.")
@setting_option("DBTOOL_PROGRESS", "--progress/--no-progress", default=None, show_default="on a terminal")
def sync(database_url, path, create, overlap_minutes, wait):
    """Copy new and changed chatbot messages and sessions from PostgreSQL, remove what is gone (all or nothing)."""
    from ..lock import application_name
    from . import db
    from .sync import sync as sync_lib

    file = Path(path) if path else db.default_path()
    if not create and not file.is_file():
        raise UsageError(f"no DuckDB file at {file}; run `dbtool analytics init` first, or add --create")
    target = target_for(database_url)
    bar = progress.Progress("sync", total=4)  # a live line per step on a terminal only
    labels = iter(["sessions", "deletions", "watermark"])

    def on_step(_done: str) -> None:
        bar.done_step()
        if (label := next(labels, None)) is not None:
            bar.step(label)

    with target.connect(application_name=application_name("analytics sync")) as pg, \
            db.connect(file, create=create) as duck:
        db.apply_schema(duck)  # a first sync needs no separate init
        bar.step("key sets and messages (read PostgreSQL, load DuckDB)")
        try:
            out = sync_lib(pg, duck, overlap=timedelta(minutes=overlap_minutes), wait=wait, on_step=on_step)
        except BaseException:
            bar.abort()
            raise
    dropped = f" ({out.embeddings_dropped} embedding(s) of a changed text dropped)" if out.embeddings_dropped else ""
    how = {"unchanged": "; nothing changed in PostgreSQL since the last sync (one query)",
           "first": f"; first copy, {out.messages / out.seconds if out.seconds else 0:,.0f} rows/s",
           "full": "; every row compared (no baseline of an earlier sync)"}.get(out.mode, "")
    say(f"{out.messages} message(s) and {out.sessions} session(s) copied, {out.updated} message(s) rewritten "
        f"(changed in PostgreSQL){dropped}, {out.removed} row(s) removed (gone from PostgreSQL) up to message id "
        f"{out.last_message_id} in {out.seconds:.2f}s{how}")

@analytics.command(epilog="Example: dbtool analytics search --like 42 -k 5 --format json\n\n" + EPILOG)
@path_option
@click.option("--vector", metavar="JSON", help="Query vector as a JSON list of floats, or @FILE holding one.")
@click.option("--like", "like_id", type=int, metavar="ID", help="Use the stored embedding of this message id.")
@click.option("-k", type=click.IntRange(1, 10_000), default=10, show_default=True, help="How many results.")
@click.option("--phone", metavar="E164", help="Only this user's messages.")
@format_option
def search(path, vector, like_id, k, phone, fmt):
    """Exact top-k messages by cosine similarity of their embeddings."""
    from . import db
    from .embeddings import search_similar

    if (vector is None) == (like_id is None):
        raise UsageError("give exactly one of --vector or --like")
    with db.connect(path, read_only=True) as duck:
        query = _vector(vector) if vector is not None else _stored(duck, like_id)
        hits = search_similar(duck, query, k=k, phone_number=phone)
    if fmt == "json":
        click.echo(json.dumps([asdict(h) for h in hits], indent=1))
    else:
        for h in hits:
            click.echo(f"{h.score:8.4f}  {h.id:>10}  {h.phone_number:16} {h.session_id:20} {_short(h.content)}")

@analytics.command(epilog="Example: dbtool analytics summary --format json\n\n" + EPILOG)
@path_option
@format_option
def summary(path, fmt):
    """Messages per intent, sentiments, response-time percentiles, daily volume, qualification funnel."""
    from . import db
    from .summaries import render_json, render_text
    from .summaries import summary as summary_lib

    with db.connect(path, read_only=True) as duck:
        data = summary_lib(duck)
    click.echo(render_json(data) if fmt == "json" else render_text(data))

VECTOR_FILE_MAX = 16 * 1024 * 1024  # a JSON list of floats; far more than any embedding needs


def _vector(text: str) -> list[float]:
    """--vector: a JSON list of finite numbers, given as is or as @FILE; anything else is one line, exit 2."""
    if text.startswith("@"):
        name = text[1:]
        try:
            with open(name, "rb") as file:  # bounded: @/dev/zero or a disk image must not fill the memory
                raw = file.read(VECTOR_FILE_MAX + 1)
        except OSError as exc:
            raise UsageError(f"cannot read {name}: {exc.strerror}") from None
        if len(raw) > VECTOR_FILE_MAX:
            raise UsageError(f"--vector @{name}: larger than {VECTOR_FILE_MAX // 2**20} MiB, not a vector")
        try:
            text = raw.decode("utf-8-sig")  # a BOM (Windows editors) is not part of the JSON
        except UnicodeDecodeError as exc:
            raise UsageError(f"--vector @{name}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})"
                             "; give a JSON list of numbers") from None
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--vector is not JSON: {exc.msg} at character {exc.pos}") from None
    except RecursionError:
        raise UsageError("--vector is nested too deeply; give a JSON list of numbers") from None
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                               for v in values):
        raise UsageError("--vector must be a JSON list of numbers")
    try:
        floats = [float(v) for v in values]
    except OverflowError:
        floats = [math.inf]
    if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in floats):
        raise UsageError("--vector holds a number that is not finite, or beyond a 32-bit float (NaN, Infinity, 1e39)")
    return floats

def _stored(duck, message_id: int) -> list[float]:
    from .embeddings import stored_embedding

    vector = stored_embedding(duck, message_id)
    if vector is None:
        raise UsageError(f"no embedding for message id {message_id}")
    return vector

def _short(text: str | None, width: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"
