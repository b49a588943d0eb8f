"""Message embeddings: stored L2-normalised, searched exactly by cosine similarity.

Why a matrix outside DuckDB: a top-k over N x 384 floats is memory-bound. DuckDB's per-row
array_cosine_similarity scan runs at about 2.5 GB/s; one float32 matrix-vector product (BLAS) runs at
memory speed. So a search is one matrix-vector product plus an argpartition over the normalised matrix.

Where the matrix comes from: the search sidecar (sidecar.py), `<file>.embeddings` next to the DuckDB file,
which numpy memory-maps: a new process's first search scans it once at memory speed, and the processes
searching one file share its pages. Converting DuckDB's FLOAT[384] rows into numpy instead costs about 11 s
per million rows: that happens only when the sidecar is missing or stale (the rows are then written straight
into a new sidecar, which is then mapped), and for an in-memory DuckDB (no sidecar, an in-memory matrix).

Which state it belongs to: analytics_embeddings_version.version, a random 63-bit number drawn anew by every
write to message_embeddings made through dbtool (add_embeddings, and bump_version for the others: sync,
erase_phone, jobs purge), in the writer's transaction; with the row count and the embedding's dimension it is
the stamp of a matrix, and the sidecar's header holds the same three. A search scans the connection's cached
matrix (in a new process: the sidecar as its header describes it), then checks its stamp in one query of
about 1 ms (version, count(*), and the embedding column's type from the result's description, no row
read). A stale matrix is dropped and the search done again on the current one: a stale matrix or sidecar
never answers. The row count catches most writes made by anything else; writers that bypass dbtool should
call bump_version().

The writers keep the sidecar current, before they commit: add_embeddings of new ids appends their rows in
place; a write that removes or replaces rows rewrites it without them (from the old sidecar, not from
DuckDB), or removes it. So an erased user's vectors leave the sidecar with the erasure.

The matrix holds each row's id, vector, and session and phone number (as codes into two string tables), so
a hit needs no query of its own; with_content adds one query for message_id, text and model.
"""

from __future__ import annotations

import re
import secrets
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import numpy as np

from . import db, sidecar
from .db import AnalyticsError, duck_error

LOAD_CHUNK = 131_072  # rows per columnar read while building the matrix from DuckDB

# The state a matrix belongs to: (version, rows, dimensions). The third column reads no row: its type,
# FLOAT[N] in the result's description, gives the dimension.
_STAMP_SQL = """
    SELECT (SELECT version FROM analytics_embeddings_version WHERE id = 1),
           (SELECT count(*) FROM message_embeddings),
           (SELECT embedding FROM message_embeddings LIMIT 0)"""
_SET_VERSION_SQL = """
    INSERT INTO analytics_embeddings_version (id, version) VALUES (1, ?)
    ON CONFLICT (id) DO UPDATE SET version = excluded.version"""

# What the sidecar machinery did in this process, for tests and benchmarks (never for decisions).
STATS = {"built": 0, "mapped": 0, "written": 0, "appended": 0, "rewritten": 0, "removed": 0}


@dataclass(frozen=True)
class SearchHit:
    id: int
    score: float
    session_id: str
    phone_number: str
    message_id: str | None = None
    content: str | None = None
    model_name: str | None = None


