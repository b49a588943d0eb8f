"""File checksums: line endings, BOM and comments do not count; code does, function bodies included."""

from __future__ import annotations

import pytest

from dbtool.fingerprint import ALGORITHM, checksum
from dbtool.history import FileRecord

BASE = b"""-- Spec: 004_2e599804ad6cdf94.txt, table t
CREATE TABLE IF NOT EXISTS m.t (x text DEFAULT '-- not a comment');
/* block */ CREATE FUNCTION m.f() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    -- inside the body: part of the function
    RETURN 1;
END $$;
"""


def test_comment_only_edits_keep_the_checksum():
    edited = (BASE.replace(b"-- Spec: 004_2e599804ad6cdf94.txt", b"-- Spec: elsewhere")
              .replace(b"/* block */", b"/* another block */"))
    assert checksum(edited) == checksum(BASE)
    assert checksum(b"\xef\xbb\xbf" + BASE.replace(b"\n", b"\r\n")) == checksum(BASE)


@pytest.mark.parametrize("old,new", [
    (b"'-- not a comment'", b"'-- not a  comment'"),           # a string that looks like a comment
    (b"-- inside the body: part", b"-- inside the body: PART"),  # a comment inside a function body
    (b"RETURN 1", b"RETURN 2"),
    (b"x text", b"x varchar"),
])
def test_code_edits_change_the_checksum(old, new):
    assert BASE.replace(old, new) != BASE
    assert checksum(BASE.replace(old, new)) != checksum(BASE)


def test_an_older_record_is_checked_with_its_own_algorithm(tmp_path, monkeypatch):
    monkeypatch.setenv("DBTOOL_ROOT", str(tmp_path))
    (tmp_path / "sql" / "m").mkdir(parents=True)
    (tmp_path / "migrations").mkdir()
    (tmp_path / "sql" / "m" / "010_t.sql").write_bytes(BASE)
    v1 = checksum(BASE, "sha256-v1")
    assert FileRecord("m_0001", "m", "m/010_t.sql", v1, "sha256-v1").problem is None
    (tmp_path / "sql" / "m" / "010_t.sql").write_bytes(BASE.replace(b"table t", b"table t (header)"))
    # v1 counted comments: a mismatch may be a comment edit only, so it is not called an edit
    assert FileRecord("m_0001", "m", "m/010_t.sql", v1, "sha256-v1").problem == "unchecked"
    assert FileRecord("m_0001", "m", "m/010_t.sql", checksum(BASE), ALGORITHM).problem is None
    (tmp_path / "sql" / "m" / "010_t.sql").write_bytes(BASE.replace(b"RETURN 1", b"RETURN 2"))
    assert FileRecord("m_0001", "m", "m/010_t.sql", checksum(BASE), ALGORITHM).problem == "edited"
    assert FileRecord("m_0001", "m", "m/010_t.sql", "x", "md5-v0").problem == "unchecked"
