"""Which databases a fleet run acts on: a targets file, or the rows of a registry database.

A targets file (`--targets FILE`, `DBTOOL_TARGETS`, `-` for stdin) names one database per line:

    # comments and blank lines are skipped
    eu-1      postgresql://app@db-eu-1.example:5432/app      # a label, then a URL
    postgresql://app@db-us-1.example/app                     # no label: the URL (never its password) is the label
    eu-2      service=eu2                                    # a libpq service (pg_service.conf)
    eu-3      host=/run/postgresql dbname=app user=app       # libpq key=value settings ('quoted' values allowed)

A label is one word (letters, digits and _ . : / + -, at most 64 characters) before the database; a URL has a
scheme (postgresql:// or postgres://), key=value settings contain '='. A `#` starting a word, outside quotes,
starts a comment. A bare word is refused (write `service=NAME` for a service): it would be ambiguous with a label.
Labels and databases must be unique. A bad line is refused as FILE:LINE in one line (exit 2), echoing nothing of
the line: it may hold a password.

A registry (`--targets-query SQL`) returns rows of (label, url) or (url); NULL labels take the default label.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..config import Target, ambiguous_url, mask_secrets, normalise_url
from ..errors import UsageError, first_line

LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/+-]{0,63}")
LABEL_RULE = "a label is one word of letters, digits and _ . : / + - (at most 64 characters)"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_POSTGRES_URL = re.compile(r"postgres(?:ql)?(?:\+\w+)?://", re.I)
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\s*=")


@dataclass(frozen=True)
class FleetTarget:
    label: str
    target: Target
    where: str   # the database as printed: a URI psql accepts, or service=NAME; never a password
    origin: str  # where it was named: "targets.txt:3", "--targets-query row 3"

    def mask(self, text: str) -> str:
        return mask_secrets(self.target.mask(text))


def _tokens(line: str, where: str) -> list[str]:
    """The words of a line: white space separates them, except inside '...' (libpq's quoting, backslash escapes);
    a word starting with # (outside quotes) ends the line."""
    words: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        if line[i] == "#":
            break
        start, quoted = i, False
        while i < n and (quoted or not line[i].isspace()):
            if line[i] == "\\" and quoted:
                i += 2
                continue
            if line[i] == "'":
                quoted = not quoted
            i += 1
        if quoted:
            raise UsageError(f"{where}: a quoted value is never closed (a ' is missing)")
        words.append(line[start:min(i, n)])
    return words


def _where(target: Target) -> str:
    params = target.params
    if params.get("service"):
        rest = {k: v for k, v in params.items() if k in ("dbname", "user", "host", "port")}
        return " ".join([f"service={params['service']}", *(f"{k}={v}" for k, v in rest.items())])
    return target.display()


def target_of(conninfo: str, label: str | None, origin: str) -> FleetTarget:
    """One database: a URL or key=value settings, checked as --database-url is (a problem is one line, masked)."""
    text = conninfo.strip()
    if _URL.match(text) and not _POSTGRES_URL.match(text):
        raise UsageError(f"{origin}: not a PostgreSQL URL (give postgresql://..., or key=value settings)")
    target = Target(normalise_url(text), origin)
    if problem := ambiguous_url(target.conninfo):
        raise UsageError(f"{origin}: invalid database URL: {problem}")
    try:
        target.params
    except Exception as exc:  # psycopg.ProgrammingError: libpq cannot parse it
        raise UsageError(mask_secrets(target.mask(f"{origin}: invalid database URL: {first_line(exc)}"))) from None
    if label is not None and not LABEL.fullmatch(label):
        raise UsageError(f"{origin}: {LABEL_RULE}")
    where = _where(target)
    return FleetTarget(label or where, target, where, origin)


def parse_line(line: str, origin: str) -> FleetTarget | None:
    """The database a line of a targets file names; None for a blank or comment line."""
    words = _tokens(line, origin)
    if not words:
        return None
    label = None
    if not _URL.match(words[0]) and not _KEY.match(words[0]):
        label, words = words[0], words[1:]
        if not LABEL.fullmatch(label):
            raise UsageError(f"{origin}: {LABEL_RULE}, before a URL or key=value settings")
        if not words:
            raise UsageError(f"{origin}: one word and no database: give `LABEL URL`, `URL` or `LABEL service=NAME` "
                             "(a libpq service is written service=NAME)")
    if _URL.match(words[0]):
        if len(words) > 1:
            raise UsageError(f"{origin}: more than a URL after the label (a URL holds no spaces: percent-encode "
                             "them as %20; a comment starts with #)")
        return target_of(words[0], label, origin)
    bad = [w for w in words if not _KEY.match(w)]
    if bad:
        raise UsageError(f"{origin}: give one label, then a URL or key=value settings (found a word that is neither "
                         "after the first)")
    return target_of(" ".join(words), label, origin)


def check_unique(targets: list[FleetTarget]) -> list[FleetTarget]:
    labels: dict[str, FleetTarget] = {}
    places: dict[str, FleetTarget] = {}
    for t in targets:
        if t.label in labels:
            raise UsageError(f"{t.origin}: label {t.label} is already used ({labels[t.label].origin})")
        if t.where in places:
            raise UsageError(f"{t.origin}: the same database as {places[t.where].origin} ({t.where}): each "
                             "database once (its runs would wait for each other's lock)")
        labels[t.label] = places[t.where] = t
    return targets


def parse_text(text: str, name: str) -> list[FleetTarget]:
    targets = []
    for number, line in enumerate(text.splitlines(), 1):
        found = parse_line(line, f"{name}:{number}")
        if found is not None:
            targets.append(found)
    if not targets:
        raise UsageError(f"{name}: names no database (one URL or service=NAME per line)")
    return check_unique(targets)


def read_file(path: Path) -> list[FleetTarget]:
    """The targets a file names (`-`: standard input)."""
    name = str(path)
    if name == "-":
        return parse_text(sys.stdin.read(), "<stdin>")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"--targets {name}: no such file") from None
    except OSError as exc:
        raise UsageError(f"--targets {name}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise UsageError(f"{name}:{line}: not UTF-8 (at byte {exc.start})") from None
    return parse_text(text, name)


def from_registry(registry: Target, query: str, *, statement_timeout: float = 60.0) -> list[FleetTarget]:
    """The rows of `query`, (label, url) or (url), read in a read-only transaction of the registry database."""
    import psycopg

    from ..errors import RefusedError
    from ..lock import application_name

    origin = "--targets-query"
    with registry.connect(application_name=application_name("targets-query")) as conn:
        conn.read_only = True
        conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{int(statement_timeout * 1000)}ms",))
        conn.commit()
        try:
            cur = conn.execute(query)
            rows = cur.fetchall() if cur.description else None
        except psycopg.errors.InsufficientPrivilege as exc:
            raise RefusedError(registry.mask(f"{origin}: the server refused this role: {first_line(exc)}")) from None
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise UsageError(f"{origin}: it runs in a read-only transaction: give a query that only reads "
                             f"({first_line(exc)})") from None
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            raise UsageError(registry.mask(f"{origin} failed: {first_line(exc)}")) from None
        width = len(cur.description or [])
    if rows is None or width not in (1, 2):
        raise UsageError(f"{origin}: give a query returning rows of (label, url) or (url); it returned "
                         + ("no rows at all (not a SELECT?)" if rows is None else f"{width} columns"))
    targets = []
    for number, row in enumerate(rows, 1):
        label, url = (None, row[0]) if width == 1 else row
        where = f"{origin} row {number}"
        if not isinstance(url, str) or not url.strip():
            raise UsageError(f"{where}: no URL (NULL, empty or not text)")
        if label is not None and not isinstance(label, str):
            raise UsageError(f"{where}: the label is not text")
        label = label.strip() or None if label is not None else None
        targets.append(target_of(url, label, where))
    if not targets:
        raise UsageError(f"{origin}: returned no rows: no database to act on")
    return check_unique(targets)