@dataclass
class _Matrix:
    stamp: tuple[int | None, int, int]  # (version, rows, dimensions)
    records: np.ndarray  # sidecar.record_dtype(dim): a map of the sidecar, or in memory
    sessions: list[str]  # the session key of code i
    phones: list[str]    # the phone number of code i
    _by_phone: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def ids(self) -> np.ndarray:
        return self.records["id"]

    @property
    def vectors(self) -> np.ndarray:
        return self.records["vec"]  # (n, dim), rows of norm 1; strided, which BLAS takes as it is

    def rows_of(self, phone_number: str) -> np.ndarray:
        """Row positions of one phone number's rows, ascending."""
        if self._by_phone is None:  # built on the first filtered search only
            codes = self.records["phone"]
            order = np.argsort(codes, kind="stable")
            bounds = np.searchsorted(codes[order], np.arange(len(self.phones) + 1))
            self._by_phone = {p: order[bounds[i]:bounds[i + 1]] for i, p in enumerate(self.phones)}
        return self._by_phone.get(phone_number, np.empty(0, np.int64))

    def hit(self, row: int, score: float) -> SearchHit:
        record = self.records[row]
        try:
            return SearchHit(int(record["id"]), score, self.sessions[record["session"]], self.phones[record["phone"]])
        except IndexError:  # a code outside its table: not the sidecar its header says
            raise _Corrupt from None


class _Corrupt(Exception):
    pass


_CACHE: "weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, _Matrix]" = weakref.WeakKeyDictionary()
_PATHS: "weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, Path | None]" = weakref.WeakKeyDictionary()


def embedding_dim(conn: duckdb.DuckDBPyConnection) -> int:
    """N of the FLOAT[N] embedding column, as the DuckDB file has it."""
    return _stamp(conn)[2]


def sidecar_path(conn: duckdb.DuckDBPyConnection) -> Path | None:
    """Where the search sidecar of conn's DuckDB file is; None for an in-memory database."""
    if conn not in _PATHS:
        file = db.file_of(conn)
        if file is None:
            row = conn.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
                               ).fetchall()
            file = Path(row[0][0]).absolute() if row and row[0][0] else None
        _PATHS[conn] = sidecar.path_for(file) if file is not None else None
    return _PATHS[conn]


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to norm 1 (float32); a zero or non-finite row is refused."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    bad = ~np.isfinite(norms) | (norms == 0)
    if bad.any():
        raise AnalyticsError("cannot normalise a zero or non-finite embedding vector")
    return v / norms


def add_embeddings(conn: duckdb.DuckDBPyConnection, rows: Iterable[Mapping]) -> int:
    """Insert (or replace, by id) embeddings; returns how many rows were written.

    Each row: id (chatbot.messages.id), session_id, phone_number, content, embedding (N floats),
    model_name, and optionally message_id. Vectors are stored L2-normalised. One transaction, in which the
    search sidecar follows: the new rows appended (or, when ids were replaced, rewritten without the old ones).
    """
    rows = list(rows)
    if not rows:
        return 0
    dim = embedding_dim(conn)
    try:
        vecs = np.stack([np.asarray(r["embedding"], dtype=np.float32).reshape(-1) for r in rows])
    except ValueError:
        raise AnalyticsError("embeddings of different sizes in one call") from None
    if vecs.shape[1] != dim:
        raise AnalyticsError(f"embedding has {vecs.shape[1]} dimensions, message_embeddings expects {dim}")
    unit = normalise(vecs)
    # Column arrays scanned by DuckDB directly (replacement scans of these locals): no per-row SQL.
    e_vec = np.ascontiguousarray(unit.T)  # a 2-D array is scanned as one column per row
    e_id = np.fromiter((r["id"] for r in rows), dtype=np.int64, count=len(rows))
    e_mid = np.array([r.get("message_id") for r in rows], dtype=object)
    e_sid = np.array([r["session_id"] for r in rows], dtype=object)
    e_phone = np.array([r["phone_number"] for r in rows], dtype=object)
    e_content = np.array([r["content"] for r in rows], dtype=object)
    e_model = np.array([r["model_name"] for r in rows], dtype=object)
    added = sidecar.Rows(e_id, unit, [r["session_id"] for r in rows], [r["phone_number"] for r in rows])
    return _insert(conn, dim, added, e_vec, e_id, e_mid, e_sid, e_phone, e_content, e_model)


