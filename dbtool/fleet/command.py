"""The glue between a command's options (cli_common.fleet_options) and a rollout: read the targets, run, report."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from .. import config, fingerprint
from ..catalog.render import use_colour
from ..cli_common import say
from . import jobs, report, targets
from .run import Rollout

if TYPE_CHECKING:
    from ..cli_common import FleetRequest


def load_targets(request: FleetRequest) -> tuple[list[targets.FleetTarget], str]:
    """The targets, and where they were named."""
    if request.file is not None:
        return targets.read_file(request.file), str(request.file)
    assert request.query is not None
    if request.registry_url is not None:
        registry = config.parsed(request.registry_url, request.registry_source)
    else:
        registry = config.resolve(request.database_url)
    say(f"registry: {registry.display()} (from {registry.source})")
    return targets.from_registry(registry, request.query), f"--targets-query on {registry.display()}"


def execute(request: FleetRequest, command: str, fmt: str, *args: Any, **kw: Any) -> int:
    """Run `command` on every target; print one report; the worst exit code (130 after Ctrl-C)."""
    found, origin = load_targets(request)
    job = jobs.JOBS[command](*args, **kw)
    parallel = min(request.parallel, len(found))
    say(f"targets: {len(found)} from {origin}; {parallel} at a time"
        + (f"; canary: the first {min(request.canary, len(found))}" if request.canary else "")
        + ("; --continue-on-error" if request.continue_on_error else ""))
    watcher = report.Live(command, len(found))
    rollout = Rollout(command, origin, found, job, parallel=parallel, canary=request.canary,
                      continue_on_error=request.continue_on_error, watcher=watcher)
    with fingerprint.files_read_once():
        try:
            fleet = rollout.run()
        finally:
            watcher.close()
    if fmt == "json":
        click.echo(report.as_json(fleet), nl=False)
    elif fmt == "junit":
        click.echo(report.junit(fleet), nl=False)
    else:
        click.echo(report.text(fleet, colour=use_colour()), nl=False)
    if fmt != "text":
        say(report.summary_line(fleet))
    if fleet.abandoned:  # a second Ctrl-C: leave now, the running targets' connections close with the process
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(fleet.exit_code)
    return fleet.exit_code
