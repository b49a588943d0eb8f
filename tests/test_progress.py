"""dbtool.progress: lines on a terminal (a pseudo-terminal here), nothing on a pipe; colour rules."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

import pytest

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

    def output() -> str:
        stream.close()
        text = _read_all(master)
        os.close(master)
        return text

    yield stream, output
    if not stream.closed:
        stream.close()


@pytest.fixture
def pipe():
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")

    def output() -> str:
        stream.close()
        with os.fdopen(read_end) as fh:
            return fh.read()

    yield stream, output


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


def test_default_stream_is_stderr_of_a_real_process():
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    proc = subprocess.run([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=slave, env=env,
                          timeout=60, text=True)
    os.close(slave)
    assert proc.stdout == "stdout ok\n"  # progress never reaches stdout
    assert "[2/2] sync: b" in plain(_read_all(master))
    os.close(master)
    piped = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, env=env, timeout=60, text=True)
    assert piped.stderr == "" and piped.stdout == "stdout ok\n"


def test_migrate_shows_progress_on_a_terminal_and_log_lines_on_a_pipe(empty_url):
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "DATABASE_URL")}
    proc = subprocess.run([sys.executable, "-m", "dbtool", "migrate", "--module", "planning",
                           "--database-url", empty_url], stdout=subprocess.PIPE, stderr=slave, env=env,
                          timeout=120, text=True)
    os.close(slave)
    shown = plain(_read_all(master))
    os.close(master)
    assert proc.returncode == 0
    assert "[1/1] migrate: planning_0001_initial (8 files)" in shown and "applied planning" not in shown
    again = subprocess.run([sys.executable, "-m", "dbtool", "rollback", "--module", "planning", "--database-url",
                            empty_url], capture_output=True, env=env, timeout=120, text=True)
    assert again.returncode == 0
    piped = subprocess.run([sys.executable, "-m", "dbtool", "migrate", "--module", "planning", "--database-url",
                            empty_url], capture_output=True, env=env, timeout=120, text=True)
    assert "applied planning_0001_initial (8 files) in" in piped.stderr and "[1/1]" not in piped.stderr
