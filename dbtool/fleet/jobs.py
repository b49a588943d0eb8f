"""What one target does for each command: a few lines over the single-database library, run in a worker thread.

Each job returns a run.Done (state, exit code, one-line summary, the command's own JSON, JUnit test cases) or
raises; run.failure() makes one masked line of what it raises. Jobs print nothing: the library's messages go to
the `say` they are given, which the rollout collects per target.

Thread safety, checked for these paths: every connection is opened by the thread that uses it (psycopg
connections are never shared between targets); migrate.load() is serialised (yoyo's registry of migrations is
one class-level dict); each target loads its own migration objects (ApplyFiles keeps per-run notes); progress
lines are silenced in workers (progress.silenced); the expected catalog is an immutable, cached model shared by
all; file checksums are computed once per run (fingerprint.files_read_once).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from xml.etree import ElementTree as ET

from .. import lock
from ..errors import ConnectError
from .run import DRIFT, OK, PENDING, Done, Job, Say
from .targets import FleetTarget


def _case(label: str, command: str, name: str) -> ET.Element:
    return ET.Element("testcase", classname=f"{label}.{command}", name=name)


def _listed(ids: list[str], most: int = 5) -> str:
    return ", ".join(ids[:most]) + (f" and {len(ids) - most} more" if len(ids) > most else "")


def migrate(modules: list[str], *, to: str | None = None, dry_run: bool = False, **timeouts) -> Job:
    """`dbtool migrate` on one target: its own lock and timeouts (lock_timeout, ddl/statement timeouts,
    terminate_stale); with dry_run, what would be applied (the SQL is the same everywhere: `dbtool migrate
    --dry-run` on one database prints it)."""
    from .. import migrate as migrate_lib
    from .. import revisions
    from ..errors import UsageError

    if to:  # an unknown id, or one of another module than --module: refused once, before any target starts
        revisions.find(migrate_lib.load(modules), to, modules)

    def pending(target) -> list[str] | None:
        """The ids migrate would apply (with `to`, up to it); None when not asked (a plain migrate)."""
        if not (dry_run or to):
            return None
        states = migrate_lib.status(target, modules)
        applied = {s.id for s in states if s.applied}
        if not to:
            return [s.id for s in states if not s.applied]
        migrations = migrate_lib.load(modules)
        try:
            return [m.id for m in revisions.up_to(migrations, revisions.find(migrations, to, modules), applied)]
        except UsageError:  # it is applied, and all before it: nothing to do here (a rollout run again)
            return []

    def job(ft: FleetTarget, say: Say) -> Done:
        started = time.monotonic()
        todo = pending(ft.target)
        if dry_run:
            assert todo is not None
            summary = f"would apply {len(todo)}: {_listed(todo)}" if todo else "nothing to apply"
            return Done(OK, 0, summary, {"pending": todo, "dry_run": True},
                        cases=[_case(ft.label, "migrate", "dry-run")])
        if todo == []:
            return Done(OK, 0, f"nothing to apply: {to} is applied", {"applied": [], "seconds": 0.0},
                        cases=[_case(ft.label, "migrate", "migrate")])
        out = migrate_lib.migrate(ft.target, modules, say=say, to=to, **timeouts)
        seconds = time.monotonic() - started
        summary = (f"{len(out.applied)} migration(s) applied in {seconds:.2f}s: {_listed(out.applied)}"
                   if out.applied else f"nothing to apply ({seconds:.2f}s)")
        cases = [_case(ft.label, "migrate", mid) for mid in out.applied] or [_case(ft.label, "migrate", "migrate")]
        return Done(OK, 0, summary, {"applied": out.applied, "seconds": round(seconds, 3)}, cases=cases)

    return job


def validate(modules: list[str], *, strict: bool = False, from_sql: bool = False, verbose: bool = False,
             explain: bool = False) -> Job:
    """`dbtool validate` on one target; its JSON is dbtool.validate/1, its JUnit cases those of validate."""
    from .. import migrate as migrate_lib
    from ..catalog import render
    from ..catalog import validate as validate_lib
    from ..catalog.expected import load_snapshot

    ids = {m: [mig.id for mig in migrate_lib.load([m])] for m in modules}  # once, not once per target
    if not from_sql:
        for m in modules:
            load_snapshot(m)  # read once here (cached), not by the first workers at once

    def job(ft: FleetTarget, say: Say) -> Done:
        report = validate_lib.validate(ft.target, modules, strict=strict, from_sql=from_sql, migration_ids=ids,
                                       say=say)
        report.database = ft.where
        s = report.summary
        state = DRIFT if report.errors else OK
        summary = (f"{'DRIFT' if report.errors else 'OK'}: {s['errors']} error(s), {s['warnings']} warning(s); "
                   f"{s['checked']} objects checked in {s['seconds']:.2f}s")
        shown = render.text(report, verbose=verbose, explain=explain).splitlines()[:-1]  # less its verdict line
        cases = []
        for case in ET.fromstring(render.junit(report)).iter("testcase"):
            case.set("classname", f"{ft.label}.{case.get('classname')}")
            cases.append(case)
        return Done(state, 1 if report.errors else 0, summary, json.loads(render.as_json(report)), shown, cases)

    return job


def status(modules: list[str], *, exit_code: bool = False) -> Job:
    """`dbtool status` on one target; its JSON is dbtool.status/1. Pending counts (exit 1) only with exit_code."""
    from .. import migrate as migrate_lib

    def job(ft: FleetTarget, say: Say) -> Done:
        states = migrate_lib.status(ft.target, modules)
        pending = [s.id for s in states if not s.applied]
        changed = sorted({f for s in states for f in s.changed_files})
        result = {"format": "dbtool.status/1", "database": ft.where, "migrations": [s.as_dict() for s in states]}
        summary = (f"{len(pending)} pending: {_listed(pending)}" if pending
                   else f"up to date: {len(states)} applied")
        if changed:
            summary += f"; changed since applied: {_listed(changed, 3)}"
        cases = []
        for s in states:
            case = _case(ft.label, "status", s.id)
            if not s.applied:
                if exit_code:
                    ET.SubElement(case, "failure", message="pending", type="pending")
                else:
                    ET.SubElement(case, "system-out").text = "pending"
            if s.changed_files:
                ET.SubElement(case, "system-out").text = "changed since applied: " + ", ".join(s.changed_files)
            cases.append(case)
        details = [f"{s.module:10} {s.id:40} pending" for s in states if not s.applied]
        return Done(PENDING if pending else OK, 1 if pending and exit_code else 0, summary, result, details, cases)

    return job


def wait(*, timeout: float, login: bool = False, chunk: float = 1.0) -> Job:
    """`dbtool wait` on one target, in slices of `chunk` seconds so that Ctrl-C stops it."""
    from .. import wait as wait_lib

    def job(ft: FleetTarget, say: Say) -> Done:
        started = time.monotonic()
        deadline = started + timeout
        last = "no answer"
        while True:
            lock.check_stop("while waiting for the server")
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectError(f"{ft.where} not ready after {timeout:g}s: {last}")
            try:
                ready = wait_lib.wait(ft.target, timeout=min(chunk, left), login=login)
                break
            except ConnectError as exc:
                last = str(exc).split("): ", 1)[-1]
        seconds = time.monotonic() - started
        summary = f"server up after {seconds:.2f}s" + (f"; note: {ready.note}" if ready.note else "")
        return Done(OK, 0, summary, {"seconds": round(seconds, 3), "note": ready.note},
                    cases=[_case(ft.label, "wait", "wait")])

    return job


JOBS: dict[str, Callable[..., Job]] = {"migrate": migrate, "validate": validate, "status": status, "wait": wait}
