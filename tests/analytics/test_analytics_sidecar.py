"""The search sidecar (`<file>.embeddings`): a new process maps it instead of rebuilding the matrix from DuckDB;
it follows every write (appended in place, rewritten without what is gone); a stale one is never used; it is
private, and an erased user's vectors do not outlive the erasure (issue 15, cold search)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from analytics_helpers import add_messages, add_session, add_user
from dbtool.analytics import db, embeddings, sidecar
from dbtool.analytics.embeddings import add_embeddings, normalise, search_similar, sidecar_path
from dbtool.analytics.erase import erase_phone
from dbtool.analytics.sync import sync
from helpers import run_dbtool

DIM = 384
PHONES = ["+5511900000001", "+5511900000002", "+5511900000003"]


def rows_for(vectors: np.ndarray, first_id: int = 1) -> list[dict]:
    return [{"id": first_id + i, "session_id": f"s{(first_id + i) % 7}", "phone_number": PHONES[(first_id + i) % 3],
             "content": f"message {first_id + i}", "embedding": v, "model_name": "test-384"}
            for i, v in enumerate(vectors)]


def brute_force(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    m = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = m @ (query / np.linalg.norm(query))
    return ids[np.lexsort((ids, -scores))[:k]].tolist()


class Builds:
    """Counts how often the matrix is built from DuckDB's rows (embeddings._fill reads message_embeddings)."""

    def __init__(self, monkeypatch):
        self.calls = 0
        real = embeddings._fill

        def counted(conn, *args):
            self.calls += 1
            return real(conn, *args)

        monkeypatch.setattr(embeddings, "_fill", counted)


@pytest.fixture
def builds(monkeypatch) -> Builds:
    return Builds(monkeypatch)


@pytest.fixture
def store(tmp_path):
    """A DuckDB file with 2,000 embeddings (added in two calls: the sidecar written, then appended to)."""
    path = tmp_path / "a.duckdb"
    duck = db.connect(path)
    db.apply_schema(duck)
    rng = np.random.default_rng(15)
    vectors = rng.standard_normal((2000, DIM)).astype(np.float32)
    add_embeddings(duck, rows_for(vectors[:1500]))
    add_embeddings(duck, rows_for(vectors[1500:], first_id=1501))
    yield duck, path, vectors, rng
    duck.close()


def fresh(path: Path, **kw) -> duckdb.DuckDBPyConnection:
    """Another connection: nothing cached, as in a new process."""
    return duckdb.connect(str(path), **kw)


def test_a_new_connection_maps_the_sidecar_and_reads_no_vector_from_duckdb(store, builds):
    duck, path, vectors, rng = store
    side = sidecar_path(duck)
    assert side == path.with_name("a.duckdb.embeddings") and side.is_file()
    duck.close()
    with fresh(path, read_only=True) as other:
        for _ in range(3):
            q = rng.standard_normal(DIM).astype(np.float32)
            assert [h.id for h in search_similar(other, q, k=10)] == brute_force(vectors, np.arange(1, 2001), q, 10)
    assert builds.calls == 0


def test_a_new_process_maps_the_sidecar(store):
    """The same in a real new process (what `dbtool analytics search` is): it builds nothing."""
    duck, path, vectors, rng = store
    duck.close()
    q = rng.standard_normal(DIM).astype(np.float32)
    code = ("import json, sys, duckdb, numpy as np\n"
            "from dbtool.analytics.embeddings import STATS, search_similar\n"
            "args = json.loads(sys.stdin.read())\n"
            "conn = duckdb.connect(args['path'], read_only=True)\n"
            "hits = search_similar(conn, np.array(args['q'], dtype=np.float32), k=5, with_content=False)\n"
            "print(json.dumps({'ids': [h.id for h in hits], 'stats': STATS}))\n")
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps({"path": str(path), "q": q.tolist()}),
                          capture_output=True, text=True, check=True)
    out = json.loads(done.stdout)
    assert out["ids"] == brute_force(vectors, np.arange(1, 2001), q, 5)
    assert (out["stats"]["built"], out["stats"]["mapped"]) == (0, 1)


