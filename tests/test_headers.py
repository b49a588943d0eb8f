"""Files in sql/ cite design documents by file name, never by a path on one machine."""

from __future__ import annotations

import re

from dbtool import paths

SEED = re.compile(r"\b\d{3}_[0-9a-f]{16}\.txt\b")


def test_sql_headers_cite_seeds_by_file_name_only():
    files = sorted(paths.sql_dir().rglob("*.sql"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?<![\w.])/(?:work|home|root|tmp|Users)/", text), f"{path.name} names a machine's path"
    cited = [p for p in files if SEED.search(p.read_text(encoding="utf-8").split("\n", 3)[0])]
    assert cited, "no header cites a seed document"
