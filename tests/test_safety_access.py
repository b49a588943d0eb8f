"""Issue 12: who may reach the local cluster, passwords in any input, bad durations and directives,
and connect failures named for what they are."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from urllib.parse import quote, unquote

import click
import psycopg
import pytest
from psycopg import sql

from dbtool import cli as cli_module
from dbtool import config, devdb, settings
from dbtool.cli_common import SECONDS, Duration, Number
from dbtool.config import LIBPQ_VARS, Target, describe_connect_error
from dbtool.errors import EXIT_CONNECT, EXIT_USAGE, ConnectError, MigrationError, UsageError
from dbtool.migration_steps import duration_problem, load_file
from dbtool.paths import ROOT
from helpers import add_migration, catalog_of, copy_project, run_dbtool


def one_line_error(out) -> str:
    assert "Traceback" not in out.stderr, out.stderr
    return out.stderr.strip().splitlines()[-1]


# -- 7: the local cluster is private to whoever runs it ---------------------------------------

def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


needs_second_user = pytest.mark.skipif(
    os.geteuid() != 0 or not _user_exists("dbdev") or not shutil.which("runuser") or not shutil.which("psql"),
    reason="needs root, runuser, psql and the second OS user `dbdev` (to act as other local users)")

OTHER_OWNER = "nobody"  # a user who starts a cluster of their own (not root, not dbdev)


def as_user(user: str, *cmd: str, env: dict | None = None, cwd: str = "/", timeout: float = 180):
    """Run cmd as another OS user with a clean environment (nothing of ours leaks in)."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": cwd, "LANG": "C.UTF-8"}
    pairs = [f"{k}={v}" for k, v in {**base, **(env or {})}.items()]
    return subprocess.run(["runuser", "-u", user, "--", "env", "-i", *pairs, *cmd], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def psql_as(user: str, sockdir: Path, port: int):
    return as_user(user, "psql", "-X", "-At", "-h", str(sockdir), "-p", str(port), "-U", "postgres",
                   "-d", "postgres", "-c", "SELECT current_user", timeout=30)


def dbtool_as(user: str, *args: str, env: dict | None = None, cwd: str = "/"):
    """This checkout's dbtool run by another OS user (the venv's python may sit in root's home: the
    system python of the same version, with the venv's packages on the path)."""
    site = sysconfig.get_paths()["purelib"]
    return as_user(user, SYSTEM_PYTHON, "-m", "dbtool", *args, cwd=cwd,
                   env={"PYTHONPATH": f"{ROOT}:{site}", "PG_BINDIR": str(devdb.bindir()), **(env or {})})


SYSTEM_PYTHON = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"


def _can_run_dbtool_as(user: str) -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    return dbtool_as(user, "--version").returncode == 0


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _socket(cluster_dir: Path, port: int) -> Path:
    return cluster_dir / f".s.PGSQL.{port}"


@pytest.fixture
def users_cluster():
    """A local cluster started by `dbtool devdb up` run as another ordinary user (not root, not dbdev)."""
    if not _can_run_dbtool_as(OTHER_OWNER):
        pytest.skip(f"{OTHER_OWNER} cannot run this checkout's dbtool with {SYSTEM_PYTHON}")
    parent = Path(tempfile.mkdtemp(prefix="dbtool-acc-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None))
    owner = pwd.getpwnam(OTHER_OWNER)
    os.chown(parent, owner.pw_uid, owner.pw_gid)
    parent.chmod(0o755)
    base = parent / "pg"
    env = {"DBTOOL_DEVDB_DIR": str(base)}
    try:
        up = dbtool_as(OTHER_OWNER, "devdb", "up", env=env, cwd=str(parent))
        assert up.returncode == 0, up.stderr
        yield base, env, parent
    finally:
        dbtool_as(OTHER_OWNER, "devdb", "down", env=env, cwd=str(parent))
        shutil.rmtree(parent, ignore_errors=True)


@needs_second_user
def test_a_users_cluster_is_reachable_by_that_user_only(users_cluster):
    base, _env, _parent = users_cluster
    mine = psql_as(OTHER_OWNER, base, 5432)
    assert mine.returncode == 0 and mine.stdout.strip() == "postgres", mine.stderr  # the owner: yes
    theirs = psql_as("dbdev", base, 5432)
    assert theirs.returncode != 0 and "Permission denied" in theirs.stderr, theirs.stdout  # anyone else: no
    assert _mode(base) == 0o700 and _mode(base / "data") == 0o700
    assert _mode(_socket(base, 5432)) == 0o700


@needs_second_user
def test_an_open_cluster_of_an_older_dbtool_is_made_private_on_the_next_start(users_cluster):
    base, env, parent = users_cluster
    base.chmod(0o755)  # what an older dbtool left: folder 0755, socket 0777
    _socket(base, 5432).chmod(0o777)
    assert psql_as("dbdev", base, 5432).returncode == 0  # open to every local user, as reported
    again = dbtool_as(OTHER_OWNER, "devdb", "up", env=env, cwd=str(parent))
    assert again.returncode == 0, again.stderr
    assert f"local cluster: {base} was open to other local users (mode 755); made it private (700)" in again.stderr
    assert _mode(base) == 0o700
    denied = psql_as("dbdev", base, 5432)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr


@needs_second_user
def test_the_cluster_root_starts_is_closed_to_other_users(pg_cluster):
    assert pg_cluster.sockdir.stat().st_uid == pwd.getpwnam("postgres").pw_uid
    assert _mode(pg_cluster.sockdir) == 0o700 and _mode(_socket(pg_cluster.sockdir, pg_cluster.port)) == 0o700
    denied = psql_as("dbdev", pg_cluster.sockdir, pg_cluster.port)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    if _can_run_dbtool_as("dbdev"):  # and dbtool says why, exit 3
        out = dbtool_as("dbdev", "status", "--database-url", pg_cluster.conninfo("postgres"))
        assert out.returncode == EXIT_CONNECT, out.stderr
        assert "this OS user may not reach the server's socket (permission denied)" in one_line_error(out)


def test_root_tightens_an_open_cluster_folder_and_says_so(pg_cluster):
    pg_cluster.base.chmod(0o755)
    said: list[str] = []
    pg_cluster.ensure_running(say=said.append)
    assert _mode(pg_cluster.base) == 0o700
    assert said == [f"local cluster: {pg_cluster.base} was open to other local users (mode 755); made it private (700)"]
    pg_cluster.ensure_running(say=said.append)
    assert len(said) == 1  # private already: nothing to say


@needs_second_user
def test_make_migrate_as_root_works_and_stays_private(tmp_path):
    parent = Path(tempfile.mkdtemp(prefix="dbtool-mig-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None))
    parent.chmod(0o755)  # postgres must reach it
    env = {"DBTOOL_DEVDB_DIR": str(parent / "pg")}
    try:
        out = run_dbtool("migrate", env=env)
        assert out.returncode == 0, out.stderr
        assert run_dbtool("status", "--exit-code", env=env).returncode == 0
        assert psql_as("dbdev", parent / "pg", 5432).returncode != 0
    finally:
        run_dbtool("devdb", "down", env=env)
        shutil.rmtree(parent, ignore_errors=True)


# -- 10: a password is never printed, however malformed the input ------------------------------

GOOD = "Good1%zz:Good2@Good3/Good4 'Good5' \"Good6\" Good7"  # the role's password: every awkward character
BAD = [  # wrong passwords, each awkward in its own way
    "Pcta1%zzPcta2",                   # a literal % that is no escape
    "Escb1%41Escb2",                   # a literal % that looks like one (a URL decodes it)
    "Atxc1@Atxc2@Atxc3",               # @ twice
    "Cold1:Slad1/Atxd1@Slad2",         # : / @
    "Quoe1 'Quoe2' \"Quoe3\" Spce1",   # quotes and spaces
]
ROLE = "pw_access"


def leaks(output: str, password: str) -> list[str]:
    """The password, any of its encodings, or any of its words (4+ characters) found in the output."""
    forms = {password, quote(password, safe=""), quote(password), unquote(password)}
    words = {w for w in re.split(r"[^A-Za-z0-9]+", password) if len(w) >= 4}
    return sorted(f for f in forms | words if f and f in output)


def conninfo_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def inputs(password: str, sock: Path, port: int, db: str) -> dict[str, str]:
    """Every way a user may write the password: raw (malformed) and properly encoded."""
    where = f"host={sock}&port={port}"
    return {
        "url raw": f"postgresql://{ROLE}:{password}@/{db}?{where}",
        "url encoded": f"postgresql://{ROLE}:{quote(password, safe='')}@/{db}?{where}",
        "url query raw": f"postgresql://{ROLE}@/{db}?{where}&password={password}",
        "conninfo raw": f"host={sock} port={port} dbname={db} user={ROLE} password={password}",
        "conninfo quoted": f"host={sock} port={port} dbname={db} user={ROLE} password={conninfo_quote(password)}",
    }


@pytest.fixture
def secret_role(pg_cluster, migrated_proc, empty_db):
    """ROLE logs in to the empty test database with the password GOOD only (scram); the module roles
    exist (the migrated template made them), so ROLE may migrate without CREATEROLE."""
    hba = pg_cluster.data / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text(f"local all {ROLE} scram-sha-256\n" + original)
    dbname = empty_db.info.dbname
    empty_db.autocommit = True
    empty_db.execute("SELECT pg_reload_conf()")
    empty_db.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(GOOD)))
    empty_db.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(ROLE)))
    empty_db.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(ROLE)))
    try:
        yield pg_cluster.sockdir, pg_cluster.port, dbname
    finally:
        hba.write_text(original)
        empty_db.execute("SELECT pg_reload_conf()")
        empty_db.execute(sql.SQL("ALTER DATABASE {} OWNER TO postgres").format(sql.Identifier(dbname)))
        empty_db.execute("ALTER SCHEMA public OWNER TO pg_database_owner")
        empty_db.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(ROLE)))
        empty_db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(ROLE)))


