"""The search sidecar: the normalised embedding matrix of a DuckDB file, kept next to it for numpy to map.

`<file>.embeddings` beside `<file>` (e.g. var/analytics.duckdb.embeddings). A new process's first search maps
it (mmap) and scans it once at memory speed, instead of converting every FLOAT[384] row DuckDB holds into
numpy (about 11 s per 1,000,000 rows). Resident memory is then the file's pages in the page cache, shared by
every process searching the same file, rather than an anonymous copy in each.

Layout (little-endian): HEADER_BYTES of header, the rows, then the string tables.
- header: MAGIC, u32 length of the JSON that follows, u32 CRC-32 of that JSON, the JSON, zeros up to 4096.
  The JSON names the analytics state the rows belong to: {"format", "version", "rows", "dim", "record",
  "strings_bytes", "strings_crc"}, version being DuckDB's analytics_embeddings_version.version (a random
  63-bit number that every write to message_embeddings draws anew, embeddings.py) and rows its row count.
- rows: `rows` records of (id int64, session code int32, phone code int32, vector float32[dim])
  (record_dtype), in no particular order. numpy maps them as one structured array; the vectors are a
  strided (rows, dim) view that BLAS multiplies as it is.
- string tables: JSON {"sessions": [...], "phones": [...]}, code i being the i-th string; read into memory
  when the sidecar is opened (CRC-checked), so a hit's session and phone number need no query.

Used only when its header's version, row count and dimension are what DuckDB holds now, and it is a regular
file of ours, private, and as long as its header says. Anything else is stale (another version, a torn or
foreign header, a truncated file, another dimension, wider modes, a symbolic link), never used: the next
search rebuilds it. The version is random rather than a counter, so a write that was rolled back, or a copy
of the DuckDB file that went its own way, never meets a sidecar made for other rows under the same number.
Nothing checks the vectors' bytes themselves (a checksum would cost a read of the whole file per start).

Written whole to an unnamed file in the same folder (O_TMPFILE: a killed writer leaves nothing behind),
fsync'd, then linked and renamed over the old one: a reader maps the old file or the new one, never half of
one, and a mapped file stays whole after it is replaced. Appends (add_embeddings of new ids) write the new
records over the old string tables (readers hold those in memory and map only the rows before them), the
new tables after them, fsync, then rewrite the header, under an exclusive flock (readers take a shared one
while they read header and tables); a crash in between leaves the old header, whose tables' CRC no longer
matches: a stale sidecar, not a wrong one.
The file holds personal data (vectors made from message texts, message ids, session keys, phone numbers):
0600 whatever the umask. Every write that removes rows (erasure, purge, a message deleted or changed in
PostgreSQL) rewrites the sidecar without them, and without the strings only they used, or removes it, before
its DuckDB transaction commits (embeddings.bump_version); a search in the same process meanwhile builds from
the rows still committed but does not write them back (may_publish).
Deleted data stays in the file system's free blocks until overwritten, as DuckDB's own deleted rows do.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import mmap
import os
import secrets
import stat
import struct
import threading
import traceback
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"\x93DBTOOL-EMBEDDINGS\n"
FORMAT = 2
HEADER_BYTES = 4096
SUFFIX = ".embeddings"
_PREFIX = struct.Struct("<II")  # JSON length, CRC-32
COPY_ROWS = 65_536  # rows copied at a time when a rewrite keeps the rows of an older sidecar


def record_dtype(dim: int) -> np.dtype:
    """One row: the message id, its session's and phone number's codes (in the string tables), the vector."""
    return np.dtype([("id", "<i8"), ("session", "<i4"), ("phone", "<i4"), ("vec", "<f4", (dim,))])


def path_for(database: Path) -> Path:
    return database.with_name(database.name + SUFFIX)


@dataclass(frozen=True)
class Header:
    version: int
    rows: int
    dim: int
    strings_bytes: int = 0  # the string tables' JSON, right after the rows
    strings_crc: int = 0

    @property
    def state(self) -> tuple[int, int, int]:
        """The analytics state the rows belong to: what DuckDB must hold for the sidecar to be used."""
        return self.version, self.rows, self.dim

    @property
    def strings_at(self) -> int:
        return HEADER_BYTES + self.rows * record_dtype(self.dim).itemsize


class Strings:
    """A string table (session keys, or phone numbers): code <-> string, growing as rows come."""

    def __init__(self, values: list[str] | None = None):
        self.values: list[str] = list(values or [])
        self._codes = {v: i for i, v in enumerate(self.values)}

    def codes(self, strings) -> np.ndarray:
        out = np.empty(len(strings), dtype=np.int32)
        for i, value in enumerate(strings):
            code = self._codes.get(value)
            if code is None:
                code = self._codes[value] = len(self.values)
                self.values.append(value)
            out[i] = code
        return out


@dataclass
class Rows:
    """Rows for a sidecar, with their strings (not yet coded)."""
    ids: np.ndarray       # int64
    vectors: np.ndarray   # float32 (n, dim), rows of norm 1
    sessions: list[str]
    phones: list[str]

    def records(self, dim: int, sessions: Strings, phones: Strings) -> np.ndarray:
        out = np.empty(len(self.ids), dtype=record_dtype(dim))
        out["id"], out["vec"] = self.ids, self.vectors
        out["session"], out["phone"] = sessions.codes(self.sessions), phones.codes(self.phones)
        return out


@dataclass
class Content:
    """A sidecar as read: its header, its rows (mapped read-only) and its string tables (in memory)."""
    header: Header
    records: np.ndarray
    sessions: list[str]
    phones: list[str]


def _encode(header: Header) -> bytes:
    text = json.dumps({"format": FORMAT, "version": header.version, "rows": header.rows, "dim": header.dim,
                       "record": f"id <i8, session <i4, phone <i4, vec <f4[{header.dim}]",
                       "strings_bytes": header.strings_bytes, "strings_crc": header.strings_crc},
                      sort_keys=True).encode()
    out = MAGIC + _PREFIX.pack(len(text), zlib.crc32(text)) + text
    return out + bytes(HEADER_BYTES - len(out))


def _decode(raw: bytes) -> Header | None:
    """The header, or None for anything that is not a whole, intact header of this format."""
    if len(raw) < HEADER_BYTES or not raw.startswith(MAGIC):
        return None
    size, crc = _PREFIX.unpack_from(raw, len(MAGIC))
    start = len(MAGIC) + _PREFIX.size
    text = raw[start:start + size]
    if start + size > HEADER_BYTES or zlib.crc32(text) != crc:
        return None  # torn (a write in progress, a crash) or not ours
    try:
        meta = json.loads(text)
        header = Header(int(meta["version"]), int(meta["rows"]), int(meta["dim"]), int(meta["strings_bytes"]),
                        int(meta["strings_crc"]))
    except (ValueError, KeyError, TypeError):
        return None
    if meta.get("format") != FORMAT or header.rows < 0 or header.dim <= 0 or header.strings_bytes <= 0:
        return None
    return header


def _strings_json(sessions: Strings, phones: Strings) -> bytes:
    return json.dumps({"sessions": sessions.values, "phones": phones.values}, ensure_ascii=False).encode()


def _read_strings(fd: int, header: Header) -> tuple[list[str], list[str]] | None:
    raw = os.pread(fd, header.strings_bytes, header.strings_at)
    if len(raw) != header.strings_bytes or zlib.crc32(raw) != header.strings_crc:
        return None  # truncated, or overwritten by an append that did not finish
    try:
        tables = json.loads(raw)
        sessions, phones = tables["sessions"], tables["phones"]
    except (ValueError, KeyError, TypeError):
        return None
    if not (isinstance(sessions, list) and isinstance(phones, list)
            and all(isinstance(v, str) for v in sessions) and all(isinstance(v, str) for v in phones)):
        return None
    return sessions, phones


def _trusted(fd: int) -> os.stat_result | None:
    """fstat of fd when it is a regular file of ours, private (0600 or narrower), else None: a sidecar that
    others may read or write is stale, and the next search replaces it with a private one."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return None
    return st


