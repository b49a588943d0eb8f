"""The application's write load for bench_online: writer threads, each with its own connection.

Every writer alternates an INSERT of a new row and an UPDATE of a random existing row, each its own
autocommit transaction, and records the start time and latency of every write. Writers run with no
statement_timeout and no lock_timeout: an application write that waits behind a DDL lock stalls
(and the stall is measured) instead of failing. A write that fails anyway is recorded with its
error, and the writer carries on (on a new connection if it lost its own).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from dbtool import config


@dataclass
class Stats:
    writes: int
    seconds: float
    p50: float  # seconds
    p99: float
    stall: float  # the longest single write
    failed: int
    errors: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.writes / self.seconds if self.seconds else 0.0


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


class Writer(threading.Thread):
    def __init__(self, target: config.Target, table: str, *, number: int, tag: str, max_id: int, parents: int,
                 pad: int, rate: float, stop: threading.Event):
        super().__init__(name=f"bench-online-writer-{number}", daemon=True)
        self.target, self.number, self.tag = target, number, tag
        self.max_id, self.parents, self.pad, self.stop = max_id, parents, pad, stop
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.samples: list[tuple[float, float]] = []  # (start, latency) per successful write
        self.failures: list[tuple[float, float, str]] = []  # (start, latency, error) per failed write
        self.insert = sql.SQL("INSERT INTO {} (parent_id, code, qty, note) VALUES (%s, %s, %s, %s)").format(
            sql.Identifier(table))
        self.update = sql.SQL("UPDATE {} SET qty = qty + 1, updated_at = now() WHERE id = %s").format(
            sql.Identifier(table))
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def connect(self) -> psycopg.Connection:
        conn = self.target.connect(autocommit=True, application_name="bench-online-writer")
        conn.execute("SET statement_timeout = 0")
        conn.execute("SET lock_timeout = 0")
        return conn

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            self.error = exc
            self.ready.set()

    def _run(self) -> None:
        rnd = random.Random(self.number)
        conn = self.connect()
        self.ready.set()
        note = "n" * self.pad
        i = 0
        due = time.perf_counter()
        try:
            while not self.stop.is_set():
                if i % 2 == 0:
                    stmt, params = self.insert, (rnd.randint(1, self.parents), f"{self.tag}w{self.number}n{i}",
                                                 rnd.randrange(100), note)
                else:
                    stmt, params = self.update, (rnd.randint(1, self.max_id),)
                i += 1
                t0 = time.perf_counter()
                try:
                    conn.execute(stmt, params, prepare=True)
                except psycopg.Error as exc:
                    self.failures.append((t0, time.perf_counter() - t0,
                                          f"{type(exc).__name__}: {' '.join(str(exc).split())}"))
                    if conn.closed or conn.broken:
                        conn = self.connect()
                else:
                    self.samples.append((t0, time.perf_counter() - t0))
                if self.interval:  # paced: the next write is due one interval later, no catching up
                    due = max(due + self.interval, time.perf_counter())
                    pause = due - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
        finally:
            conn.close()


class WriteLoad:
    """Start `writers` writer threads; measure(t0, t1) summarises the writes started in [t0, t1)."""

    def __init__(self, target: config.Target, table: str, *, writers: int, tag: str, max_id: int, parents: int,
                 pad: int, rate: float):
        self.stop = threading.Event()
        self.threads = [Writer(target, table, number=n, tag=tag, max_id=max_id, parents=parents, pad=pad,
                               rate=rate, stop=self.stop) for n in range(writers)]

    def __enter__(self) -> WriteLoad:
        for t in self.threads:
            t.start()
        for t in self.threads:
            t.ready.wait()
            if t.error:
                self.stop.set()
                raise t.error
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()
        errors = [t.error for t in self.threads if t.error]
        if errors and exc[0] is None:
            raise errors[0]

    def measure(self, t0: float, t1: float) -> Stats:
        """Writes started in [t0, t1): rate, latencies, longest stall (a failed write's wait counts too);
        failed writes are counted over the whole run, warm-up included."""
        lat = sorted(d for t in self.threads for s, d in t.samples if t0 <= s < t1)
        failures = [f for t in self.threads for f in t.failures]
        stall = max([lat[-1] if lat else 0.0] + [d for s, d, _ in failures if t0 <= s < t1])
        return Stats(writes=len(lat), seconds=t1 - t0, p50=percentile(lat, 0.50), p99=percentile(lat, 0.99),
                     stall=stall, failed=len(failures), errors=[e for _, _, e in failures[:5]])