# Every command that takes a database (snapshot only fails here: it would write derived files).
COMMANDS = [
    ("migrate",), ("status",), ("validate",), ("rollback", "--module", "planning", "--yes"),
    ("reset", "--module", "planning", "--yes"), ("seed", "--module", "planning"), ("stats",), ("smoke",),
    ("erase-user", "--phone", "+5511999990000", "--yes"), ("analytics", "sync", "--create", "--path", "{tmp}/a.duckdb"),
    ("wait", "--timeout", "0"), ("wait", "--login", "--timeout", "0"), ("backup", "--out", "{tmp}/b.dump"),
    ("restore", "--force", "{tmp}/b.dump"), ("snapshot",),
]


def run_in_process(args: list[str], capsys, monkeypatch, env: dict[str, str]) -> tuple[int, str]:
    """dbtool's main() in this process (the whole matrix in seconds); (exit code, stdout + stderr)."""
    for name in (*LIBPQ_VARS, "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["dbtool", *args])
    with pytest.raises(SystemExit) as done:
        cli_module.main()
    out = capsys.readouterr()
    settings.clear_overrides()  # what the command line recorded stays with that run
    for name in env:
        monkeypatch.delenv(name)
    return int(done.value.code or 0), out.out + out.err


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_no_failing_run_of_any_command_prints_the_password(secret_role, command, tmp_path, capsys, monkeypatch):
    sock, port, db = secret_role
    root = copy_project(tmp_path / "project")
    args = [a.format(tmp=tmp_path) for a in command]
    tried = []
    for password in [*BAD, GOOD]:
        for form, given in inputs(password, sock, port, db).items():
            if password == GOOD and form in ("url encoded", "conninfo quoted"):
                continue  # those log in: the succeeding runs below
            for via in ("--database-url", "DATABASE_URL"):
                env = {"DBTOOL_ROOT": str(root), "DBTOOL_CONNECT_TIMEOUT": "3"}
                extra = ["--database-url", given] if via == "--database-url" else []
                if via == "DATABASE_URL":
                    env["DATABASE_URL"] = given
                code, output = run_in_process([*args, *extra], capsys, monkeypatch, env)
                tried.append(code)
                assert not leaks(output, password), (form, via, output)
                assert "Traceback" not in output
                if command[0] != "wait" or "--login" in command:  # plain wait: a refused login is still "up"
                    assert code != 0, (form, via, output)
    assert len(tried) == 2 * (5 * len(BAD) + 3)


def test_failing_runs_in_a_real_process_print_no_password(secret_role, tmp_path):
    sock, port, db = secret_role
    for password in BAD:
        for form, given in inputs(password, sock, port, db).items():
            out = run_dbtool("validate", "--database-url", given)
            assert out.returncode in (EXIT_USAGE, EXIT_CONNECT), out.stderr
            assert one_line_error(out).startswith("dbtool: ")
            assert not leaks(out.stdout + out.stderr, password), (form, out.stderr)


SUCCEEDING = [("migrate",), ("status",), ("validate",), ("seed",), ("stats",), ("smoke",),
              ("erase-user", "--phone", "+5511900000001", "--yes"), ("analytics", "init", "--path", "{tmp}/a.duckdb"),
              ("analytics", "sync", "--path", "{tmp}/a.duckdb"),
              ("backup", "--out", "{tmp}/b.dump"), ("restore", "--force", "{tmp}/b.dump"), ("wait", "--login"),
              ("seed", "--module", "planning", "--clear"), ("rollback", "--module", "planning", "--yes"),
              ("migrate",), ("reset", "--module", "planning", "--yes")]


@pytest.mark.parametrize("form", ["url encoded", "conninfo quoted", "PG* environment"])
def test_no_succeeding_run_of_any_command_prints_the_password(secret_role, form, tmp_path):
    sock, port, db = secret_role
    if form == "PG* environment":
        env = {"PGHOST": str(sock), "PGPORT": str(port), "PGDATABASE": db, "PGUSER": ROLE, "PGPASSWORD": GOOD}
    else:
        env = {"DATABASE_URL": inputs(GOOD, sock, port, db)[form]}
    for command in SUCCEEDING:
        args = [a.format(tmp=tmp_path) for a in command]
        out = run_dbtool(*args, env=env)
        assert out.returncode == 0, (args, out.stderr)
        assert not leaks(out.stdout + out.stderr, GOOD), (args, out.stdout + out.stderr)
        assert f"{ROLE}@" in out.stderr or command[:2] == ("analytics", "init")  # says where it connected


@pytest.mark.parametrize("url,why", [
    ("postgresql://app:Pq1@Pq2/Pq3:Pq4@db.example/app", "more than one '@'"),
    ("postgresql://app:Pq1/Pq2@db.example/app", "a '/' in the password: libpq sees no password at all"),
    ("postgresql://app:Pq1?x@Pq2@db.example/app", "'?' then '@' twice"),
    ("postgresql://app:Pq1@Pq2?x@db.example/app", "an '@' in what libpq takes for the query"),
])
def test_a_url_libpq_would_split_elsewhere_is_refused_before_connecting(url, why):
    with pytest.raises(UsageError) as refused:
        config.parsed(url, "--database-url")
    message = str(refused.value)
    assert message.startswith("invalid database URL from --database-url: an '@' after the user info"), why
    assert "Pq" not in message
    assert "%40" in message  # says how to write it


@pytest.mark.parametrize("url", [
    "postgresql://app:Pq1%40Pq2@db.example/app",
    "postgresql://app:Pq1:Pq2@db.example/app",
    "postgresql://app:Pq1?Pq2@db.example/app?application_name=me@work",
    "postgresql://app@/app?host=/run/postgresql&port=5433",
    "postgresql://[::1]:5433/app?application_name=a@b",
    "host=db user=app password='Pq1 @/:'",
])
def test_well_formed_urls_are_not_refused(url):
    assert config.parsed(url, "--database-url").params


@pytest.mark.parametrize("given,message", [
    ("postgresql://u:Msk1%zzMsk2@h/db", 'invalid percent-encoded token: "Msk1%zzMsk2"'),
    ("host=h password=Msk1 Msk2", 'missing "=" after "Msk2" in connection info string'),
    ('host=h password="Msk1 Msk2"', 'missing "=" after "Msk2"" in connection info string'),
    ("postgresql://u:Msk1 Msk2@h/db", 'unexpected spaces found in "Msk1 Msk2", use percent-encoded spaces'),
    ("host=h password='Msk1\\'Msk2'", "password 'Msk1\\'Msk2' or Msk1'Msk2"),
    ("postgresql://u:Msk1%41Msk2@h/db", "failed for Msk1AMsk2 (decoded) and Msk1%2541Msk2 (encoded again)"),
    ("host=h sslkey=/k sslpassword=Msk1&Msk2", "could not decrypt key with Msk1&Msk2"),
    ("postgresql://u@h/db?sslpassword=Msk1%26Msk2&sslmode=require", "key passphrase Msk1&Msk2 or Msk1%26Msk2"),
])
def test_mask_hides_the_password_whatever_libpq_made_of_the_input(given, message):
    assert "Msk" not in Target(given, "t").mask(message)


def test_a_long_path_puts_a_private_socket_folder_in_tmp():
    parent = Path(tempfile.mkdtemp(prefix="dbtool-long-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None))
    parent.chmod(0o755)  # as root the cluster's owner is postgres, which must reach it
    cluster = devdb.Cluster(parent / ("y" * 120) / "pg")
    assert Path(tempfile.gettempdir()) in cluster.sockdir.parents
    try:
        cluster._prepare_dirs(say=lambda _m: None)
        assert _mode(cluster.base) == 0o700 and _mode(cluster.sockdir) == 0o700
    finally:
        shutil.rmtree(cluster.sockdir, ignore_errors=True)
        shutil.rmtree(parent, ignore_errors=True)


def test_masking_prose_keeps_the_rest_readable():
    text = "cannot connect to postgresql://app@db.example:5432/app: failed; ask admin@example.com"
    assert config.mask_secrets(text) == text
    assert config.mask_secrets("bad: postgresql://app:Pq1@db/x and password=Pq2 end") == \
        "bad: postgresql://app:***@db/x and password=*** end"


def test_unexpected_argument_echoed_by_click_is_masked():
    out = run_dbtool("status", "postgresql://app:Ux1Secret@db.example/app")
    assert out.returncode == EXIT_USAGE
    assert "Ux1Secret" not in out.stderr and "unexpected extra argument" in out.stderr


# -- 19: durations and numbers are checked when the command line is parsed ---------------------

@pytest.mark.parametrize("args", [
    ("migrate", "--lock-timeout", "nan"), ("migrate", "--lock-timeout", "inf"), ("migrate", "--lock-timeout", "-1"),
    ("migrate", "--lock-timeout", "1e999"), ("rollback", "--lock-timeout", "NaN"), ("reset", "-m", "crm",
                                                                                   "--lock-timeout", "-inf"),
    ("wait", "--timeout", "nan"), ("wait", "--timeout", "-0.5"), ("wait", "--timeout", "soon"),
    ("migrate", "--ddl-lock-timeout", "10 s"), ("migrate", "--ddl-lock-timeout", "10S"),
    ("migrate", "--ddl-lock-timeout", "-5s"), ("migrate", "--ddl-lock-timeout", "5 min"),
    ("migrate", "--ddl-lock-timeout", "99999999d"), ("migrate", "--ddl-lock-timeout", "nan"),
    ("migrate", "--statement-timeout", "1h30min"), ("migrate", "--statement-timeout", ""),
    ("migrate", "--statement-timeout", "100us"),
    ("analytics", "sync", "--overlap-minutes", "nan"), ("analytics", "sync", "--wait", "inf"),
    ("analytics", "sync", "--overlap-minutes", "1e300"),
])
def test_bad_duration_or_number_is_refused_at_parse_time(args):
    # An unreachable database: a value that got past parsing would be reported as exit 3, not 2.
    out = run_dbtool(*args, "--database-url", "postgresql://u@127.0.0.1:1/db", timeout=30)
    assert out.returncode == EXIT_USAGE, out.stderr
    assert "Invalid value for" in one_line_error(out)
    assert "database:" not in out.stderr  # refused before anything connected


def test_number_and_duration_types():
    assert SECONDS.convert("2.5", None, None) == 2.5 and SECONDS.convert(0, None, None) == 0
    for bad in ("nan", "inf", "-1", "x", float("nan")):
        with pytest.raises(click.BadParameter):
            SECONDS.convert(bad, None, None)
    with pytest.raises(click.BadParameter, match="more than 0"):
        Number("seconds", above=True).convert("0", None, None)
    with pytest.raises(click.BadParameter, match="at most 10 minutes"):
        Number("minutes", maximum=10).convert("11", None, None)
    assert Duration().convert("1.5s", None, None) == "1.5s"


ACCEPTED = ["0", "500", "1.5s", "1000us", "10min", "1h", "1d", "2147483647ms", "24d"]
REFUSED = ["10 s", "10S", "s", "1e3ms", "-1s", "1h30min", " 5s", "99999999d", "25d", "100us", "0.4ms", "5sec"]


def test_accepted_durations_are_exactly_those_the_server_takes(db_url):
    assert all(duration_problem(v) is None for v in ACCEPTED)
    assert all(duration_problem(v) for v in REFUSED)
    with psycopg.connect(db_url) as conn:
        for value in ACCEPTED:
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (value,))
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (value,))


def test_fractional_duration_reaches_the_server(db_url):
    out = run_dbtool("migrate", "--ddl-lock-timeout", "1.5s", "--statement-timeout", "90min", "--lock-timeout", "0.5",
                     "--database-url", db_url)
    assert out.returncode == 0, out.stderr


# -- 22: directives in sql/ files ---------------------------------------------------------------

@pytest.mark.parametrize("text,line,why", [
    ("-- lock_timeout: 10 s\nSELECT 1;\n", 1, "give a duration"),
    ("-- header\n\n-- statement_timeout: forever\nSELECT 1;\n", 3, "give a duration"),
    ("-- lock_timeout: 99999999d\nSELECT 1;\n", 1, "give at most"),
    ("-- lock_timeout:\nSELECT 1;\n", 1, "give a duration"),
    ("-- lock_timeout: 30s -- long table\nSELECT 1;\n", 1, "give a duration"),
    ("-- transactional: no\nSELECT 1;\n", 1, "give true or false"),
    ("-- transactional: flase\nSELECT 1;\n", 1, "give true or false"),
    ("-- lock-timeout: 5s\nSELECT 1;\n", 1, "write '-- lock_timeout:'"),
    ("-- Statement Timeout: 5s\nSELECT 1;\n", 1, "write '-- statement_timeout:'"),
    ("-- lock_timeout: 5s\n-- lock_timeout: 6s\nSELECT 1;\n", 2, "already given above"),
    ("SELECT 1;\n-- lock_timeout: 5s\nSELECT 2;\n", 2, "above the first statement"),
])
def test_bad_directive_is_refused_naming_file_and_line(tmp_path, text, line, why):
    path = tmp_path / "140_x.sql"
    path.write_text(text)
    with pytest.raises(MigrationError) as refused:
        load_file(path, "crm_0002_x")
    message = str(refused.value)
    assert message.startswith(f"{path}:{line}: bad directive '-- "), message
    assert why in message and "\n" not in message


@pytest.mark.parametrize("text,directives", [
    ("-- lock_timeout: 1.5s\n-- statement_timeout: 1h\nSELECT 1;\n", {"lock_timeout": "1.5s",
                                                                    "statement_timeout": "1h"}),
    ("-- Source: a seed\n\n--transactional:false\nCREATE INDEX CONCURRENTLY x ON crm.t (a);\n",
     {"transactional": "false"}),
    ("-- LOCK_TIMEOUT: 0\nSELECT 1;\n", {"lock_timeout": "0"}),
    ("-- Lock timeouts are set per file.\nSELECT 1;\n", {}),  # prose, not a directive
])
def test_good_directives_are_read(tmp_path, text, directives):
    path = tmp_path / "140_x.sql"
    path.write_text(text)
    assert load_file(path, "crm_0002_x").directives == directives


def test_migrate_refuses_a_bad_directive_in_one_line_and_changes_nothing(db_url, tmp_path):
    root = copy_project(tmp_path)
    add_migration(root, "crm", "crm_0002_alter", {
        "140_alter.sql": "-- Adds a column.\n-- transactional: no\n"
                         "ALTER TABLE crm.product ADD COLUMN IF NOT EXISTS vintage int;\n"})
    before = catalog_of(db_url, ["crm"])
    for command in (("migrate",), ("migrate", "--dry-run")):
        out = run_dbtool(*command, "--database-url", db_url, env={"DBTOOL_ROOT": str(root)})
        assert out.returncode == 1, out.stderr
        assert one_line_error(out) == ("dbtool: sql/crm/140_alter.sql:2: bad directive '-- transactional: no': "
                                       "give true or false (migration crm_0002_alter; nothing was applied)")
    assert catalog_of(db_url, ["crm"]) == before


# -- 21: a connect failure says what it was -----------------------------------------------------

def test_a_missing_role_is_the_server_refusing_not_unreachable(pg_cluster, empty_url):
    url = empty_url.replace("postgresql://postgres@", "postgresql://ghost_role@")
    out = run_dbtool("status", "--database-url", url)
    assert out.returncode == EXIT_CONNECT
    line = one_line_error(out)
    assert line.endswith('the server refused this role: role "ghost_role" does not exist'), line
    assert "unreachable" not in line


@pytest.mark.parametrize("libpq,said", [
    ('connection to server on socket "/s/.s.PGSQL.5432" failed: FATAL:  role "ghost" does not exist',
     'the server refused this role: role "ghost" does not exist'),
    ('connection to server at "db" (10.0.0.1), port 5432 failed: FATAL:  too many connections for role "app"',
     "the server refused this role: FATAL: too many connections for role"),
    ('connection to server on socket "/s/.s.PGSQL.5432" failed: FATAL:  sorry, too many clients already',
     "the server refused the connection: FATAL: sorry, too many clients already"),
    ('connection to server on socket "/s/.s.PGSQL.5432" failed: FATAL:  the database system is starting up',
     "the server refused the connection: FATAL: the database system is starting up"),
    ('connection to server at "db" (10.0.0.1), port 5432 failed: FATAL:  database "x" is not currently '
     "accepting connections", "the server refused the connection: FATAL: database"),
    ('connection to server on socket "/s/.s.PGSQL.5432" failed: FATAL:  Peer authentication failed for user "app"',
     'authentication failed: FATAL: Peer authentication failed for user "app"'),
    ('connection to server on socket "/s/.s.PGSQL.5432" failed: FATAL:  invalid value for parameter '
     '"lock_timeout": "10 s"', 'the server refused a setting: FATAL: invalid value for parameter "lock_timeout"'),
    ('connection to server on socket "/s/.s.PGSQL.5432" failed: Permission denied',
     "this OS user may not reach the server's socket (permission denied)"),
    ('connection to server at "db" (10.0.0.1), port 5432 failed: server does not support SSL, but SSL was required',
     "the server refused the connection (SSL): server does not support SSL, but SSL was required"),
    ('connection to server at "db" (10.0.0.1), port 5432 failed: Connection refused',
     "server unreachable: Connection refused"),
])
def test_connect_failures_are_named_for_what_they_are(libpq, said):
    line = describe_connect_error("postgresql://app@db/x", psycopg.OperationalError(libpq))
    assert said in line, line


def test_a_missing_role_exits_3_from_the_library(empty_url):
    target = Target(empty_url.replace("postgresql://postgres@", "postgresql://ghost_role@"), "t")
    with pytest.raises(ConnectError) as refused:
        target.connect().close()
    assert refused.value.exit_code == EXIT_CONNECT and "refused this role" in str(refused.value)