def _open(path: Path, flags: int) -> int | None:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symbolic link: never followed, never used
            return None
        raise


def read_header(path: Path) -> Header | None:
    fd = _open(path, os.O_RDONLY)
    if fd is None:
        return None
    try:
        return _decode(os.pread(fd, HEADER_BYTES, 0)) if _trusted(fd) else None
    finally:
        os.close(fd)


def load(path: Path, state: tuple[int, int, int] | None = None) -> Content | None:
    """The sidecar, its rows memory-mapped read-only, when it is whole and (given `state`) of exactly that
    state (version, rows, dimensions); else None: stale."""
    fd = _open(path, os.O_RDONLY)
    if fd is None:
        return None
    try:
        st = _trusted(fd)
        if st is None:
            return None
        fcntl.flock(fd, fcntl.LOCK_SH)  # no append is halfway
        header = _decode(os.pread(fd, HEADER_BYTES, 0))
        if header is None or (state is not None and header.state != state):
            return None
        if st.st_size < header.strings_at + header.strings_bytes:
            return None  # truncated
        tables = _read_strings(fd, header)
        if tables is None:
            return None
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)  # fault it in at once, not page by page
        mapped = mmap.mmap(fd, header.strings_at, flags=flags, prot=mmap.PROT_READ)
    finally:
        os.close(fd)  # the mapping keeps the file (even once it is replaced or removed)
    records = np.frombuffer(mapped, dtype=record_dtype(header.dim), count=header.rows, offset=HEADER_BYTES)
    return Content(header, records, *tables)