def _insert(conn, dim, added, e_vec, e_id, e_mid, e_sid, e_phone, e_content, e_model) -> int:
    elements = ", ".join(f"v.column{i}" for i in range(dim))
    query = f"""
        INSERT OR REPLACE INTO message_embeddings
            (id, message_id, session_id, phone_number, content, embedding, model_name)
        SELECT i.column0, m.column0, s.column0, p.column0, c.column0, [{elements}]::FLOAT[{dim}], n.column0
        FROM e_id i POSITIONAL JOIN e_mid m POSITIONAL JOIN e_sid s POSITIONAL JOIN e_phone p
             POSITIONAL JOIN e_content c POSITIONAL JOIN e_model n POSITIONAL JOIN e_vec v"""
    with _transaction(conn):
        replaced = conn.execute("SELECT count(*) FROM message_embeddings WHERE id IN (SELECT column0 FROM e_id)"
                                ).fetchall()[0][0]
        before = _version(conn)
        conn.execute(query)
        after = _new_version(conn)
        if replaced:
            _follow(conn, before, after, changed=added.ids, added=added)
        else:
            _follow(conn, before, after, added=added)
    return len(e_id)


class _transaction:
    """BEGIN/COMMIT, or join the caller's transaction if one is open (own is then False)."""

    def __init__(self, conn: duckdb.DuckDBPyConnection):
        self.conn, self.own = conn, False

    def __enter__(self):
        try:
            self.conn.execute("BEGIN")
            self.own = True
            db.began(self.conn)
        except duckdb.TransactionException:
            self.own = False
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if self.own:
            try:
                self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
            except BaseException:
                db.ended(self.conn, committed=False)
                raise
            db.ended(self.conn, committed=exc_type is None)
        return False


def _version(conn: duckdb.DuckDBPyConnection) -> int | None:
    row = conn.execute("SELECT version FROM analytics_embeddings_version WHERE id = 1").fetchall()
    return row[0][0] if row else None


def _new_version(conn: duckdb.DuckDBPyConnection) -> int:
    version = secrets.randbits(63)
    conn.execute(_SET_VERSION_SQL, [version])
    return version


def bump_version(conn: duckdb.DuckDBPyConnection, *, deleted_only: bool = False,
                 changed: Iterable[int] | None = None) -> None:
    """Mark message_embeddings as changed by a write other than add_embeddings, in the caller's transaction: a
    new version, and the search sidecar brought along before the caller commits.

    deleted_only: the write only deleted rows (sync, erase_phone): the sidecar is rewritten without them.
    changed: ids whose rows were deleted or changed (session, phone number): those are read again. With
    neither (any other write, e.g. one that bypasses dbtool), the sidecar is removed: the next search
    rebuilds it from DuckDB.
    """
    before = _version(conn)
    after = _new_version(conn)
    if deleted_only or changed is not None:
        _follow(conn, before, after, changed=np.fromiter(changed or (), dtype=np.int64))
    else:
        _follow(conn, before, after, unknown=True)


