"""chatbot.users: WhatsApp users, their consent (LGPD) and the erasure of their data on request.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
Upserts conflict on phone_number.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import psycopg

from .._table import Table, utcnow
from ..errors import NotFound
from ..rows_generated import Users
from . import personal_data

T = Table("chatbot", "users", Users)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)


def grant_consent(conn: psycopg.Connection, *, id: int, version: str, now: dt.datetime | None = None) -> Users:
    """The user accepted the privacy terms `version` at `now`."""
    return _found(T.update(conn, id=id, consent=True, consent_at=now or utcnow(), consent_version=version), id)


def withdraw_consent(conn: psycopg.Connection, *, id: int, now: dt.datetime | None = None) -> Users:
    """The user withdrew consent at `now` (consent_at records when; consent_version the terms withdrawn).

    The next `dbtool analytics sync` removes the user's rows from the DuckDB analytics store, and copies
    nothing of theirs while consent stays withdrawn (dbtool.analytics.sync).
    """
    return _found(T.update(conn, id=id, consent=False, consent_at=now or utcnow()), id)


def _found(row: Users | None, id: int) -> Users:
    if row is None:
        raise NotFound(f"chatbot.users: no user with id={id}")
    return row


class ErasedUser(Protocol):
    """What an eraser is told about the user: a Users row, or _Gone when PostgreSQL no longer has one."""

    @property
    def id(self) -> int | None: ...

    @property
    def phone_number(self) -> str: ...


@dataclass(frozen=True)
class _Gone:
    """A user already erased from PostgreSQL: only the phone number is left to erase elsewhere by."""

    phone_number: str
    id: None = None


# An eraser removes the user's data elsewhere (e.g. the DuckDB analytics copy) and returns counts per table.
# It runs inside the PostgreSQL transaction, after the rows here are deleted: if it raises, nothing is erased.
Eraser = Callable[[psycopg.Connection, ErasedUser], Mapping[str, int]]


def erase(conn: psycopg.Connection, *, id: int | None = None, phone_number: str | None = None,
          erasers: Sequence[Eraser] = ()) -> dict[str, int]:
    """Delete every row of one user (by id or phone number); {table: rows deleted}. All or nothing.

    Which tables: chatbot.users and every table whose rows go with a user's through ON DELETE CASCADE
    foreign keys, derived from the committed snapshot (personal_data.erasure_plan, which also refuses a
    table tagged [personal data] that this would not reach).
    """
    with conn.transaction():
        user = T.get(conn, id=id) if id is not None else T.get(conn, phone_number=phone_number)
        if user is None and phone_number is not None and erasers:
            # Already gone from PostgreSQL (erased earlier without the analytics side): still erase the rest.
            gone = _Gone(phone_number)
            return {table: n for eraser in erasers for table, n in eraser(conn, gone).items()}
        if user is None:
            raise NotFound(f"chatbot.users: no user {id if id is not None else phone_number}")
        # The tables come from the [personal data] tags and the foreign keys of the snapshot (personal_data),
        # children first, so each count is what was deleted from that table (not hidden in a cascade).
        counts = personal_data.erasure_plan().delete(conn, [user.id])
        for eraser in erasers:
            for table, n in eraser(conn, user).items():
                counts[table] = counts.get(table, 0) + n
    return counts