def _temp_name() -> str:
    return f".{SUFFIX.strip('.')}-{secrets.token_hex(8)}.tmp"


@contextlib.contextmanager
def _new_file(folder: Path) -> Iterator[tuple[int, Callable[[Path], None]]]:
    """A new file in `folder`, mode 0600, with no name until publish(path) renames it over `path`.

    O_TMPFILE: until it is linked the file has no name, so a killed process leaves nothing behind. Where the
    file system lacks O_TMPFILE, a named `.embeddings-<random>.tmp` file, removed on any failure (and by
    sweep() after a kill)."""
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    named: str | None = None
    fd = -1
    try:
        try:
            fd = os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        except (OSError, AttributeError):
            named = _temp_name()
            fd = os.open(named, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dir_fd)
        os.fchmod(fd, 0o600)  # whatever the umask

        def publish(path: Path) -> None:
            nonlocal named
            os.fsync(fd)
            if named is None:
                named = _temp_name()
                # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N: os.link uses linkat when given a dir_fd
                os.link(f"/proc/self/fd/{fd}", named, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=True)
            os.replace(named, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            named = None
            os.fsync(dir_fd)

        yield fd, publish
    finally:
        if fd >= 0:
            os.close(fd)
        if named is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(named, dir_fd=dir_fd)
        os.close(dir_fd)


def sweep(folder: Path) -> None:
    """Remove temporary sidecar files a killed writer left (only where O_TMPFILE is missing)."""
    with contextlib.suppress(OSError):
        for p in folder.glob(f".{SUFFIX.strip('.')}-*.tmp"):  # what _temp_name() makes
            with contextlib.suppress(OSError):
                if p.lstat().st_uid == os.geteuid():
                    p.unlink()


def write(path: Path, state: tuple[int, int, int], fill: Callable[[np.ndarray, Strings, Strings], None]) -> None:
    """A new sidecar at path of `state` (version, rows, dimensions): fill(records, sessions, phones) writes the
    rows into a writable map of the file, coding their strings into the two tables."""
    version, rows, dim = state
    dtype = record_dtype(dim)
    end = HEADER_BYTES + rows * dtype.itemsize
    sessions, phones = Strings(), Strings()
    with _new_file(path.parent) as (fd, publish):
        os.ftruncate(fd, end)
        if rows:
            with mmap.mmap(fd, end, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE) as mapped:
                records = np.frombuffer(mapped, dtype=dtype, count=rows, offset=HEADER_BYTES)
                try:
                    fill(records, sessions, phones)
                except BaseException as exc:  # its frames' arrays point into the map, which must close
                    traceback.clear_frames(exc.__traceback__)
                    raise
                finally:
                    del records  # the map cannot close while an array still points into it
                mapped.flush()
        tables = _strings_json(sessions, phones)
        _write_all(fd, tables, end)
        os.pwrite(fd, _encode(Header(version, rows, dim, len(tables), zlib.crc32(tables))), 0)
        publish(path)


def _write_all(fd: int, data: bytes, at: int) -> None:
    view = memoryview(data)
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], at + done)