def test_add_embeddings_appends_in_place_and_a_replacement_rewrites(store, builds):
    duck, path, vectors, rng = store
    side = sidecar_path(duck)
    inode, before = side.stat().st_ino, side.stat().st_size
    itemsize = sidecar.record_dtype(DIM).itemsize
    new = rng.standard_normal((10, DIM)).astype(np.float32)
    add_embeddings(duck, rows_for(new, first_id=5001))
    assert side.stat().st_ino == inode and side.stat().st_size == before + 10 * itemsize  # appended in place
    header = sidecar.read_header(side)
    assert header is not None and header.rows == 2010
    everything = np.concatenate([vectors, new])
    ids = np.concatenate([np.arange(1, 2001), np.arange(5001, 5011)])
    with fresh(path) as other:
        assert [h.id for h in search_similar(other, new[3], k=3)] == brute_force(everything, ids, new[3], 3)
    old = normalise(vectors[41]).tobytes()
    assert old in side.read_bytes()
    add_embeddings(duck, rows_for(-vectors[41:42], first_id=42))  # id 42 replaced: its old vector must go
    assert side.stat().st_ino != inode and old not in side.read_bytes()
    everything[41] = -vectors[41]
    with fresh(path) as other:
        q = vectors[41]
        assert [h.id for h in search_similar(other, q, k=20)] == brute_force(everything, ids, q, 20)
    assert builds.calls == 0


def rewrite_header(side: Path, **changes) -> None:
    header = sidecar.read_header(side)
    assert header is not None
    fields = {"version": header.version, "rows": header.rows, "dim": header.dim,
              "strings_bytes": header.strings_bytes, "strings_crc": header.strings_crc, **changes}
    with open(side, "r+b") as f:
        f.write(sidecar._encode(sidecar.Header(**fields)))


def stale_by_version(side: Path, duck, rng) -> None:
    """The sidecar of an older state: the file as it was before one more add_embeddings."""
    old = side.read_bytes()
    add_embeddings(duck, rows_for(rng.standard_normal((1, DIM)).astype(np.float32) * 0 + 1, first_id=9001))
    side.write_bytes(old)


def truncate(side: Path, *_args) -> None:
    with open(side, "r+b") as f:
        f.truncate(side.stat().st_size - 100)


def flip_json_byte(side: Path, *_args) -> None:
    data = bytearray(side.read_bytes())
    at = data.index(b'"rows"')
    data[at + 1] ^= 0x20  # "rows" -> "Rows": the CRC no longer matches
    side.write_bytes(bytes(data))


def test_a_header_written_again_unchanged_is_still_used(store, builds):
    """The control of the tamperings below: their header rewrite alone makes nothing stale."""
    duck, path, vectors, _ = store
    rewrite_header(sidecar_path(duck))
    duck.close()
    with fresh(path) as other:
        assert search_similar(other, vectors[9], k=1)[0].id == 10
    assert builds.calls == 0


TAMPERINGS = {
    "an older version": stale_by_version,
    "another version number": lambda side, *_: rewrite_header(side, version=12345),
    "fewer rows than DuckDB": lambda side, *_: rewrite_header(side, rows=1999),
    "another dimension": lambda side, *_: rewrite_header(side, dim=383),
    "a truncated file": truncate,
    "a torn header": flip_json_byte,
    "not a sidecar": lambda side, *_: side.write_bytes(b"\x93NUMPY" + bytes(5000)),
    "writable by others": lambda side, *_: os.chmod(side, 0o622),
    "readable by others": lambda side, *_: os.chmod(side, 0o644),
}


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=list(TAMPERINGS))
def test_a_stale_sidecar_is_never_used_and_is_rebuilt(store, builds, tamper):
    duck, path, vectors, rng = store
    side = sidecar_path(duck)
    TAMPERINGS[tamper](side, duck, rng)
    expected = [r[0] for r in duck.execute("SELECT id FROM message_embeddings ORDER BY id").fetchall()]
    duck.close()
    with fresh(path) as other:
        stored = other.execute("SELECT id, embedding FROM message_embeddings ORDER BY id").fetchall()
        ids = np.array([r[0] for r in stored])
        matrix = np.array([r[1] for r in stored], dtype=np.float32)
        assert ids.tolist() == expected
        for _ in range(3):
            q = rng.standard_normal(DIM).astype(np.float32)
            assert [h.id for h in search_similar(other, q, k=25)] == brute_force(matrix, ids, q, 25)
        assert builds.calls == 1  # rebuilt once from DuckDB...
        header = sidecar.read_header(side)
        assert header is not None and header.rows == len(ids)  # ...into a new, current sidecar
        assert stat.S_IMODE(side.stat().st_mode) == 0o600
    with fresh(path) as again:
        search_similar(again, vectors[0])
    assert builds.calls == 1  # which the next one maps


def test_a_row_whose_codes_fit_no_string_table_is_caught_and_the_sidecar_rebuilt(store, builds):
    """Nothing checks every row's bytes when the sidecar is mapped (that would read it all); a hit whose
    session or phone code is outside its table shows the sidecar is not what its header says."""
    duck, path, vectors, _ = store
    side = sidecar_path(duck)
    itemsize = sidecar.record_dtype(DIM).itemsize
    with open(side, "r+b") as f:  # row 41 (id 42): its phone code
        f.seek(sidecar.HEADER_BYTES + 41 * itemsize + 12)
        f.write((10**6).to_bytes(4, "little"))
    duck.close()
    with fresh(path) as other:
        hits = search_similar(other, vectors[41], k=1)
        assert (hits[0].id, hits[0].phone_number) == (42, PHONES[0])
    assert builds.calls == 1


