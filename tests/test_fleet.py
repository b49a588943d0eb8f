"""Issue 16 without a fleet: the targets file, option conflicts, the rollout's rules, the report formats, and the
thread safety the worker pool relies on."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from xml.etree import ElementTree as ET

import pytest

from dbtool import fingerprint, lock, progress
from dbtool import migrate as migrate_lib
from dbtool.errors import ConnectError, DbtoolError, UsageError
from dbtool.fleet import report, run, targets
from dbtool.paths import modules
from helpers import run_dbtool

SECRET = "hunter2-Xq"


# -- the targets file ------------------------------------------------------------------------------------------

def test_a_targets_file_with_labels_urls_services_settings_and_comments():
    found = targets.parse_text(f"""
# production, EU
eu-1   postgresql://app:{SECRET}@db-eu-1.example:5432/app   # primary
postgres://app@db-eu-2.example/app
eu-3   service=eu3
eu-4   host=/run/postgresql dbname=app user=app password='a b#c'
   # an indented comment
eu-5   postgresql+psycopg://app@db-eu-5.example/app
""", "fleet.txt")
    assert [t.label for t in found] == ["eu-1", "postgresql://app@db-eu-2.example:5432/app", "eu-3", "eu-4", "eu-5"]
    assert found[0].where == "postgresql://app@db-eu-1.example:5432/app" and found[0].origin == "fleet.txt:3"
    assert found[0].target.password == SECRET
    assert found[2].where == "service=eu3" and found[2].target.params == {"service": "eu3"}
    assert found[3].target.params["password"] == "a b#c"
    assert found[4].target.conninfo == "postgresql://app@db-eu-5.example/app"
    assert SECRET not in found[0].mask(f"failed: postgresql://app:{SECRET}@x")


@pytest.mark.parametrize("line,why", [
    ("prod", "one word and no database"),
    ("prod eu", "give one label, then a URL"),
    (f"prod postgresql://app:{SECRET}@db/x extra", "more than a URL"),
    (f"prod postgresql://app:{SECRET}@db/x postgresql://db/y", "more than a URL"),
    (f"mysql://app:{SECRET}@db/x", "not a PostgreSQL URL"),
    (f"pro$d postgresql://app:{SECRET}@db/x", "a label is one word"),
    (f"prod host=db password='{SECRET}", "never closed"),
    (f"prod postgresql://app:{SECRET}@db/x?frobnicate=1", "invalid database URL"),
    (f"prod postgresql://app:{SECRET}@x@db/x", "percent-encode"),
    (f"prod host=db password={SECRET} nonsense", "give one label, then a URL"),
])
def test_a_bad_line_is_refused_as_file_and_line_without_echoing_it(line, why):
    with pytest.raises(UsageError) as caught:
        targets.parse_text(f"# head\n\n{line}\n", "fleet.txt")
    message = str(caught.value)
    assert message.startswith("fleet.txt:3: ") and why in message and "\n" not in message
    assert SECRET not in message


def test_labels_and_databases_are_unique_and_a_file_names_one_at_least():
    with pytest.raises(UsageError, match=r"^f:2: label a is already used \(f:1\)$"):
        targets.parse_text("a postgresql://db/x\na postgresql://db/y\n", "f")
    with pytest.raises(UsageError, match=r"^f:2: the same database as f:1 \(postgresql://db:5432/x\)"):
        targets.parse_text("a postgresql://db/x\nb postgresql://db:5432/x\n", "f")
    with pytest.raises(UsageError, match="names no database"):
        targets.parse_text("# nothing\n\n", "f")


def test_cli_refuses_a_malformed_file_in_one_line_exit_2(tmp_path):
    path = tmp_path / "fleet.txt"
    path.write_text(f"ok postgresql://db/x\nbad postgresql://app:{SECRET}@db/x trailing\n")
    out = run_dbtool("migrate", "--targets", str(path))
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [f"dbtool: {path}:2: more than a URL after the label (a URL holds no "
                                               "spaces: percent-encode them as %20; a comment starts with #)"]
    assert SECRET not in out.stdout + out.stderr
    path.write_bytes(b"ok postgresql://db/x\n\xff\n")
    out = run_dbtool("validate", "--targets", str(path))
    assert out.returncode == 2 and f"{path}:2: not UTF-8" in out.stderr
    out = run_dbtool("status", "--targets", str(tmp_path / "missing.txt"))
    assert out.returncode == 2 and "no such file" in out.stderr


@pytest.mark.parametrize("args,why", [
    (["migrate", "--targets", "f.txt", "--database-url", "postgresql://db/x"], "--targets and --database-url"),
    (["validate", "--targets", "f.txt", "--targets-query", "SELECT 1"], "--targets and --targets-query"),
    (["status", "--canary", "2", "--database-url", "postgresql://db/x"], "--canary applies to a run over"),
    (["wait", "--parallel", "3", "--database-url", "postgresql://db/x"], "--parallel applies to a run over"),
    (["status", "--registry-url", "postgresql://db/r", "--targets", "f.txt"], "--registry-url applies to"),
    (["migrate", "--format", "json", "--database-url", "postgresql://db/x"], "--format json: the report of a run"),
    (["status", "--format", "junit", "--database-url", "postgresql://db/x"], "--format junit: the report of a run"),
    (["migrate", "--targets", "f.txt", "--redo"], "--redo acts on one database"),
    (["migrate", "--targets", ""], "--targets is empty"),
    (["validate", "--targets-query", " "], "--targets-query is empty"),
    (["validate", "--targets", "f.txt", "--parallel", "0"], "--parallel"),
])
def test_option_conflicts_are_usage_errors(tmp_path, args, why):
    (tmp_path / "f.txt").write_text("a postgresql://127.0.0.1:1/x\n")
    out = run_dbtool(*[str(tmp_path / a) if a == "f.txt" else a for a in args])
    assert out.returncode == 2, out.stderr
    assert why in out.stderr and "Traceback" not in out.stderr


def test_dbtool_targets_from_the_environment_and_the_command_line_wins(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("dead postgresql://127.0.0.1:1/x\n")
    out = run_dbtool("wait", "--timeout", "0.5", env={"DBTOOL_TARGETS": str(path)})
    assert out.returncode == 3 and out.stdout.startswith("dead  unreachable"), out.stdout + out.stderr
    one = run_dbtool("wait", "--timeout", "0.5", "--database-url", "postgresql://127.0.0.1:2/y",
                     env={"DBTOOL_TARGETS": str(path)})
    assert one.returncode == 3 and "DBTOOL_TARGETS is set, but --database-url names one database" in one.stderr
    assert "127.0.0.1:2/y" in one.stderr and not one.stdout


# -- the rollout -----------------------------------------------------------------------------------------------

def fake_targets(n: int) -> list[targets.FleetTarget]:
    return [targets.target_of(f"postgresql://app:{SECRET}@db{i}/x", f"t{i}", f"f:{i + 1}") for i in range(n)]


def rollout(n: int, outcome, **kw) -> run.Fleet:
    def job(ft, say):
        say(f"working on postgresql://app:{SECRET}@{ft.label}/x")
        return outcome(ft)
    return run.Rollout("validate", "f", fake_targets(n), job, **{"parallel": 3, **kw}).run()


def test_stop_on_failure_canary_and_continue_on_error():
    def unreachable_t2(ft):
        if ft.label == "t2":
            raise ConnectError(f"cannot connect to postgresql://app:{SECRET}@db2/x: server unreachable")
        time.sleep(0.05)
        return run.Done(run.OK, 0, "fine")

    fleet = rollout(8, unreachable_t2, parallel=1)
    assert [r.state for r in fleet.results] == ["ok", "ok", "unreachable"] + ["not started"] * 5
    assert fleet.exit_code == 3 and fleet.stopped == "t2 unreachable (--continue-on-error goes on after a failure)"
    assert SECRET not in json.dumps(report.as_dict(fleet)) + report.text(fleet) + report.junit(fleet)

    fleet = rollout(8, unreachable_t2, parallel=1, continue_on_error=True)
    assert [r.state for r in fleet.results].count("ok") == 7 and fleet.stopped is None

    fleet = rollout(8, unreachable_t2, parallel=2, canary=3, continue_on_error=True)
    assert [r.state for r in fleet.results] == ["ok", "ok", "unreachable"] + ["not started"] * 5
    assert fleet.stopped == "canary target t2 unreachable (--canary 3)"

    fleet = rollout(8, unreachable_t2, parallel=8, canary=2)  # the canary passes: everything else runs
    assert [r.state for r in fleet.results].count("ok") == 7


def test_the_canary_wave_finishes_before_the_rest_starts():
    seen: list[tuple[str, str]] = []

    def job(ft, say):
        seen.append(("start", ft.label))
        time.sleep(0.1 if ft.label == "t0" else 0.01)
        seen.append(("end", ft.label))
        return run.Done(run.OK, 0, "")

    run.Rollout("migrate", "f", fake_targets(5), job, parallel=4, canary=2).run()
    assert seen.index(("end", "t0")) < seen.index(("start", "t2"))


def test_findings_are_results_not_failures_and_the_exit_code_is_the_worst():
    def drift_t1(ft):
        return run.Done(run.DRIFT, 1, "DRIFT") if ft.label == "t1" else run.Done(run.OK, 0, "OK")

    fleet = rollout(5, drift_t1, parallel=1)
    assert [r.state for r in fleet.results] == ["ok", "drift", "ok", "ok", "ok"] and fleet.exit_code == 1
    assert fleet.counts == {"ok": 4, "drift": 1}

    def worst(ft):
        raise {"t0": DbtoolError("failed"), "t1": ConnectError("down"), "t2": UsageError("bad")}.get(
            ft.label, RuntimeError("boom"))

    fleet = rollout(4, worst, continue_on_error=True)
    assert [(r.state, r.exit_code) for r in fleet.results] == [("failed", 1), ("unreachable", 3), ("failed", 2),
                                                                ("failed", 1)]
    assert fleet.exit_code == 3 and fleet.results[3].summary == "unexpected error: RuntimeError: boom"


def test_workers_collect_their_messages_and_print_nothing(capsys):
    def chatty(ft):
        return run.Done(run.OK, 0, "fine")

    fleet = rollout(6, chatty, parallel=6)
    assert capsys.readouterr() == ("", "")
    assert all(r.log == [f"working on postgresql://app:***@{r.target.label}/x"] for r in fleet.results)


def test_stop_event_interrupts_a_target_between_migrations_only_in_its_thread():
    event = threading.Event()
    event.set()
    lock.check_stop()  # this thread was given no event: nothing happens
    with lock.stop_when(event), pytest.raises(lock.Interrupted, match="stopped before its next migration"):
        lock.check_stop()
    fleet = run.Rollout("migrate", "f", fake_targets(1), lambda ft, say: lock.check_stop() or run.Done("ok", 0, ""),
                        parallel=1)
    fleet.stop.set()
    result = fleet.run().results[0]
    assert (result.state, result.exit_code) == ("interrupted", 130)


def test_progress_is_silenced_in_worker_threads_only(monkeypatch):
    monkeypatch.setattr(progress, "is_terminal", lambda stream: True)
    assert progress.enabled()
    with progress.silenced():
        assert not progress.enabled()
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(progress.enabled).result()  # another thread is not silenced
    assert progress.enabled()


def test_yoyo_migrations_load_safely_from_many_threads():
    """yoyo resolves __depends__ through one class-level dict: each load gets its own, consistent objects."""
    def load(_):
        found = migrate_lib.load(modules())
        return found, all(dep in list(found) for m in found for dep in m.depends)

    with ThreadPoolExecutor(8) as pool:
        loads = list(pool.map(load, range(16)))
    assert all(consistent for _, consistent in loads)
    assert len({id(m) for found, _ in loads for m in found}) == 16 * len(loads[0][0])


def test_checksums_are_computed_once_per_run(tmp_path, monkeypatch):
    path = tmp_path / "x.sql"
    path.write_text("SELECT 1; -- comment\n")
    calls = []
    real = fingerprint.checksum
    monkeypatch.setattr(fingerprint, "checksum", lambda data, algorithm: calls.append(1) or real(data, algorithm))
    with fingerprint.files_read_once():
        assert fingerprint.file_checksum(path) == fingerprint.file_checksum(path)
    assert len(calls) == 1
    fingerprint.file_checksum(path)
    assert len(calls) == 2  # outside a run: read each time (a file edited meanwhile is seen)


# -- the report ------------------------------------------------------------------------------------------------

def test_text_json_and_junit_reports():
    def mixed(ft):
        if ft.label == "t1":
            return run.Done(run.DRIFT, 1, "DRIFT: 1 error(s)", {"format": "dbtool.validate/1"},
                            details=["crm.x", "  error   missing table crm.x"],
                            cases=[ET.Element("testcase", classname="t1.crm.table", name="crm.x")])
        if ft.label == "t2":
            raise ConnectError("cannot connect to postgresql://app@db2:5432/x: server unreachable")
        return run.Done(run.OK, 0, "OK", {"format": "dbtool.validate/1"},
                        cases=[ET.Element("testcase", classname=f"{ft.label}.crm.table", name="crm.y")])

    fleet = rollout(4, mixed, parallel=1)
    text = report.text(fleet)
    lines = text.splitlines()
    assert lines[0].split() == ["t0", "ok", "OK"]
    assert lines[1].split()[:2] == ["t1", "drift"] and lines[2].split()[:2] == ["t2", "unreachable"]
    assert lines[3].split()[:3] == ["t3", "not", "started"]
    assert "t1 (postgresql://app@db1:5432/x): drift" in text and "      error   missing table crm.x" in text
    assert lines[-1].startswith("validate: 4 target(s): 1 ok, 1 drift, 1 unreachable, 1 not started in ")
    assert lines[-1].endswith("; stopped: t2 unreachable (--continue-on-error goes on after a failure); exit 3")

    data = json.loads(report.as_json(fleet))
    assert data["format"] == "dbtool.fleet/1" and data["exit_code"] == 3 and not data["ok"]
    assert data["summary"]["states"]["drift"] == 1 and data["summary"]["targets"] == 4
    assert [t["state"] for t in data["targets"]] == ["ok", "drift", "unreachable", "not started"]
    assert data["targets"][1]["result"] == {"format": "dbtool.validate/1"} and data["targets"][3]["exit_code"] is None
    assert data["targets"][0]["log"] == ["working on postgresql://app:***@t0/x"]

    suites = ET.fromstring(report.junit(fleet))
    assert [s.get("name") for s in suites] == ["t0", "t1", "t2", "t3"]
    assert suites.get("tests") == "4" and suites.get("errors") == "1" and suites.get("skipped") == "1"
    assert suites[2].find("testcase/error").get("type") == "unreachable"
    assert suites[3].find("testcase/skipped") is not None


def test_live_line_on_a_terminal_and_one_line_per_target_elsewhere(monkeypatch):
    import io

    log = io.StringIO()
    live = report.Live("migrate", 2, stream=log)
    fleet = run.Rollout("migrate", "f", fake_targets(2), lambda ft, say: run.Done(run.OK, 0, "done"), parallel=1,
                        watcher=live).run()
    assert log.getvalue().splitlines() == ["[1/2] t0: ok: done", "[2/2] t1: ok: done"]
    assert fleet.exit_code == 0

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    live = report.Live("migrate", 2, stream=tty)
    run.Rollout("migrate", "f", fake_targets(2), lambda ft, say: run.Done(run.OK, 0, "done"), parallel=2,
                watcher=live).run()
    live.close()
    assert "\r\033[Kmigrate: 2/2 done (2 ok) in " in tty.getvalue() and "\n" not in tty.getvalue()
    assert tty.getvalue().endswith("\r\033[K")