def _follow(conn: duckdb.DuckDBPyConnection, before: int | None, after: int, *,
            added: sidecar.Rows | None = None, changed: np.ndarray | None = None, unknown: bool = False) -> None:
    """Bring the search sidecar from version `before` to `after` (what conn sees now, in its transaction):
    `added` appended when nothing else changed; else a rewrite keeping the rows still there and not `changed`,
    then `added` and the changed rows still there read again. When the sidecar is not at `before` (or
    anything fails, or the change is unknown), it is removed: the next search rebuilds it."""
    path = sidecar_path(conn)
    if path is None:
        return
    with sidecar.lock(path):
        sidecar.begin_write(path, after)
        # In no dbtool transaction (at_end False), the mark ends once a search sees `after` committed.
        db.at_end(conn, lambda _committed: sidecar.end_write(path, after))
        done, kind = False, "removed"
        try:
            _, rows, dim = _stamp(conn)
            state = (after, rows, dim)
            old = sidecar.read_header(path)
            if unknown or rows == 0:
                done = False
            elif added is not None and changed is None and len(added.ids) == rows:  # the first rows
                first = added

                def fill(records: np.ndarray, sessions: sidecar.Strings, phones: sidecar.Strings) -> None:
                    records[:] = first.records(dim, sessions, phones)

                sidecar.write(path, state, fill)
                done, kind = True, "written"
            elif old is None or old.version != before or old.dim != dim:
                done = False
            elif added is not None and changed is None:
                done, kind = sidecar.append(path, old.state, state, added), "appended"
            else:
                present = conn.execute("SELECT id FROM message_embeddings").fetchnumpy()["id"]
                again = np.setdiff1d(changed if changed is not None else np.empty(0, np.int64),
                                     added.ids if added is not None else np.empty(0, np.int64))
                again = again[np.isin(again, present)]
                extra = _rows(conn, again, dim)
                if added is not None:
                    extra = sidecar.Rows(np.concatenate([added.ids, extra.ids]),
                                         np.concatenate([added.vectors, extra.vectors]),
                                         added.sessions + extra.sessions, added.phones + extra.phones)
                leave = np.concatenate([changed if changed is not None else np.empty(0, np.int64), extra.ids])

                def keep(ids: np.ndarray) -> np.ndarray:
                    return np.isin(ids, present) & ~np.isin(ids, leave)

                done, kind = sidecar.rewrite(path, old.state, state, keep=keep, added=extra), "rewritten"
        except OSError:
            done = False
        if done:
            STATS[kind] += 1
            return
        try:
            if path.exists() or path.is_symlink():
                STATS["removed"] += 1
            sidecar.remove(path)
        except OSError as exc:  # it may hold rows this transaction removes: the transaction must not commit
            raise AnalyticsError(f"cannot remove the stale search sidecar {path}: {exc.strerror or exc}") from None


def _rows(conn: duckdb.DuckDBPyConnection, ids: np.ndarray, dim: int) -> sidecar.Rows:
    """These rows of message_embeddings, as sidecar rows (in conn's transaction)."""
    if not len(ids):
        return sidecar.Rows(np.empty(0, np.int64), np.empty((0, dim), np.float32), [], [])
    found = conn.execute("SELECT id, session_id, phone_number, embedding FROM message_embeddings"
                         " WHERE id IN (SELECT unnest(?::BIGINT[])) ORDER BY id", [ids.tolist()]).fetchnumpy()
    vectors = np.empty((len(found["id"]), dim), np.float32)
    for i, vector in enumerate(found["embedding"]):
        vectors[i] = vector
    return sidecar.Rows(np.asarray(found["id"], np.int64), vectors, list(found["session_id"]),
                        list(found["phone_number"]))


def _stamp(conn: duckdb.DuckDBPyConnection) -> tuple[int | None, int, int]:
    """(version, rows, dimensions) of message_embeddings as conn sees it."""
    found = conn.execute(_STAMP_SQL)
    row = found.fetchall()[0]
    m = re.fullmatch(r"FLOAT\[(\d+)\]", str(found.description[2][1]))
    if not m:
        raise AnalyticsError("message_embeddings.embedding is not a FLOAT[N] column; run `dbtool analytics init`")
    return row[0], row[1], int(m.group(1))


def _fill(conn: duckdb.DuckDBPyConnection, records: np.ndarray, sessions: sidecar.Strings,
          phones: sidecar.Strings) -> None:
    """records <- every row of message_embeddings (id, session and phone codes, vector): columnar reads of
    LOAD_CHUNK rows, in the caller's transaction."""
    n = len(records)
    top = conn.execute("SELECT coalesce(max(rowid), -1) FROM message_embeddings").fetchall()[0][0]
    pos = 0
    for lo in range(0, top + 1, LOAD_CHUNK):
        part = conn.execute("SELECT id, session_id, phone_number, embedding FROM message_embeddings"
                            " WHERE rowid >= ? AND rowid < ?", [lo, lo + LOAD_CHUNK]).fetchnumpy()
        k = len(part["id"])
        if pos + k > n:
            break
        records["id"][pos:pos + k] = part["id"]
        records["session"][pos:pos + k] = sessions.codes(part["session_id"])
        records["phone"][pos:pos + k] = phones.codes(part["phone_number"])
        vectors = records["vec"]
        for i, vector in enumerate(part["embedding"]):  # an object array of per-row float32 arrays
            vectors[pos + i] = vector
        pos += k
    if pos != n:
        raise AnalyticsError(f"message_embeddings changed while loading ({pos} rows read, {n} expected)")


