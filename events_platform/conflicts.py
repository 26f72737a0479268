"""Writes that lost a race with a concurrent write: a clear, retryable answer, never a 500.

Writes that touch the same rows serialise on row locks (contacts: ``contacts/services.py``), so
most races simply wait. What is left - PostgreSQL breaking a deadlock, a foreign key whose row a
concurrent erasure removed just before our commit, a write that kept losing its retry rounds -
rolls the whole write back (each write is one transaction) and raises here. The API answers it
``409 Conflict`` with ``Retry-After: 1`` in its usual error format: the same request, sent
again, lands after the other write (a contact erased meanwhile is created anew).
"""

from __future__ import annotations

from django.db import DatabaseError, IntegrityError, OperationalError, transaction
from django.db.models import Model

# SQLSTATEs of a write that lost a race: serialization_failure, deadlock_detected,
# lock_not_available, foreign_key_violation (the referenced row was erased concurrently).
RACE_SQLSTATES = {"40001", "40P01", "55P03"}
FOREIGN_KEY_VIOLATION = "23503"
RETRY_AFTER_SECONDS = 1
MESSAGE = (
    "This write conflicted with a concurrent write to the same contact (for example its erasure) "
    "and was rolled back: nothing was written. Send the same request again."
)


class WriteConflict(DatabaseError):
    """A write gave up after losing the same race several times; nothing of it was written."""


def _sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__ or exc.__context__
    return getattr(cause, "sqlstate", None) or getattr(exc, "sqlstate", None)


def is_write_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that lost a race (retrying it is the whole fix)."""
    if isinstance(exc, WriteConflict):
        return True
    state = _sqlstate(exc)
    if isinstance(exc, OperationalError):
        return state in RACE_SQLSTATES
    if isinstance(exc, IntegrityError):
        return state == FOREIGN_KEY_VIOLATION
    return False


def insert_unique(instance: Model, *, taken: Exception) -> None:
    """Insert ``instance``, a new row under a unique constraint (a workspace's ids): the database
    checks it, seeing concurrent inserts too, where a read-side check would race them; a row that
    holds the id already (committed meanwhile) raises ``taken`` and nothing is written."""
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        raise taken from exc
