"""Every bench/bench_*.py runs to the end at its tiny size (BENCH_TINY=1), so none can rot unnoticed.

Each bench runs as `python -m bench <name>` in a subprocess against the suite's server (DATABASE_URL
of a test database; the benches make their own scratch databases beside it), exactly as `make bench`
runs it. Checked: exit status 0, at least one GOAL line of the documented shape, and a results file
(in a temporary directory) holding the bench's table and its goals. No timing is asserted: at tiny
sizes the ratios mean nothing. The benches are found on disk: a new bench is covered by being there.
"""

from __future__ import annotations

import json
import re
import sys

import pytest

from dbtool.paths import ROOT
from helpers import dbtool_env

BENCHES = sorted(p.stem.removeprefix("bench_") for p in (ROOT / "bench").glob("bench_*.py"))
GOAL = re.compile(r"^GOAL (?P<name>.+): (?P<ratio>-?[\d.]+|inf|nan) \(goal (<=|>=) [\d.e+-]+\) (met|not met)(; .+)?$",
                  re.M)


def test_every_bench_on_disk_is_covered():
    assert {"load", "validate", "startup", "lint"} <= set(BENCHES)


@pytest.mark.parametrize("name", BENCHES)
def test_bench_runs_to_the_end_at_tiny_size(name, empty_url, tmp_path):
    import subprocess

    env = dbtool_env({"DATABASE_URL": empty_url, "BENCH_TINY": "1", "BENCH_RESULTS_DIR": str(tmp_path),
                      "TMPDIR": str(tmp_path)})
    proc = subprocess.run([sys.executable, "-m", "bench", name], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, f"bench_{name} failed:\n{out[-3000:]}\n{proc.stderr[-3000:]}"
    assert GOAL.search(out), f"bench_{name} printed no GOAL line:\n{out[-3000:]}"
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1, files
    doc = json.loads(files[0].read_text())
    assert doc["tiny"] is True and doc["runs"][f"bench_{name}"]["ok"] is True
    assert doc["environment"]["machine"]["cores"] and doc["environment"]["postgresql"].get("server_version")
    benches = doc["benches"]
    assert any(entry["goals"] for entry in benches.values()), "no goal recorded"
    assert any(entry["figures"] for entry in benches.values()), "no table (figure) recorded"
    printed = {m["name"] for m in GOAL.finditer(out)}
    assert printed == {g["name"] for entry in benches.values() for g in entry["goals"]}


def _doc(ratio: float, secs: float, rows: int = 1000) -> dict:
    return {"format": 1, "started": "2026-11-30T00:00:00+00:00", "tiny": False,
            "environment": {"machine": {"cores": 2}, "postgresql": {"server_version": "15.18"},
                            "dbtool": {"commit": "abc"}},
            "benches": {"load": {"sizes": {"rows": rows},
                                 "figures": {"Load rows | order_line.load": secs, "rows/s": 1000 / secs},
                                 "goals": [{"name": "loader vs psql", "ratio": ratio, "op": ">=", "value": 1.0,
                                            "met": ratio >= 1.0}]}}}


def test_results_files_are_never_overwritten(tmp_path, monkeypatch):
    import datetime as dt

    monkeypatch.syspath_prepend(str(ROOT))  # bench/ is no package of the distribution
    from bench import common

    first = common.write_results(_doc(1.0, 2.0), tmp_path)
    second = common.write_results(_doc(1.1, 1.9), tmp_path)
    third = common.write_results(_doc(1.2, 1.8), tmp_path)
    day = dt.date.today().isoformat()
    assert [p.name for p in (first, second, third)] == [f"{day}.json", f"{day}-2.json", f"{day}-3.json"]
    assert json.loads(first.read_text())["benches"]["load"]["goals"][0]["ratio"] == 1.0


def test_compare_prints_the_changes_of_figures_and_goals(tmp_path):
    import subprocess

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_doc(0.84, 2.0)))
    b.write_text(json.dumps(_doc(1.05, 1.6, rows=2000)))
    proc = subprocess.run([sys.executable, "-m", "bench", "--compare", str(a), str(b)], capture_output=True,
                          text=True, cwd=ROOT, env=dbtool_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    table = r"\n  Load rows\n    order_line\.load\s+2\s+1\.6\s+0\.80\n"  # a report() table: title, then rows
    assert re.search(table + r"  rows/s\s+500\s+625\s+1\.25\n", out), out
    assert "GOAL loader vs psql: 0.84 -> 1.05 (+0.21; goal >= 1) met (was not met)" in out
    assert "sizes differ" in out
