"""Expected failures: each carries the exit code the CLI documents.

0 clean, 1 drift or a failed check, 2 usage error, 3 cannot connect / refused.
"""

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an exception's message: what a one-line error shows."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else exc.__class__.__name__


class DbtoolError(Exception):
    """An expected failure, printed as one line without a traceback.

    Give `sqlstate` when the failure is the database's: a refused privilege (42501)
    then exits 3 like any other refusal, whatever the subclass.
    """

    exit_code = EXIT_FINDINGS

    def __init__(self, message: str = "", *, sqlstate: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate
        if sqlstate == "42501":  # insufficient_privilege
            self.exit_code = EXIT_CONNECT


class UsageError(DbtoolError):
    exit_code = EXIT_USAGE


class ConnectError(DbtoolError):
    """The server cannot be reached, or refused us (auth, missing db, privileges)."""

    exit_code = EXIT_CONNECT


class RefusedError(ConnectError):
    """Connected, but the server refused what we need (privileges)."""


class MigrationError(DbtoolError):
    """A migration failed; the database was left as it was."""
