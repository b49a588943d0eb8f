"""Where the database is, and how to say so without ever printing a password.

Order: --database-url, then DATABASE_URL, then libpq's PG* variables; with none of
them set, the local dev cluster under var/ (started on demand).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from . import settings
from .errors import ConnectError, UsageError, first_line  # noqa: F401 (re-exported)

LIBPQ_VARS = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE", "PGPASSWORD")
_DRIVER_SUFFIX = re.compile(r"^(postgres(?:ql)?)\+\w+://")


def normalise_url(url: str) -> str:
    """Accept SQLAlchemy/yoyo style 'postgresql+psycopg://' as well as plain libpq URLs."""
    return _DRIVER_SUFFIX.sub(r"\1://", url.strip())


@dataclass(frozen=True)
class Target:
    conninfo: str
    source: str

    @property
    def params(self) -> dict:
        return conninfo_to_dict(self.conninfo)

    @property
    def password(self) -> str | None:
        from_env = os.environ.get("PGPASSWORD") if self.source == "PG* environment" else None
        return self.params.get("password") or from_env

    def display(self) -> str:
        """A URI psql accepts as it is, never with the password.

        A Unix socket folder goes in the query string (postgresql:///db?host=/run/x&port=5432),
        as libpq wants it; names are percent-encoded.
        """
        p = self.params
        user = p.get("user") or os.environ.get("PGUSER") or ""
        host = p.get("host") or os.environ.get("PGHOST") or "localhost"
        port = p.get("port") or os.environ.get("PGPORT") or "5432"
        db = p.get("dbname") or os.environ.get("PGDATABASE") or user
        who = f"{quote(user, safe='')}@" if user else ""
        if host.startswith("/") or "," in host:  # socket folder(s), or several hosts
            return f"postgresql://{who}/{quote(db, safe='')}?host={quote(host, safe='/,')}&port={quote(port, safe=',')}"
        netloc = f"[{host}]" if ":" in host else host
        return f"postgresql://{who}{netloc}:{port}/{quote(db, safe='')}"

    def mask(self, text: str) -> str:
        """Remove the password from any text that might echo it (URLs, libpq messages)."""
        try:
            pw = self.password
        except psycopg.ProgrammingError:  # unparsable conninfo: the URL pattern below still applies
            pw = None
        if pw:
            text = text.replace(pw, "***")
        return mask_secrets(text)

    def with_params(self, **params) -> "Target":
        return Target(make_conninfo(self.conninfo, **params), self.source)

    def connect(self, *, application_name: str = "dbtool", autocommit: bool = False, **kw) -> psycopg.Connection:
        params = {"application_name": application_name, **kw}
        if "connect_timeout" not in params and "connect_timeout" not in self.params:
            params["connect_timeout"] = default_connect_timeout()
        try:
            return psycopg.connect(self.conninfo, autocommit=autocommit, **params)
        except psycopg.OperationalError as exc:
            raise ConnectError(self.mask(describe_connect_error(self.display(), exc))) from None
        except psycopg.ProgrammingError as exc:  # malformed conninfo
            raise UsageError(self.mask(f"invalid database URL: {first_line(exc)}")) from None


def mask_secrets(text: str) -> str:
    """Passwords in URLs (user:pw@) and in conninfo strings (password=...) become ***."""
    text = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text)
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def default_connect_timeout() -> int:
    return int(settings.get("DBTOOL_CONNECT_TIMEOUT"))


def describe_connect_error(where: str, exc: BaseException) -> str:
    """One line saying which of the connect failures this was."""
    text = " ".join(str(exc).split())
    low = text.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        why = "authentication failed (wrong user or password)"
    elif m := re.search(r'database "[^"]+" does not exist', text, re.I):
        why = "database " + m.group(0)[9:]
    elif "permission denied for database" in low or "not permitted to log in" in low:
        why = "the server refused this role: " + _tail(text)
    elif "no pg_hba.conf entry" in low:
        why = "the server refused the connection (pg_hba.conf): " + _tail(text)
    elif "timeout expired" in low:
        why = "timed out waiting for the server"
    elif "could not translate host name" in low:
        why = "unknown host: " + _tail(text)
    else:
        why = "server unreachable: " + _tail(text)
    return f"cannot connect to {where}: {why}"


def _tail(text: str) -> str:
    # libpq prefixes "connection failed: connection to server at ... failed:"; keep the reason.
    return text.rsplit("failed:", 1)[-1].strip() or text


def parsed(url: str, source: str) -> Target:
    """A Target for a URL or conninfo string, refused in one masked line when libpq cannot parse it."""
    target = Target(normalise_url(url), source)
    try:
        target.params
    except psycopg.ProgrammingError as exc:
        raise UsageError(target.mask(f"invalid database URL from {source}: {first_line(exc)}")) from None
    return target


def resolve(database_url: str | None = None, *, start_dev: bool = True) -> Target:
    if database_url:
        return parsed(database_url, "--database-url")
    env_url = os.environ.get("DATABASE_URL")
    if env_url:
        return parsed(env_url, "DATABASE_URL")
    if any(os.environ.get(v) for v in LIBPQ_VARS):
        return Target("", "PG* environment")
    from . import devdb

    cluster = devdb.default_cluster()
    if start_dev:
        cluster.ensure_running()
    return Target(cluster.conninfo(), "local dev cluster")
