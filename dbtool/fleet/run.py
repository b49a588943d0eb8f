"""The rollout: targets acted on by a bounded pool of worker threads in this process, one report at the end.

- At most `parallel` targets at once, started in the order they are named. Each worker runs one target's job
  (jobs.py) over the single-database library: its own connections, its own advisory lock (advisory locks are
  per database), its own timeouts. Nothing a worker does is printed by it: its `say` lines are collected per
  target (passwords masked) and the main thread reports them, so output never interleaves.
- `canary`: the first N targets run first; if any of them fails, no other target starts.
- A failure (a target that could not do its job: failed, unreachable, refused) stops the starting of new
  targets; the running ones finish, the rest are reported as "not started". `continue_on_error` lets the rest
  go on (not after a failed canary). Findings (validate's drift, status's pending) are results, not failures.
- Ctrl-C (SIGINT): no new target starts; the running ones finish their current migration and stop before the
  next (lock.check_stop) and the report is printed; exit 130. A second Ctrl-C stops at once: the report says which
  targets were still running, and the process exits, closing their connections: the server rolls back each
  one's current migration (as after kill -9, which a transactional migration survives whole or not at all).
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import lock, progress
from ..errors import EXIT_CONNECT, EXIT_FINDINGS, ConnectError, DbtoolError, RefusedError, first_line
from .targets import FleetTarget

OK, DRIFT, PENDING = "ok", "drift", "pending"
FAILED, UNREACHABLE, REFUSED = "failed", "unreachable", "refused"
INTERRUPTED, NOT_STARTED = "interrupted", "not started"
STATES = (OK, DRIFT, PENDING, FAILED, UNREACHABLE, REFUSED, INTERRUPTED, NOT_STARTED)  # the report's order
FAILURES = (FAILED, UNREACHABLE, REFUSED, INTERRUPTED)  # what stops the rollout
EXIT_INTERRUPTED = 130

Say = Callable[[str], None]


@dataclass
class Done:
    """What one target's job found: its state, exit code and one-line summary, and what the report shows of it."""

    state: str
    exit_code: int
    summary: str
    result: dict[str, Any] | None = None  # the command's own JSON (dbtool.validate/1, dbtool.status/1, ...)
    details: list[str] = field(default_factory=list)  # text lines under the target (validate's findings)
    cases: list[Any] = field(default_factory=list)  # JUnit <testcase> elements


Job = Callable[[FleetTarget, Say], Done]


@dataclass
class Result:
    target: FleetTarget
    state: str = NOT_STARTED
    exit_code: int | None = None  # None: not started
    summary: str = ""
    seconds: float | None = None
    log: list[str] = field(default_factory=list)  # what the library said while acting on it (masked)
    done: Done | None = None


@dataclass
class Fleet:
    """A whole run: every target's result, in the order they were named."""

    command: str
    origin: str
    results: list[Result]
    parallel: int
    canary: int
    continue_on_error: bool
    seconds: float = 0.0
    stopped: str | None = None  # why targets were left unstarted
    interrupted: bool = False  # Ctrl-C
    abandoned: bool = False  # a second Ctrl-C: running targets were left as they were

    @property
    def counts(self) -> dict[str, int]:
        found = {s: sum(1 for r in self.results if r.state == s) for s in STATES}
        return {s: n for s, n in found.items() if n}

    @property
    def exit_code(self) -> int:
        """The worst across targets (3 > 2 > 1 > 0); 130 after Ctrl-C."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        return max((r.exit_code for r in self.results if r.exit_code is not None), default=0)


class Watcher(Protocol):
    """Who shows the run while it goes (report.Live): called from the main thread only."""

    def started(self, result: Result, running: list[Result]) -> None: ...
    def finished(self, result: Result, running: list[Result]) -> None: ...
    def tick(self, running: list[Result]) -> None: ...
    def note(self, message: str) -> None: ...


def failure(exc: BaseException, target: FleetTarget) -> Done:
    """One masked line and a state for whatever stopped a target's job."""
    done = _failure(exc, target)
    shown = target.target.display()
    if shown != target.where:  # a service: the library names it by a URL libpq's service file would override
        done.summary = done.summary.replace(shown, target.where)
    return done


def _failure(exc: BaseException, target: FleetTarget) -> Done:
    import psycopg

    if isinstance(exc, lock.Interrupted):
        return Done(INTERRUPTED, EXIT_INTERRUPTED, target.mask(str(exc)))
    if isinstance(exc, DbtoolError):
        line = target.mask(first_line(exc) if str(exc).strip() else type(exc).__name__)
        if isinstance(exc, RefusedError) or exc.exit_code == EXIT_CONNECT and not isinstance(exc, ConnectError):
            return Done(REFUSED, EXIT_CONNECT, line)
        if isinstance(exc, ConnectError):
            return Done(REFUSED if "the server refused" in line else UNREACHABLE, EXIT_CONNECT, line)
        return Done(FAILED, exc.exit_code or EXIT_FINDINGS, line)
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return Done(REFUSED, EXIT_CONNECT, target.mask(f"the server refused this role: {first_line(exc)}"))
    if isinstance(exc, psycopg.OperationalError):
        return Done(UNREACHABLE, EXIT_CONNECT, target.mask(f"lost the database: {first_line(exc)}"))
    if isinstance(exc, psycopg.Error):
        return Done(FAILED, EXIT_FINDINGS, target.mask(f"database error: {first_line(exc)}"))
    return Done(FAILED, EXIT_FINDINGS, target.mask(f"unexpected error: {type(exc).__name__}: {first_line(exc)}"))


