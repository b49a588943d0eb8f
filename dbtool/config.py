"""Where the database is, and how to say so without ever printing a password.

Order: --database-url, then DATABASE_URL, then libpq's PG* variables; with none of
them set, the local dev cluster under var/ (started on demand).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

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
        """Remove the password from any text that might echo it (URLs, libpq messages).

        What is masked never depends on libpq parsing the input: every substring a tolerant scan
        of the input finds (password_spans) goes, and the parsed password too, in each form.
        """
        found = password_spans(self.conninfo)
        try:
            secrets = [self.password, self.params.get("sslpassword")]
        except psycopg.ProgrammingError:  # unparsable conninfo: the scan above still applies
            secrets = []
        for secret in secrets:
            if secret:
                found |= _forms(secret)
        return mask_secrets(_replace_all(text, found))

    def with_params(self, **params) -> "Target":
        return Target(make_conninfo(self.conninfo, **params), self.source)

    def connect(self, *, application_name: str = "dbtool", autocommit: bool = False, **kw) -> psycopg.Connection:
        params = {"application_name": application_name, **kw}
        if "connect_timeout" not in params and "connect_timeout" not in self.params:
            params["connect_timeout"] = default_connect_timeout()
        try:
            return psycopg.connect(self.conninfo, autocommit=autocommit, **params)
        except (psycopg.OperationalError, UnicodeError) as exc:  # UnicodeError: a host name IDNA refuses (db..x)
            raise ConnectError(self.mask(describe_connect_error(self.display(), exc))) from None
        except psycopg.ProgrammingError as exc:  # malformed conninfo
            raise UsageError(self.mask(f"invalid database URL: {first_line(exc)}")) from None


def mask_secrets(text: str) -> str:
    """Passwords in URLs (user:pw@) and in conninfo strings (password=...) of any text become ***."""
    text = _replace_all(text, password_spans(text, prose=True))
    text = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text)
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^:@/?\s]*:")
_PASSWORD_KEY = re.compile(r"password\s*=\s*", re.I)
_NEXT_KEY = re.compile(r"\s+[A-Za-z_]\w*\s*=")


def password_spans(text: str, *, prose: bool = False) -> set[str]:
    """Every substring of `text` that may be a password, found without parsing it as libpq would.

    In a URL, what follows `scheme://user:` up to each later '@' (an unencoded '@', ':' or '/'
    may belong to the password, so the last '@' before the host is as likely as the first); after
    `password=`, the quoted value (escaped and not) or the words up to the next `key=`, each word
    alone too (libpq echoes the word it choked on). With prose=True (a message, not the input), a
    URL's password and an unquoted value stop at white space. Each with its percent-decoded and
    percent-encoded forms.
    """
    raw: set[str] = set()
    for m in _URL_PASSWORD.finditer(text):
        rest = text[m.end():]
        if prose:
            rest = re.split(r"\s", rest, maxsplit=1)[0]
        raw.update(rest[:at] for at in (i for i, ch in enumerate(rest) if ch == "@"))
    for m in _PASSWORD_KEY.finditer(text):
        rest = text[m.end():]
        if rest.startswith("'"):
            end = re.match(r"'((?:[^'\\]|\\.)*)'?", rest)
            quoted = end.group(1) if end else rest[1:]
            raw.update((quoted, re.sub(r"\\(.)", r"\1", quoted)))
            continue
        value = re.split(r"\s", rest, maxsplit=1)[0] if prose else _NEXT_KEY.split(rest, maxsplit=1)[0].rstrip()
        raw.update((value, value.split("&", 1)[0], *value.split()))
    found: set[str] = set()
    for span in raw:
        if span:
            found |= _forms(span)
    return found


def _forms(secret: str) -> set[str]:
    """A secret as given, percent-decoded and percent-encoded (as a URL would show it)."""
    return {s for s in (secret, unquote(secret), quote(secret, safe=""), quote(secret)) if s}


def _replace_all(text: str, secrets: set[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):  # longest first: a shorter one may be inside it
        text = text.replace(secret, "***")
    return text


def ambiguous_url(url: str) -> str | None:
    """Why libpq would split this URL elsewhere than its writer meant (None when it would not).

    libpq ends the user info at the first '@' (or sees none when a '/' comes first): an
    unencoded '@' or '/' in a password then turns the rest of it into the host, port or
    database name, which are printed, looked up in DNS and connected to.
    """
    m = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", url)
    if not m:
        return None
    rest = url[m.end():]
    at, slash = rest.find("@"), rest.find("/")
    if at != -1 and (slash == -1 or at < slash):  # the user info libpq takes
        rest = rest[at + 1:]
    if "@" in rest.split("=", 1)[0]:
        return ("an '@' after the user info (a password or user name holding '@' or '/'?): "
                "percent-encode them ('@' as %40, '/' as %2F, ':' as %3A, '%' as %25)")
    return None


def default_connect_timeout() -> int:
    return int(settings.get("DBTOOL_CONNECT_TIMEOUT"))


def describe_connect_error(where: str, exc: BaseException) -> str:
    """One line saying which of the connect failures this was."""
    text = " ".join(str(exc).split())
    low = text.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        why = "authentication failed (wrong user or password)"
    elif re.search(r"\b(peer|ident|cert|certificate|ldap|radius|pam|gss|sspi)\S* authentication failed", low):
        why = "authentication failed: " + _tail(text)
    elif m := re.search(r'database "[^"]+" does not exist', text, re.I):
        why = "database " + m.group(0)[9:]
    elif m := re.search(r'role "[^"]*" does not exist', text, re.I):
        why = "the server refused this role: " + m.group(0)
    elif ("permission denied for database" in low or "not permitted to log in" in low
          or "too many connections for role" in low):
        why = "the server refused this role: " + _tail(text)
    elif ("too many clients" in low or "too many connections" in low or "not currently accepting connections" in low
          or "is starting up" in low or "is shutting down" in low or "not yet accepting connections" in low
          or "in recovery mode" in low or "reserved for" in low):
        why = "the server refused the connection: " + _tail(text)
    elif "ssl" in low and ("not support" in low or "required" in low or "certificate" in low):
        why = "the server refused the connection (SSL): " + _tail(text)
    elif "invalid value for parameter" in low or "unrecognized configuration parameter" in low:
        why = "the server refused a setting: " + _tail(text)
    elif "permission denied" in low and "socket" in low:
        why = "this OS user may not reach the server's socket (permission denied): " + _tail(text)
    elif "no pg_hba.conf entry" in low:
        why = "the server refused the connection (pg_hba.conf): " + _tail(text)
    elif "timeout expired" in low:
        why = "timed out waiting for the server"
    elif "could not translate host name" in low or "failed to resolve host" in low:
        why = "unknown host: " + _tail(text)
    elif isinstance(exc, UnicodeError):  # Python's resolver refused the name before asking DNS
        why = "unknown host: not a valid host name (an empty label, as in db..example.com, or one over 63 characters)"
    else:
        why = "server unreachable: " + _tail(text)
    return f"cannot connect to {where}: {why}"


def _tail(text: str) -> str:
    # libpq prefixes "connection failed: connection to server at ... failed:"; keep the reason.
    return text.rsplit("failed:", 1)[-1].strip() or text


def parsed(url: str, source: str) -> Target:
    """A Target for a URL or conninfo string, refused in one masked line when libpq cannot parse it."""
    target = Target(normalise_url(url), source)
    if problem := ambiguous_url(target.conninfo):  # first: libpq's own complaint would echo a piece of it
        raise UsageError(f"invalid database URL from {source}: {problem}")  # echoes nothing of the URL
    try:
        target.params
    except psycopg.ProgrammingError as exc:
        raise UsageError(target.mask(f"invalid database URL from {source}: {first_line(exc)}")) from None
    return target


def resolve(database_url: str | None = None, *, start_dev: bool = True) -> Target:
    # An empty value given explicitly is an unset variable upstream (`--database-url "$PROD_URL"`), not
    # a request for the next source: falling through would migrate, roll back or erase another database.
    if database_url is not None and not database_url.strip():
        raise UsageError("--database-url is empty (an unset variable?): give a URL, or leave the option out")
    if database_url:
        return parsed(database_url, "--database-url")
    env_url = os.environ.get("DATABASE_URL")
    if env_url is not None and not env_url.strip():
        raise UsageError("DATABASE_URL is set but empty (an unset variable?): give a URL, or unset DATABASE_URL")
    if env_url:
        return parsed(env_url, "DATABASE_URL")
    if any(os.environ.get(v) for v in LIBPQ_VARS):
        return Target("", "PG* environment")
    from . import devdb

    cluster = devdb.default_cluster()
    if start_dev:
        cluster.ensure_running()
    return Target(cluster.conninfo(), "local dev cluster")
