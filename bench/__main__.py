"""Run every benchmark (or those named: python -m bench validate load)."""

import importlib
import pkgutil
import sys
from pathlib import Path

names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))
wanted = sys.argv[1:]
for name in names:
    if wanted and name.removeprefix("bench_") not in wanted:
        continue
    importlib.import_module(f"bench.{name}").run()
