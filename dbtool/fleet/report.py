"""One report of a fleet run, and how it shows while it goes.

- Text: one line per target (label, state, summary) in the order they were named; then, under its label, what
  the report has more to say of a target that is not simply ok (validate's findings, the library's messages);
  last, the summary line: how many targets ended in each state, the time and the exit code.
- JSON `dbtool.fleet/1`: the summary, and per target its state, exit code, one-line summary, what the library
  said (`log`) and its command's own result (`result`: dbtool.validate/1, dbtool.status/1, ...).
- JUnit: one <testsuite> per target (validate: its checked objects; migrate: each migration applied; status:
  each migration; wait: one case); a target that failed, could not be reached or was not started has one case
  with <error> or <skipped>.
- While it runs (stderr): on a terminal, one live line redrawn in place (how many done, in which states, which
  targets are running); elsewhere (CI logs, pipes) or with DBTOOL_PROGRESS=0, one line per target as it ends.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from typing import TextIO
from xml.etree import ElementTree as ET

from .. import progress
from ..junit import Suites
from .run import DRIFT, FAILURES, NOT_STARTED, OK, PENDING, STATES, Fleet, Result

FORMAT = "dbtool.fleet/1"
_COLOURS = {OK: "\033[32m", DRIFT: "\033[33m", PENDING: "\033[33m", NOT_STARTED: "\033[2m"}
_RED, _RESET = "\033[31m", "\033[0m"


def counted(fleet: Fleet) -> str:
    return ", ".join(f"{n} {state}" for state, n in fleet.counts.items())


def summary_line(fleet: Fleet) -> str:
    stopped = f"; stopped: {fleet.stopped}" if fleet.stopped else ""
    return (f"{fleet.command}: {len(fleet.results)} target(s): {counted(fleet)} in {fleet.seconds:.2f}s{stopped}; "
            f"exit {fleet.exit_code}")


def text(fleet: Fleet, *, colour: bool = False) -> str:
    width = min(max((len(r.target.label) for r in fleet.results), default=5), 40)
    lines = []
    for r in fleet.results:
        state = f"{r.state:11}"
        if colour:
            state = f"{_COLOURS.get(r.state, _RED)}{state}{_RESET}"
        lines.append(f"{r.target.label:{width}}  {state}  {r.summary}")
    more = [r for r in fleet.results if r.state not in (OK, NOT_STARTED) and (r.log or (r.done and r.done.details))]
    for r in more:
        where = f" ({r.target.where})" if r.target.where != r.target.label else ""
        lines += ["", f"{r.target.label}{where}: {r.state}"]
        lines += [f"    {line}" for line in r.log]
        lines += [f"    {line}" for line in (r.done.details if r.done else [])]
    lines += ["", summary_line(fleet)] if more else [summary_line(fleet)]
    return "\n".join(lines) + "\n"


def as_dict(fleet: Fleet) -> dict:
    return {
        "format": FORMAT,
        "command": fleet.command,
        "targets_from": fleet.origin,
        "ok": fleet.exit_code == 0,
        "exit_code": fleet.exit_code,
        "parallel": fleet.parallel,
        "canary": fleet.canary,
        "continue_on_error": fleet.continue_on_error,
        "stopped": fleet.stopped,
        "interrupted": fleet.interrupted,
        "summary": {"targets": len(fleet.results), "states": {s: fleet.counts.get(s, 0) for s in STATES},
                    "seconds": round(fleet.seconds, 3)},
        "targets": [{
            "label": r.target.label,
            "database": r.target.where,
            "named_at": r.target.origin,
            "state": r.state,
            "exit_code": r.exit_code,
            "summary": r.summary,
            "seconds": None if r.seconds is None else round(r.seconds, 3),
            "log": r.log,
            "result": r.done.result if r.done else None,
        } for r in fleet.results],
    }


def as_json(fleet: Fleet) -> str:
    return json.dumps(as_dict(fleet), indent=2, default=str) + "\n"


def junit(fleet: Fleet) -> str:
    suites = Suites(f"dbtool {fleet.command}")
    for r in fleet.results:
        suite = suites.suite(r.target.label)
        if r.seconds is not None:
            suite.set("time", f"{r.seconds:.3f}")
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="database", value=r.target.where)
        ET.SubElement(props, "property", name="state", value=r.state)
        cases = list(r.done.cases) if r.done and r.state not in FAILURES else []
        if not cases:
            case = ET.Element("testcase", classname=f"{r.target.label}.{fleet.command}", name=fleet.command)
            if r.state == NOT_STARTED:
                ET.SubElement(case, "skipped", message=r.summary)
            elif r.state in FAILURES:
                kind = "failure" if r.state == "failed" else "error"
                ET.SubElement(case, kind, message=r.summary, type=r.state).text = "\n".join([*r.log, r.summary])
            cases = [case]
        suite.extend(cases)
    return suites.xml()


class Live:
    """run.Watcher: a live line on a terminal, else one line per target as it ends (stderr)."""

    def __init__(self, command: str, total: int, *, stream: TextIO | None = None, disabled: bool = False):
        self.stream = sys.stderr if stream is None else stream
        self.command, self.total = command, total
        self.live = progress.enabled(self.stream, disabled=disabled)
        self.colour = self.live and progress.colour_enabled(self.stream)
        self.ended: dict[str, int] = {}
        self.t0 = time.monotonic()
        self._shown = False

    def _line(self, running: list[Result]) -> str:
        done = sum(self.ended.values())
        states = ", ".join(f"{n} {s}" for s, n in self.ended.items())
        names = ", ".join(r.target.label for r in running)
        text = (f"{self.command}: {done}/{self.total} done" + (f" ({states})" if states else "")
                + f" in {time.monotonic() - self.t0:.1f}s" + (f"; {len(running)} running: {names}" if running else ""))
        width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)
        return text if len(text) <= width else text[:width - 1] + "…"

    def _draw(self, running: list[Result]) -> None:
        if self.live:
            self.stream.write("\r\033[K" + self._line(running))
            self.stream.flush()
            self._shown = True

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False

    def started(self, result: Result, running: list[Result]) -> None:
        self._draw(running)

    def finished(self, result: Result, running: list[Result]) -> None:
        self.ended[result.state] = self.ended.get(result.state, 0) + 1
        if self.live:
            self._draw(running)
            return
        done = sum(self.ended.values())
        self.stream.write(f"[{done}/{self.total}] {result.target.label}: {result.state}: {result.summary}\n")
        self.stream.flush()

    def tick(self, running: list[Result]) -> None:
        self._draw(running)

    def note(self, message: str) -> None:
        self._clear()
        self.stream.write(f"dbtool: {message}\n")
        self.stream.flush()

    def close(self) -> None:
        self._clear()