def test_a_symbolic_link_in_its_place_is_not_followed(store, builds, tmp_path):
    duck, path, vectors, _ = store
    side = sidecar_path(duck)
    elsewhere = tmp_path / "elsewhere"
    side.rename(elsewhere)
    side.symlink_to(elsewhere)
    duck.close()
    with fresh(path) as other:
        assert search_similar(other, vectors[5], k=1)[0].id == 6
    assert builds.calls == 1
    assert not side.is_symlink() and side.is_file()  # replaced by a sidecar of its own, the target untouched


def vector_bytes(vector: np.ndarray) -> bytes:
    """The bytes of a stored (normalised float32) vector, as the sidecar holds them."""
    return normalise(np.asarray(vector, dtype=np.float32)).tobytes()


def test_erasure_removes_the_users_vectors_from_the_sidecar(store, builds):
    duck, path, vectors, _ = store
    side = sidecar_path(duck)
    theirs = [vector_bytes(vectors[i - 1]) for i in (3, 6, 1500, 1998)]  # ids whose phone is PHONES[0]
    mine = vector_bytes(vectors[0])  # id 1: PHONES[1]
    assert all(v in side.read_bytes() for v in theirs)
    search_similar(duck, vectors[0])  # a matrix cached (mapped) in this process too
    assert erase_phone(duck, PHONES[0])["message_embeddings"] == 666
    data = side.read_bytes()
    assert not any(v in data for v in theirs) and mine in data
    assert sidecar.read_header(side).rows == 2000 - 666
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    hits = search_similar(duck, vectors[2], k=50)
    assert hits and PHONES[0] not in {h.phone_number for h in hits}
    assert builds.calls == 0  # rewritten from the old sidecar, not rebuilt from DuckDB


def test_a_purge_rewrites_the_sidecar_without_the_purged_sessions(store, builds):
    from dbtool.jobs import purge_duckdb

    duck, path, vectors, _ = store
    side = sidecar_path(duck)
    purged = [vector_bytes(vectors[i - 1]) for i in (7, 14, 1505)]  # ids in session s0
    kept = vector_bytes(vectors[0])  # id 1: session s1
    assert all(v in side.read_bytes() for v in purged)
    counts = purge_duckdb(duck, ["s0"])
    assert counts["duckdb.message_embeddings"] == sum(1 for i in range(1, 2001) if i % 7 == 0)
    data = side.read_bytes()
    assert not any(v in data for v in purged) and kept in data
    assert sidecar.read_header(side).rows == 2000 - counts["duckdb.message_embeddings"]
    hits = search_similar(duck, vectors[6], k=50)
    assert hits and "s0" not in {h.session_id for h in hits}
    assert builds.calls == 0  # rewritten from the old sidecar, not rebuilt from DuckDB


def test_an_erasure_in_flight_keeps_other_connections_from_publishing_the_old_rows(store):
    """While an erasure's transaction is open, another connection of the process that rebuilds the matrix (from
    the rows still committed) must not write them back into the sidecar."""
    duck, path, vectors, _ = store
    side = sidecar_path(duck)
    theirs = vector_bytes(vectors[2])  # id 3: PHONES[0]
    other = duck.cursor()  # another connection to the same database, in this process
    with db.transaction(duck):
        erase_phone_in = duck.execute("DELETE FROM message_embeddings WHERE phone_number = ?", [PHONES[0]])
        assert erase_phone_in.fetchall()[0][0] == 666
        embeddings.bump_version(duck, deleted_only=True)
        assert theirs not in side.read_bytes()
        hits = search_similar(other, vectors[2], k=1)  # the committed rows: id 3 is still there...
        assert hits[0].id == 3
        assert theirs not in side.read_bytes()  # ...but not written back to the sidecar
    assert theirs not in side.read_bytes() and sidecar.read_header(side).rows == 1334
    assert search_similar(other, vectors[2], k=1)[0].id != 3