def _build(conn: duckdb.DuckDBPyConnection) -> _Matrix:
    """The matrix from DuckDB, one snapshot; written to a new sidecar and mapped from it when it may be:
    a file-backed database, no transaction of the caller's open (its rows might not commit), no writer of
    this process in flight."""
    path = sidecar_path(conn)
    tx = _transaction(conn)
    with tx:
        stamp = _stamp(conn)
        version, n, dim = stamp
        STATS["built"] += 1
        if path is not None and tx.own and version is not None and n:
            with sidecar.lock(path):
                if sidecar.may_publish(path, version):
                    try:
                        sidecar.sweep(path.parent)
                        sidecar.write(path, (version, n, dim), lambda r, s, p: _fill(conn, r, s, p))
                    except OSError:
                        pass  # an unwritable folder, a full disk: search from memory
                    else:
                        STATS["written"] += 1
                        content = sidecar.load(path, (version, n, dim))
                        if content is not None:
                            return _Matrix(stamp, content.records, content.sessions, content.phones)
        records = np.empty(n, dtype=sidecar.record_dtype(dim))
        sessions, phones = sidecar.Strings(), sidecar.Strings()
        _fill(conn, records, sessions, phones)
    return _Matrix(stamp, records, sessions.values, phones.values)


def _open(conn: duckdb.DuckDBPyConnection, stamp: tuple[int | None, int, int]) -> _Matrix:
    """The matrix of this stamp: the sidecar when it is exactly that, else built."""
    version, n, dim = stamp
    if not n:
        return _Matrix(stamp, np.empty(0, dtype=sidecar.record_dtype(dim)), [], [])
    path = sidecar_path(conn)
    if path is not None and version is not None:
        content = sidecar.load(path, (version, n, dim))
        if content is not None:
            STATS["mapped"] += 1
            return _Matrix(stamp, content.records, content.sessions, content.phones)
    return _build(conn)


def _peek(conn: duckdb.DuckDBPyConnection) -> _Matrix | None:
    """The sidecar as its header describes it, mapped but not yet checked against DuckDB: the search checks
    it after the scan, in its one query."""
    path = sidecar_path(conn)
    content = sidecar.load(path) if path is not None else None
    if content is None or content.header.rows == 0:
        return None
    STATS["mapped"] += 1
    return _Matrix(content.header.state, content.records, content.sessions, content.phones)


def matrix(conn: duckdb.DuckDBPyConnection) -> _Matrix:
    """The connection's cached matrix when DuckDB is still at its stamp; else the sidecar's, or one built anew."""
    stamp = _stamp(conn)
    cached = _CACHE.get(conn)
    if cached is not None and cached.stamp == stamp:
        return cached
    _CACHE.pop(conn, None)  # free (unmap) the old matrix before making the new one
    fresh = _CACHE[conn] = _open(conn, stamp)  # stamped with what it holds (a build reads it again)
    return fresh


def forget(conn: duckdb.DuckDBPyConnection) -> None:
    """Drop conn's cached matrix (tests and benchmarks: the next search starts as a new process's first)."""
    _CACHE.pop(conn, None)