def rewrite(path: Path, expect: tuple[int, int, int], state: tuple[int, int, int], *,
            keep: Callable[[np.ndarray], np.ndarray], added: Rows | None = None) -> bool:
    """A new sidecar of `state` made of the rows of the one at path that keep(ids) marks, then `added`; its
    string tables hold only the strings those rows use (an erased phone number leaves with its rows). False,
    writing nothing, when the sidecar at path is not of state `expect`."""
    old = load(path, expect)
    if old is None:
        return False
    mask = keep(old.records["id"])
    if int(mask.sum()) + (0 if added is None else len(added.ids)) != state[1]:
        return False

    def fill(records: np.ndarray, sessions: Strings, phones: Strings) -> None:
        # the old codes of the strings still used -> their codes in the new tables
        remap_s = np.full(len(old.sessions) + 1, -1, dtype=np.int32)
        remap_p = np.full(len(old.phones) + 1, -1, dtype=np.int32)
        pos = 0
        for lo in range(0, len(old.records), COPY_ROWS):
            part = old.records[lo:lo + COPY_ROWS][mask[lo:lo + COPY_ROWS]]
            for column, remap, table, values in (("session", remap_s, sessions, old.sessions),
                                                 ("phone", remap_p, phones, old.phones)):
                codes = part[column]
                if len(codes) and (codes.min() < 0 or codes.max() >= len(values)):
                    raise _Corrupt
                new = np.unique(codes[remap[codes] < 0])
                remap[new] = table.codes([values[c] for c in new])
                part[column] = remap[codes]
            records[pos:pos + len(part)] = part
            pos += len(part)
        if added is not None:
            records[pos:] = added.records(state[2], sessions, phones)

    try:
        write(path, state, fill)
    except _Corrupt:
        return False
    return True


class _Corrupt(Exception):
    """A row's code outside its string table: the sidecar is not what its header says."""


def append(path: Path, expect: tuple[int, int, int], state: tuple[int, int, int], added: Rows) -> bool:
    """Write the `added` rows after the rows of the sidecar at path (in place), their new strings into its
    tables, and give it `state`; False, changing nothing, when that sidecar is not of state `expect`."""
    fd = _open(path, os.O_RDWR)
    if fd is None:
        return False
    try:
        if _trusted(fd) is None:
            return False
        fcntl.flock(fd, fcntl.LOCK_EX)
        header = _decode(os.pread(fd, HEADER_BYTES, 0))
        if header is None or header.state != expect or state[1] != expect[1] + len(added.ids):
            return False
        if os.fstat(fd).st_size < header.strings_at + header.strings_bytes:
            return False
        tables = _read_strings(fd, header)
        if tables is None:
            return False
        sessions, phones = Strings(tables[0]), Strings(tables[1])
        records = added.records(header.dim, sessions, phones)
        # Over the old string tables: a reader holds them in memory, and maps only the rows before them.
        _write_all(fd, records.tobytes(), header.strings_at)
        new = Header(state[0], state[1], header.dim)
        tables_json = _strings_json(sessions, phones)
        _write_all(fd, tables_json, new.strings_at)
        os.fsync(fd)  # the rows and tables are on disk before a header says they are there
        os.pwrite(fd, _encode(Header(state[0], state[1], header.dim, len(tables_json), zlib.crc32(tables_json))), 0)
        os.fsync(fd)
        return True
    finally:
        os.close(fd)


def remove(path: Path) -> None:
    """Remove the sidecar (a symbolic link in its place is removed, never followed)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# -- writers in flight ------------------------------------------------------------------------------------
# A write transaction that removes rows rewrites (or removes) the sidecar before it commits. Until it ends, a
# search in this process (another connection to the same file) must not publish a sidecar built from the
# rows still committed: it would bring back the rows just removed. (Other processes cannot open the file
# while one writes it: DuckDB locks it.) So: one lock per sidecar path for every publication, and the
# versions written by transactions not known to have ended.

_guard = threading.Lock()
_locks: dict[Path, threading.Lock] = {}
_in_flight: dict[Path, set[int]] = {}


def lock(path: Path) -> threading.Lock:
    with _guard:
        return _locks.setdefault(path, threading.Lock())


def begin_write(path: Path, version: int) -> None:
    with _guard:
        _in_flight.setdefault(path, set()).add(version)


def end_write(path: Path, version: int) -> None:
    with _guard:
        versions = _in_flight.get(path)
        if versions is not None:
            versions.discard(version)
            if not versions:
                del _in_flight[path]


def may_publish(path: Path, committed: int) -> bool:
    """Whether a sidecar built from committed version `committed` may be published now: no writer of this
    process is in flight, except the one that wrote `committed` (it has committed, then)."""
    with _guard:
        versions = _in_flight.get(path)
        if versions:
            versions.discard(committed)
            if not versions:
                del _in_flight[path]
        return not _in_flight.get(path)
