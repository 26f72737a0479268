"""Is the worker that claimed this work still alive? A PostgreSQL session lock answers it.

Background work that takes a claim in the database (a segment build's lease, a refresh drain's
claim) also holds a session-level advisory lock named after that claim for as long as it runs
(:func:`holding`). The lock belongs to the worker's database session: when the worker dies
(SIGKILL, OOM, a lost host) PostgreSQL ends the session and the lock goes with it, within
``CLIENT_CHECK_INTERVAL_MS`` even when the session was in the middle of a long statement
(``client_connection_check_interval``). The recovery sweeps then treat a claim whose lock is
free as abandoned (:func:`sql_free`) and hand its work to another worker at once, instead of
waiting for the claim's time lease. The lease stays as the bound for a worker that is alive but
stuck, and as the only rule on SQLite (the embedded mode runs its work in-process).

Locks are keyed by text (``segment-build:42``), hashed to PostgreSQL's two-int form
``(LOCK_CLASS, hashtext(key) & 0x7fffffff)`` both here and in the sweeps' SQL; a hash collision
makes a dead claim look alive, so it falls back to its lease. A connection pooler in
transaction mode (pgbouncer) breaks session locks: run workers on direct connections.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError, connection

# The first key of every lock taken here ("EPL"), so no other advisory lock is mistaken for one.
LOCK_CLASS = 0x45504C
# How often PostgreSQL checks, during a statement, that the worker holding a lock is still there.
CLIENT_CHECK_INTERVAL_MS = 2000
_KEY = "(hashtext(%s) & 2147483647)"


@contextmanager
def holding(key: str) -> Iterator[bool]:
    """Hold the session lock named ``key`` while the block runs; yields False (and holds nothing)
    when another live session holds it. Always True on SQLite, where nothing is locked."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT set_config('client_connection_check_interval', %s, false), pg_try_advisory_lock(%s, {_KEY})",
            [str(CLIENT_CHECK_INTERVAL_MS), LOCK_CLASS, key],
        )
        row = cursor.fetchone()
    taken = bool(row and row[1])
    try:
        yield taken
    finally:
        if taken:
            try:
                with connection.cursor() as cursor:
                    cursor.execute(f"SELECT pg_advisory_unlock(%s, {_KEY})", [LOCK_CLASS, key])
            except DatabaseError:
                connection.close()  # a session that failed under us: closing it frees its locks


def sql_free(key_sql: str) -> str:
    """SQL that is true when no session of this database holds the lock named by the SQL
    expression ``key_sql`` (e.g. ``'segment-build:' || s.id``). PostgreSQL only."""
    return (
        "NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        f"AND l.classid = {LOCK_CLASS} AND l.objid = (hashtext({key_sql}) & 2147483647)::oid AND l.objsubid = 2)"
    )