def test_a_sync_that_drops_embeddings_rewrites_the_sidecar(postgresql, tmp_path, builds):
    pg = postgresql
    s = add_session(pg, add_user(pg, PHONES[0]), "s-sync")
    add_messages(pg, s, 5)
    pg.commit()
    duck = db.connect(tmp_path / "a.duckdb")
    db.apply_schema(duck)
    sync(pg, duck)
    rows = duck.execute("SELECT id, message_id, session_id, phone_number, content FROM message_history").fetchall()
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((len(rows), DIM)).astype(np.float32)
    add_embeddings(duck, [{"id": i, "message_id": mid, "session_id": sid, "phone_number": p, "content": c,
                           "embedding": v, "model_name": "m"} for (i, mid, sid, p, c), v in zip(rows, vectors)])
    side = sidecar_path(duck)
    gone, redacted = rows[0][0], rows[1][0]
    assert vector_bytes(vectors[0]) in side.read_bytes() and vector_bytes(vectors[1]) in side.read_bytes()
    pg.execute("DELETE FROM chatbot.messages WHERE id = %s", (gone,))
    pg.execute("UPDATE chatbot.messages SET content = '[redacted]' WHERE id = %s", (redacted,))
    pg.commit()
    out = sync(pg, duck)
    assert (out.removed, out.embeddings_dropped) == (2, 1)  # the message and its embedding; the redacted one's
    data = side.read_bytes()
    assert vector_bytes(vectors[0]) not in data and vector_bytes(vectors[1]) not in data
    assert vector_bytes(vectors[2]) in data and sidecar.read_header(side).rows == 3
    assert PHONES[0].encode() in data
    pg.execute("UPDATE chatbot.users SET phone_number = %s WHERE phone_number = %s", (PHONES[1], PHONES[0]))
    pg.commit()
    sync(pg, duck)  # the embeddings follow their messages to the new phone number, and so does the sidecar
    data = side.read_bytes()
    assert PHONES[0].encode() not in data and PHONES[1].encode() in data
    assert {h.phone_number for h in search_similar(duck, vectors[2], k=3)} == {PHONES[1]}
    assert builds.calls == 0
    duck.close()


def test_a_write_dbtool_cannot_describe_removes_the_sidecar(store, builds):
    """bump_version() with nothing said about the write (e.g. jobs purge, or SQL that bypasses dbtool)."""
    duck, path, vectors, _ = store
    side = sidecar_path(duck)
    duck.execute("UPDATE message_embeddings SET phone_number = '+5511900000009' WHERE id = 7")
    embeddings.bump_version(duck)
    assert not side.exists()
    hits = search_similar(duck, vectors[6], k=1)
    assert (hits[0].id, hits[0].phone_number) == (7, "+5511900000009") and builds.calls == 1 and side.is_file()


def test_the_sidecar_is_private_whatever_the_umask(tmp_path):
    before = os.umask(0o022)
    try:
        path = tmp_path / "plain.duckdb"
        with duckdb.connect(str(path)) as duck:  # not through db.connect: no umask 077 held
            db.apply_schema(duck)
            rng = np.random.default_rng(1)
            add_embeddings(duck, rows_for(rng.standard_normal((20, DIM)).astype(np.float32)))
            side = sidecar_path(duck)
            assert stat.S_IMODE(side.stat().st_mode) == 0o600
            add_embeddings(duck, rows_for(rng.standard_normal((5, DIM)).astype(np.float32), first_id=100))
            add_embeddings(duck, rows_for(rng.standard_normal((5, DIM)).astype(np.float32), first_id=100))
            assert stat.S_IMODE(side.stat().st_mode) == 0o600  # appended, then rewritten
            side.unlink()
            embeddings.forget(duck)
            search_similar(duck, np.ones(DIM))  # rebuilt by a search
            assert stat.S_IMODE(side.stat().st_mode) == 0o600
        assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.duckdb", "plain.duckdb.embeddings"]
    finally:
        os.umask(before)


def test_cli_search_writes_the_sidecar_once(tmp_path):
    path = tmp_path / "cli.duckdb"
    with db.connect(path) as duck:
        db.apply_schema(duck)
        add_embeddings(duck, rows_for(np.random.default_rng(2).standard_normal((50, DIM)).astype(np.float32)))
    side = path.with_name("cli.duckdb.embeddings")
    side.unlink()  # e.g. a file from before sidecars
    first = run_dbtool("analytics", "search", "--path", str(path), "--like", "7", "-k", "1", "--format", "json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)[0]["id"] == 7
    made = side.stat()
    assert stat.S_IMODE(made.st_mode) == 0o600
    again = run_dbtool("analytics", "search", "--path", str(path), "--like", "8", "-k", "1", "--format", "json")
    assert again.returncode == 0 and json.loads(again.stdout)[0]["id"] == 8
    assert (side.stat().st_ino, side.stat().st_mtime_ns) == (made.st_ino, made.st_mtime_ns)  # used, not rewritten


def test_an_in_memory_database_has_no_sidecar(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    duck = duckdb.connect(":memory:")
    db.apply_schema(duck)
    add_embeddings(duck, rows_for(np.ones((3, DIM), np.float32)))
    assert sidecar_path(duck) is None and search_similar(duck, np.ones(DIM), k=1)[0].id == 1
    assert list(tmp_path.iterdir()) == []
