"""Many databases in one run: `--targets FILE` / `--targets-query SQL` for migrate, validate, status and wait.

targets.py   which databases (a file, or rows of a registry database), each with a label
run.py       the rollout: a bounded pool of worker threads, canary, stop on failure, Ctrl-C
jobs.py      what one target does for each command, over the single-database library
report.py    one report (text, dbtool.fleet/1 JSON, JUnit) and the live progress line
command.py   the glue the CLI calls

Nothing here is imported by `dbtool --help`.
"""
