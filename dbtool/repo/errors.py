"""Expected failures of repository functions: one clear line each, no traceback in the CLI."""

from ..errors import DbtoolError


class RepoError(DbtoolError):
    """A repository call was refused; the database was left as it was."""


class InvalidValue(RepoError):
    """A value PostgreSQL cannot store (e.g. a NUL byte in text), or an unknown column."""


class IllegalTransition(RepoError):
    """A status change the life cycle does not allow (or the row was not in a state that allows it)."""


class NotFound(RepoError):
    """The row a call needs does not exist."""
