"""Message embeddings: stored L2-normalised, searched exactly by cosine similarity.

Why an in-memory matrix: a top-k over N x 384 floats is memory-bound. DuckDB's per-row
array_cosine_similarity scan runs at about 2.5 GB/s; one float32 matrix-vector product (BLAS) runs at
memory speed, about 20 GB/s here. So each connection keeps the normalised matrix, loaded from DuckDB in
one columnar read (in chunks, to bound memory), and a search is one matrix-vector product plus an
argpartition. The cache is keyed by the connection and stamped with (version, row count), read in one
query of about 1 ms: every write through this module (and erase_phone) bumps analytics_embeddings_version
in the same transaction, and the row count catches most writes made by anything else; a changed stamp
reloads the matrix before searching. Writers that bypass dbtool should call bump_version().
Hits carry id, score, session and phone from memory; with_content=False skips the one extra query that
fetches message_id, content and model_name, for callers that only need the ids.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import duckdb
import numpy as np

from .db import AnalyticsError, duck_error

LOAD_CHUNK = 131_072  # rows per columnar read while loading the matrix

_STAMP_SQL = """
    SELECT (SELECT version FROM analytics_embeddings_version WHERE id = 1),
           (SELECT count(*) FROM message_embeddings)"""
_BUMP_SQL = """
    INSERT INTO analytics_embeddings_version (id, version) VALUES (1, 1)
    ON CONFLICT (id) DO UPDATE SET version = analytics_embeddings_version.version + 1"""


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
    stamp: tuple
    ids: np.ndarray      # int64 (n,)
    phones: np.ndarray   # object (n,)
    sessions: np.ndarray  # object (n,)
    vectors: np.ndarray  # float32 (n, dim), rows of norm 1
    _by_phone: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def rows_of(self, phone_number: str) -> np.ndarray:
        if self._by_phone is None:  # built on the first filtered search only
            keys, inverse = np.unique(self.phones.astype(str), return_inverse=True)
            order = np.argsort(inverse, kind="stable")
            bounds = np.searchsorted(inverse[order], np.arange(len(keys) + 1))
            self._by_phone = {k: order[bounds[i]:bounds[i + 1]] for i, k in enumerate(keys)}
        return self._by_phone.get(phone_number, np.empty(0, np.int64))


_CACHE: "weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, _Matrix]" = weakref.WeakKeyDictionary()


def embedding_dim(conn: duckdb.DuckDBPyConnection) -> int:
    """N of the FLOAT[N] embedding column, as the DuckDB file has it."""
    row = conn.execute("SELECT data_type FROM duckdb_columns() WHERE database_name = current_database()"
                       " AND schema_name = 'main' AND table_name = 'message_embeddings'"
                       " AND column_name = 'embedding'").fetchall()
    m = re.fullmatch(r"FLOAT\[(\d+)\]", row[0][0]) if row else None
    if not m:
        raise AnalyticsError("message_embeddings.embedding is not a FLOAT[N] column; run `dbtool analytics init`")
    return int(m.group(1))


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
    model_name, and optionally message_id. Vectors are stored L2-normalised. One transaction.
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
    # Column arrays scanned by DuckDB directly (replacement scans of these locals): no per-row SQL.
    e_vec = np.ascontiguousarray(normalise(vecs).T)  # a 2-D array is scanned as one column per row
    e_id = np.fromiter((r["id"] for r in rows), dtype=np.int64, count=len(rows))
    e_mid = np.array([r.get("message_id") for r in rows], dtype=object)
    e_sid = np.array([r["session_id"] for r in rows], dtype=object)
    e_phone = np.array([r["phone_number"] for r in rows], dtype=object)
    e_content = np.array([r["content"] for r in rows], dtype=object)
    e_model = np.array([r["model_name"] for r in rows], dtype=object)
    return _insert(conn, dim, e_vec, e_id, e_mid, e_sid, e_phone, e_content, e_model)


def _insert(conn, dim, e_vec, e_id, e_mid, e_sid, e_phone, e_content, e_model) -> int:
    elements = ", ".join(f"v.column{i}" for i in range(dim))
    query = f"""
        INSERT OR REPLACE INTO message_embeddings
            (id, message_id, session_id, phone_number, content, embedding, model_name)
        SELECT i.column0, m.column0, s.column0, p.column0, c.column0, [{elements}]::FLOAT[{dim}], n.column0
        FROM e_id i POSITIONAL JOIN e_mid m POSITIONAL JOIN e_sid s POSITIONAL JOIN e_phone p
             POSITIONAL JOIN e_content c POSITIONAL JOIN e_model n POSITIONAL JOIN e_vec v"""
    with _transaction(conn):
        conn.execute(query)
        conn.execute(_BUMP_SQL)
    return len(e_id)


class _transaction:
    """BEGIN/COMMIT, or join the caller's transaction if one is open."""

    def __init__(self, conn: duckdb.DuckDBPyConnection):
        self.conn, self.own = conn, False

    def __enter__(self):
        try:
            self.conn.execute("BEGIN")
            self.own = True
        except duckdb.TransactionException:
            self.own = False
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if self.own:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def bump_version(conn: duckdb.DuckDBPyConnection) -> None:
    """Mark the embeddings as changed (for writers other than add_embeddings, e.g. erasure)."""
    conn.execute(_BUMP_SQL)