def top_k(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(row positions, scores) of the k best rows: score descending, then id ascending."""
    if k <= 0 or len(ids) == 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    scores = vectors @ query
    if k < len(scores):
        pick = np.argpartition(scores, len(scores) - k)[len(scores) - k:]
    else:
        pick = np.arange(len(scores))
    order = np.lexsort((ids[pick], -scores[pick]))
    return pick[order], scores[pick[order]]


def search_similar(conn: duckdb.DuckDBPyConnection, vector, k: int = 10, phone_number: str | None = None,
                   *, with_content: bool = True) -> list[SearchHit]:
    """Exact top-k of message_embeddings by cosine similarity to vector, optionally for one user.

    Ordered by score descending, then id ascending (so ties come out in a stable order)."""
    try:
        return _search(conn, vector, k, phone_number, with_content=with_content)
    except duckdb.Error as exc:
        raise duck_error("search failed", exc) from None


def stored_embedding(conn: duckdb.DuckDBPyConnection, message_id: int) -> list[float] | None:
    """The stored (normalised) embedding of a message id, or None when it has none."""
    try:
        row = conn.execute("SELECT embedding::FLOAT[] FROM message_embeddings WHERE id = ?",
                           [message_id]).fetchall()
    except duckdb.Error as exc:
        raise duck_error("reading the stored embedding failed", exc) from None
    return row[0][0] if row else None


def _search(conn: duckdb.DuckDBPyConnection, vector, k: int, phone_number: str | None, *,
            with_content: bool) -> list[SearchHit]:
    try:  # float64 first: a number beyond float32 must be refused, not silently become infinity
        wide = np.asarray(vector, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise AnalyticsError("the query vector must be a flat list of numbers") from None
    if not np.all(np.isfinite(wide) & (np.abs(wide) <= np.finfo(np.float32).max)):
        raise AnalyticsError("the query vector holds a number that is not finite or beyond a 32-bit float")
    # The cached matrix (in a new process: the sidecar as it is) is searched, then its stamp checked; a stale
    # one is dropped and the search done again on the current one: a stale matrix never answers.
    m = _CACHE.get(conn) or _peek(conn)
    checked = m is None
    if m is None:
        m = matrix(conn)
    for _attempt in range(3):  # the cached or peeked matrix; the current one; the current one rebuilt
        if not checked and m.stamp[2] != len(wide):  # not the dimension asked for: check before refusing
            m, checked = matrix(conn), True
        try:
            rows, scores = _top(m, wide, k, phone_number)
            hits: list[SearchHit] | None = [m.hit(int(r), float(sc)) for r, sc in zip(rows, scores)]
        except _Corrupt:  # a sidecar whose codes do not fit its tables: never trusted again
            hits = None
            path = sidecar_path(conn)
            if path is not None:
                sidecar.remove(path)
        if hits is not None and (checked or _stamp(conn) == m.stamp):
            break
        _CACHE.pop(conn, None)
        m, checked = matrix(conn), True
    else:
        raise AnalyticsError("the search matrix does not match message_embeddings; try again")
    _CACHE[conn] = m
    if with_content and hits:
        details = {r[0]: r[1:] for r in conn.execute(
            "SELECT id, message_id, content, model_name FROM message_embeddings WHERE id = ANY(?)",
            [[h.id for h in hits]]).fetchall()}
        hits = [replace(h, message_id=d[0], content=d[1], model_name=d[2])
                for h in hits if (d := details.get(h.id)) is not None]
    return hits


def _top(m: _Matrix, wide: np.ndarray, k: int, phone_number: str | None) -> tuple[np.ndarray, np.ndarray]:
    dim = m.stamp[2]
    q = wide.astype(np.float32)
    if q.shape[0] != dim:
        raise AnalyticsError(f"query vector has {q.shape[0]} dimensions, message_embeddings has {dim}")
    q = normalise(q)
    if phone_number is None:
        return top_k(m.vectors, m.ids, q, k)
    subset = m.rows_of(phone_number)
    local, scores = top_k(m.vectors[subset], m.ids[subset], q, k)
    return subset[local], scores
