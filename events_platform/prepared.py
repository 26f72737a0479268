"""Server-side prepared statements for the statements every ingest request sends.

Django's PostgreSQL backend binds parameters on the client and never prepares (so that
transaction-mode poolers keep working): each execution of a statement is parsed and planned
again, and Python quotes each parameter into its text. The ingest statements are large CTEs
whose text is the same on every request of a batch size, so that work is repeated on every
request: about 0.3 ms of planning each on this machine, plus the quoting of the rows' JSON.

``prepared_cursor()`` is a cursor like ``connection.cursor()``, with the same wrapper: execute
wrappers such as the statement time limit, database-error translation, and the query log that
``CaptureQueriesContext`` reads. Its statements are bound on the server and prepared on their
first execution, and the connection keeps them for the next request. Only these statements are
prepared: the connection's automatic threshold stays out of reach, so every other statement runs
as before. Their plans are generic (``plan_cache_mode=force_generic_plan`` in the connection's
options, settings.py): planned on the first execution, not again at each one; left to choose,
PostgreSQL re-planned the contacts statement every time. The workspace of a key lookup stays an
InitPlan parameter (``workspaces/planning.py``), so a generic plan probes the same indexes as a
custom one (``contacts/tests/test_plans_new_workspace.py``).

Poolers: a pooler in transaction mode must track prepared statements (PgBouncer >= 1.21 with
``max_prepared_statements``). The app's session advisory locks already need direct or
session-pooled connections (README, Operations). ``DATABASE_PREPARED_STATEMENTS=0`` turns this
off. On other databases it is ``connection.cursor()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

# psycopg prepares a statement when asked (prepare=True) or once it ran this many times on the
# connection; Django's None turns both off. This keeps the automatic way out of reach.
_NEVER_BY_ITSELF = 2**31 - 1


@contextmanager
def prepared_cursor() -> Iterator[CursorWrapper]:
    """A cursor whose statements are prepared on the server (PostgreSQL, unless turned off)."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each look through the ``connection`` proxy costs
    if db.vendor != "postgresql" or not settings.DATABASE_PREPARED_STATEMENTS:
        with db.cursor() as cursor:
            yield cursor
        return
    # What connection.cursor() does first: a kept connection's health check, then (re)connect.
    db.close_if_health_check_failed()
    db.ensure_connection()
    raw_connection = db.connection
    if raw_connection.prepare_threshold is None:
        raw_connection.prepare_threshold = _NEVER_BY_ITSELF
    raw = _preparing_cursor_class()(raw_connection)
    # Django's own wrapping of a new cursor (thread check, execute wrappers, query log).
    db.validate_thread_sharing()
    cursor = _LoggedCursor(raw, db) if db.queries_logged else db.make_cursor(raw)
    try:
        yield cursor
    finally:
        raw.close()


class _LoggedCursor(CursorDebugWrapper):
    """Django's query log of such a cursor. Django reads a statement's text from the cursor's
    client-side query (None here: the values travel apart); this logs it with the values in,
    as Django does on a connection configured for server-side binding."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(sql if params is None else self.db.ops.compose_sql(sql, params)):
            return CursorWrapper.execute(self, sql, params)


@cache
def _preparing_cursor_class() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor  # type: ignore[attr-defined]

    class PreparingCursor(ServerBindingCursor):
        """Server-side binding, and every statement prepared."""

        def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, **kwargs: Any) -> Any:
            return super().execute(query, params, prepare=True if prepare is None else prepare, **kwargs)

    return PreparingCursor
