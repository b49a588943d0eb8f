"""Imported by conftest.py before anything imports dbtool: the suite never sees a developer's DBTOOL_* settings.

DBTOOL_ROOT, DBTOOL_DUCKDB_PATH, DBTOOL_POOL_*, DBTOOL_CONNECT_TIMEOUT, DBTOOL_PROGRESS... (dbtool/settings.py)
change what dbtool does; removed first, so that not even code run at import time can read them. A test
that needs one sets it explicitly (monkeypatch.setenv, or the `env` of helpers.run_dbtool).
"""

import os

PREFIX = "DBTOOL_"


def dbtool_variables(environ=None) -> list[str]:
    return sorted(k for k in (os.environ if environ is None else environ) if k.startswith(PREFIX))


REMOVED = {k: os.environ.pop(k) for k in dbtool_variables()}