def _stamp(conn: duckdb.DuckDBPyConnection) -> tuple:
    return tuple(conn.execute(_STAMP_SQL).fetchall()[0])


def _load(conn: duckdb.DuckDBPyConnection) -> _Matrix:
    """The whole table as one float32 matrix: columnar reads of LOAD_CHUNK rows, one snapshot."""
    dim = embedding_dim(conn)
    with _transaction(conn):
        stamp = _stamp(conn)
        n = stamp[1]
        vectors = np.empty((n, dim), dtype=np.float32)
        ids = np.empty(n, dtype=np.int64)
        phones = np.empty(n, dtype=object)
        sessions = np.empty(n, dtype=object)
        top = conn.execute("SELECT coalesce(max(rowid), -1) FROM message_embeddings").fetchall()[0][0]
        pos = 0
        for lo in range(0, top + 1, LOAD_CHUNK):
            part = conn.execute("SELECT id, phone_number, session_id, embedding FROM message_embeddings"
                                " WHERE rowid >= ? AND rowid < ?", [lo, lo + LOAD_CHUNK]).fetchnumpy()
            k = len(part["id"])
            if k:
                ids[pos:pos + k] = part["id"]
                phones[pos:pos + k] = part["phone_number"]
                sessions[pos:pos + k] = part["session_id"]
                # an object array of per-row arrays; np.stack takes a sequence of arrays (the list holds refs only)
                np.stack(list(part["embedding"]), out=vectors[pos:pos + k])
                pos += k
    if pos != n:
        raise AnalyticsError(f"message_embeddings changed while loading ({pos} rows read, {n} expected)")
    return _Matrix(stamp, ids, phones, sessions, vectors)


def matrix(conn: duckdb.DuckDBPyConnection) -> _Matrix:
    """The connection's cached matrix, reloaded if the table changed since it was read."""
    cached = _CACHE.get(conn)
    if cached is not None and cached.stamp == _stamp(conn):
        return cached
    _CACHE.pop(conn, None)  # free the old matrix before building the new one
    fresh = _CACHE[conn] = _load(conn)
    return fresh


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
    m = matrix(conn)
    dim = m.vectors.shape[1]
    q = wide.astype(np.float32)
    if q.shape[0] != dim:
        raise AnalyticsError(f"query vector has {q.shape[0]} dimensions, message_embeddings has {dim}")
    q = normalise(q)
    if phone_number is None:
        rows, scores = top_k(m.vectors, m.ids, q, k)
    else:
        subset = m.rows_of(phone_number)
        local, scores = top_k(m.vectors[subset], m.ids[subset], q, k)
        rows = subset[local]
    hits = [SearchHit(int(i), float(sc), str(sid), str(ph))
            for i, sc, sid, ph in zip(m.ids[rows], scores, m.sessions[rows], m.phones[rows])]
    if with_content and hits:
        details = {r[0]: r[1:] for r in conn.execute(
            "SELECT id, message_id, content, model_name FROM message_embeddings WHERE id = ANY(?)",
            [[h.id for h in hits]]).fetchall()}
        hits = [replace(h, message_id=d[0], content=d[1], model_name=d[2])
                for h in hits if (d := details.get(h.id)) is not None]
    return hits