class Rollout:
    def __init__(self, command: str, origin: str, targets: list[FleetTarget], job: Job, *, parallel: int,
                 canary: int = 0, continue_on_error: bool = False, watcher: Watcher | None = None):
        self.job, self.watcher = job, watcher
        self.fleet = Fleet(command, origin, [Result(t) for t in targets], parallel, min(canary, len(targets)),
                           continue_on_error)
        self.stop = threading.Event()  # Ctrl-C: running targets stop before their next migration
        self._done: queue.Queue[tuple[int, Done, list[str], float]] = queue.Queue()
        self._sigints = 0

    # -- worker threads -------------------------------------------------------------------------------
    def _work(self, index: int) -> None:
        result = self.fleet.results[index]
        lines: list[str] = []

        def say(message: str) -> None:
            lines.append(result.target.mask(" ".join(message.split())))

        started = time.monotonic()
        try:
            with progress.silenced(), lock.stop_when(self.stop):
                done = self.job(result.target, say)
        except BaseException as exc:  # one target's trouble is reported, never lost
            done = failure(exc, result.target)
        self._done.put((index, done, lines, time.monotonic() - started))

    def _start(self, index: int, running: dict[int, Result]) -> None:
        result = running[index] = self.fleet.results[index]
        result.state, result.summary = "running", ""
        threading.Thread(target=self._work, args=(index,), name=f"dbtool-fleet-{index}", daemon=True).start()
        if self.watcher:
            self.watcher.started(result, list(running.values()))

    # -- the main thread ----------------------------------------------------------------------------------
    def run(self) -> Fleet:
        fleet, started = self.fleet, time.monotonic()
        running: dict[int, Result] = {}
        upcoming = 0
        try:
            with self._sigint():
                while True:
                    upcoming = self._start_more(upcoming, running)
                    if not running:
                        break
                    try:
                        index, done, lines, seconds = self._done.get(timeout=0.25)
                    except queue.Empty:
                        if self.watcher:
                            self.watcher.tick(list(running.values()))
                        continue
                    self._finish(running.pop(index), done, lines, seconds, running)
        except KeyboardInterrupt:  # the second Ctrl-C
            fleet.interrupted = fleet.abandoned = True
            fleet.stopped = fleet.stopped or "interrupted (Ctrl-C)"
            for result in running.values():
                result.state, result.exit_code = INTERRUPTED, EXIT_INTERRUPTED
                result.summary = ("stopped by a second Ctrl-C while running: the server rolls back its current "
                                  "migration as the connection closes; what was applied before stays applied")
        for result in fleet.results[upcoming:]:
            result.state, result.summary = NOT_STARTED, f"not started: {fleet.stopped or 'stopped'}"
        if upcoming == len(fleet.results):
            fleet.stopped = None  # every target started: nothing was held back
        fleet.seconds = time.monotonic() - started
        return fleet

    def _start_more(self, upcoming: int, running: dict[int, Result]) -> int:
        fleet = self.fleet
        if self._sigints and not fleet.interrupted:
            fleet.interrupted, fleet.stopped = True, "interrupted (Ctrl-C)"
            if self.watcher:
                self.watcher.note(f"interrupted: no new target starts; {len(running)} running finish their current "
                                  "migration, then stop (Ctrl-C again stops them now)")
        while fleet.stopped is None and upcoming < len(fleet.results) and len(running) < fleet.parallel:
            if upcoming >= fleet.canary and any(i < fleet.canary for i in running):
                break  # the canary wave finishes first
            if upcoming == fleet.canary > 0 and self.watcher:
                self.watcher.note(f"canary: the first {fleet.canary} passed; starting the other "
                                  f"{len(fleet.results) - upcoming}")
            self._start(upcoming, running)
            upcoming += 1
        return upcoming

    def _finish(self, result: Result, done: Done, lines: list[str], seconds: float,
                running: dict[int, Result]) -> None:
        fleet = self.fleet
        result.done, result.log, result.seconds = done, lines, seconds
        result.state, result.exit_code, result.summary = done.state, done.exit_code, done.summary
        if done.state in FAILURES and fleet.stopped is None:
            index = fleet.results.index(result)
            if index < fleet.canary:
                fleet.stopped = f"canary target {result.target.label} {done.state} (--canary {fleet.canary})"
            elif not fleet.continue_on_error:
                fleet.stopped = f"{result.target.label} {done.state} (--continue-on-error goes on after a failure)"
            if fleet.stopped and self.watcher:
                left = sum(1 for r in fleet.results if r.state == NOT_STARTED)
                if left:
                    self.watcher.note(f"{result.target.label} {done.state}: no new target starts ({left} left); "
                                      f"{len(running)} running finish")
        if self.watcher:
            self.watcher.finished(result, list(running.values()))

    @contextmanager
    def _sigint(self) -> Iterator[None]:
        """First Ctrl-C: stop starting targets, running ones stop before their next migration. Second: at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            self._sigints += 1
            self.stop.set()
            if self._sigints > 1:
                raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
