"""Progress on a terminal, silence everywhere else.

Long operations (migrating many files, bulk loads, benchmarks) report one line per
step with the elapsed time. Nothing is printed when stderr is not a terminal (CI logs,
pipes, `2>file`) or when the caller disables it (e.g. under `--format json`), so
scripted output never carries progress noise. Colour only on a terminal, never under
NO_COLOR (https://no-color.org) or TERM=dumb.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from . import settings

_DIM, _GREEN, _RED, _RESET = "\033[2m", "\033[32m", "\033[31m", "\033[0m"


def is_terminal(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real file
        return False


def colour_enabled(stream: TextIO | None = None) -> bool:
    """True only for a terminal, and not under NO_COLOR (any non-empty value) or TERM=dumb."""
    stream = sys.stderr if stream is None else stream
    return is_terminal(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def enabled(stream: TextIO | None = None, *, disabled: bool = False) -> bool:
    """Whether progress goes to `stream` (default stderr): a terminal, and not disabled by the caller (nor
    silenced in this thread)."""
    stream = sys.stderr if stream is None else stream
    if getattr(_silenced, "on", False):
        return False
    return not disabled and is_terminal(stream) and settings.get("DBTOOL_PROGRESS")


_silenced = threading.local()


@contextmanager
def silenced() -> Iterator[None]:
    """No progress lines from this thread inside (a fleet's worker threads: their lines would interleave; the
    library then says each step through its `say`, which the fleet collects per target)."""
    before = getattr(_silenced, "on", False)
    _silenced.on = True
    try:
        yield
    finally:
        _silenced.on = before


class Progress:
    """Per-step lines `[i/n] label: item  1.23s` on a terminal; a no-op otherwise."""

    def __init__(self, label: str, *, total: int | None = None, stream: TextIO | None = None,
                 disabled: bool = False):
        self.stream = sys.stderr if stream is None else stream
        self.label = label
        self.total = total
        self.active = enabled(self.stream, disabled=disabled)
        self.colour = self.active and colour_enabled(self.stream)
        self.count = 0
        self.started = time.monotonic()
        self._step_started = self.started

    def _paint(self, text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if self.colour else text

    def step(self, item: object) -> None:
        """Mark the start of the next step (prints the previous one's elapsed time)."""
        self.count += 1
        self._step_started = time.monotonic()
        if self.active:
            of = f"/{self.total}" if self.total is not None else ""
            self.stream.write(self._paint(f"[{self.count}{of}]", _DIM) + f" {self.label}: {item} ")
            self.stream.flush()

    def done_step(self) -> None:
        if self.active:
            self.stream.write(self._paint(f"{time.monotonic() - self._step_started:.2f}s", _DIM) + "\n")
            self.stream.flush()

    def abort(self, word: str = "failed") -> None:
        if self.active:
            self.stream.write(self._paint(word, _RED) + "\n")
            self.stream.flush()

    def finish(self) -> float:
        elapsed = time.monotonic() - self.started
        if self.active:
            self.stream.write(self._paint(f"{self.label}: {self.count} step(s) in {elapsed:.2f}s", _GREEN) + "\n")
            self.stream.flush()
        return elapsed
