"""dbtool.progress: lines on a terminal (a pseudo-terminal here), nothing on a pipe; colour rules."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

import pytest

from dbtool import migrate as migrate_lib
from dbtool import progress


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO on a pty once the other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


@pytest.fixture
def terminal():
    """(stream writing to a pty, function returning what was written)."""
    master, slave = pty.openpty()
    stream = os.fdopen(slave, "w")
    reader = os.fdopen(master, "rb", buffering=0)

    def output() -> str:
        stream.close()
        return _read_all(reader.fileno())

    yield stream, output
    stream.close()
    reader.close()


@pytest.fixture
def pipe():
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")
    reader = os.fdopen(read_end)

    def output() -> str:
        stream.close()
        return reader.read()

    yield stream, output
    stream.close()  # both ends, whether the test read the output or not
    reader.close()


@pytest.fixture(autouse=True)
def plain_env(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("DBTOOL_PROGRESS", raising=False)
    monkeypatch.setenv("TERM", "xterm")


def run(items, label: str, **kw) -> None:
    """Drive a Progress the way migrate and sync do: a step per item, then the summary."""
    bar = progress.Progress(label, total=len(items), **kw)
    for item in items:
        bar.step(item)
        bar.done_step()
    bar.finish()


def test_steps_print_a_line_per_step_with_elapsed_time_on_a_terminal(terminal):
    stream, output = terminal
    run(["010_a.sql", "020_b.sql"], "migrate", stream=stream)
    raw = output()
    text = plain(raw)
    assert "[1/2]" in text and "migrate: 010_a.sql" in text and "[2/2]" in text and "migrate: 020_b.sql" in text
    assert "2 step(s) in" in text
    assert len(re.findall(r"\d+\.\d\ds\r\n", text)) == 3  # elapsed seconds end each line and the summary
    assert "\x1b[" in raw  # colour on a terminal


def test_no_color_keeps_progress_but_drops_colour(terminal, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    stream, output = terminal
    run([1, 2, 3], "load", stream=stream)
    text = output()
    assert "[3/3] load: 3" in text and "\x1b[" not in text


def test_nothing_on_a_pipe(pipe):
    stream, output = pipe
    run(range(3), "load", stream=stream)
    assert output() == ""


def test_nothing_when_disabled_even_on_a_terminal(terminal):
    stream, output = terminal
    run([1], "migrate", stream=stream, disabled=True)
    assert output() == ""


def test_a_failing_step_ends_its_line_and_no_summary(terminal):
    stream, output = terminal
    bar = progress.Progress("migrate", total=2, stream=stream)
    bar.step(1)
    bar.abort()
    text = plain(output())
    assert "[1/2] migrate: 1 failed\r\n" in text and "[2/2]" not in text and "step(s)" not in text


def test_colour_enabled(terminal, pipe, monkeypatch):
    tty_stream, _ = terminal
    pipe_stream, _ = pipe
    assert progress.colour_enabled(tty_stream) is True
    assert progress.colour_enabled(pipe_stream) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert progress.colour_enabled(tty_stream) is False
    monkeypatch.setenv("NO_COLOR", "")  # an empty NO_COLOR does not count (no-color.org)
    monkeypatch.setenv("TERM", "dumb")
    assert progress.colour_enabled(tty_stream) is False


CHILD = ("from dbtool import progress\nbar = progress.Progress('sync', total=2)\n"
         "for x in 'ab':\n    bar.step(x)\n    bar.done_step()\nprint('stdout ok')\n")


def run_with_stderr_on_a_terminal(args: list[str], env: dict,
                                  timeout: float) -> tuple[subprocess.CompletedProcess, str]:
    """Run a process whose stderr is a pseudo-terminal (stdout a pipe); what it showed there, colours removed."""
    master, slave = pty.openpty()
    try:
        try:
            proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=slave, env=env, timeout=timeout, text=True)
        finally:
            os.close(slave)
        return proc, plain(_read_all(master))
    finally:
        os.close(master)


def test_default_stream_is_stderr_of_a_real_process():
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    proc, shown = run_with_stderr_on_a_terminal([sys.executable, "-c", CHILD], env, timeout=60)
    assert proc.stdout == "stdout ok\n"  # progress never reaches stdout
    assert "[2/2] sync: b" in shown
    piped = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, env=env, timeout=60, text=True)
    assert piped.stderr == "" and piped.stdout == "stdout ok\n"


def test_migrate_shows_progress_on_a_terminal_and_log_lines_on_a_pipe(empty_url):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "DATABASE_URL")}
    proc, shown = run_with_stderr_on_a_terminal([sys.executable, "-m", "dbtool", "migrate", "--module", "planning",
                                                 "--database-url", empty_url], env, timeout=120)
    assert proc.returncode == 0, shown
    planned = [(m.id, len(migrate_lib.files_of(m))) for m in migrate_lib.load(["planning"])]  # what is on disk
    for n, (mid, files) in enumerate(planned, 1):
        assert f"[{n}/{len(planned)}] migrate: {mid} ({files} files)" in shown
    assert "applied planning" not in shown
    latest, files = planned[-1]
    again = subprocess.run([sys.executable, "-m", "dbtool", "rollback", "--module", "planning", "--yes",
                            "--database-url", empty_url], capture_output=True, env=env, timeout=120, text=True)
    assert again.returncode == 0 and f"rolled back {latest}" in again.stderr, again.stderr
    piped = subprocess.run([sys.executable, "-m", "dbtool", "migrate", "--module", "planning", "--database-url",
                            empty_url], capture_output=True, env=env, timeout=120, text=True)
    assert f"applied {latest} ({files} files) in" in piped.stderr and "[1/" not in piped.stderr
