"""Bounds on database work, so that no request or task runs without end.

A process says what it is when it starts: a web process (``wsgi.py``, which gunicorn and
runserver load) or a worker (``celery.py`` for Celery workers, ``run_scheduler`` in the embedded
mode). Its database connections then carry that role's limit on one statement,
``WEB_STATEMENT_TIMEOUT`` or ``WORKER_STATEMENT_TIMEOUT``:

- PostgreSQL: ``SET statement_timeout`` once on each new connection (not per query).
- SQLite has no statement timeout: a progress handler, called every ``SQLITE_PROGRESS_STEPS``
  steps of SQLite's virtual machine, interrupts a statement past its deadline. A statement's
  rows must be read before that deadline too (SQLite computes them while they are read).

A web request is also bounded as a whole: its statements must end within
``WEB_STATEMENT_TIMEOUT`` of the request's start, so several slow statements cannot add up past
gunicorn's worker timeout. Once a request has used more than ``BUDGET_SLACK`` of its budget,
each further statement gets only what is left (on PostgreSQL one ``SET`` before it; a fast
request never pays it), and a statement with nothing left is not sent.

A statement stopped this way raises ``OperationalError``: :func:`is_time_limit` recognises it,
:class:`TimeLimitMiddleware` answers 503 (JSON under ``/api/``, a short page elsewhere) and a
build records :func:`describe_failure` as its ``last_error``. Processes that say nothing
(management commands, the test suite) run unbounded, as migrations and bulk loads need.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

try:
    from psycopg.errors import QueryCanceled
except ImportError:  # pragma: no cover - psycopg is a runtime dependency
    QueryCanceled = None  # type: ignore[assignment,misc]

WEB = "web"
WORKER = "worker"
ROLE_SETTINGS = {WEB: "WEB_STATEMENT_TIMEOUT", WORKER: "WORKER_STATEMENT_TIMEOUT"}

# About 10-50 microseconds of SQLite work between two checks: a statement shorter than that is
# never interrupted, and the check costs about 1% of a long one.
SQLITE_PROGRESS_STEPS = 1000
# A request lowers its statements' timeout only once it has used this much of its budget, so
# that fast requests send no extra SET.
BUDGET_SLACK = 1.0


@dataclass(frozen=True)
class Limit:
    """The longest a statement may run in this process, and the setting that says so."""

    role: str
    seconds: float

    @property
    def setting(self) -> str:
        return ROLE_SETTINGS[self.role]

    def says(self) -> str:
        """``"25 s (WEB_STATEMENT_TIMEOUT)"``."""
        return f"{self.seconds:g} s ({self.setting})"


class TimeLimitExceeded(OperationalError):
    """A request's budget was spent before this statement could be sent."""


_process_limit: Limit | None = None
_request = threading.local()


def process_limit() -> Limit | None:
    """The limit this process binds its statements to (None: unbounded)."""
    return _process_limit


def bind_process(role: str | None) -> Limit | None:
    """Say what this process is: ``WEB``, ``WORKER`` or None (unbounded).

    Connections opened from now on carry the role's limit; the calling thread's open ones take
    it at once. A limit of 0 seconds in the settings means none.
    """
    global _process_limit
    seconds = float(getattr(settings, ROLE_SETTINGS[role])) if role else 0.0
    _process_limit = Limit(role=role, seconds=seconds) if role and seconds > 0 else None
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            _apply(connection)
    return _process_limit


@receiver(connection_created, dispatch_uid="events_platform.time_limits")
def _on_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if _process_limit is not None:
        _apply(connection)


def _apply(connection: BaseDatabaseWrapper) -> None:
    limit = _process_limit
    if _guard in connection.execute_wrappers:
        connection.execute_wrappers.remove(_guard)
    if limit is not None:
        connection.execute_wrappers.insert(0, _guard)
    if connection.vendor == "postgresql":
        connection.connection.execute(
            f"SET statement_timeout = {_milliseconds(limit.seconds)}" if limit else "RESET statement_timeout"
        )
        connection.ep_statement_timeout = limit.seconds if limit else None  # type: ignore[attr-defined]
    elif connection.vendor == "sqlite":
        connection.ep_statement_deadline = None  # type: ignore[attr-defined]
        handler = _sqlite_interrupter(connection) if limit else None
        connection.connection.set_progress_handler(handler, SQLITE_PROGRESS_STEPS)


def _milliseconds(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _sqlite_interrupter(connection: BaseDatabaseWrapper) -> Callable[[], int]:
    def interrupt_past_deadline() -> int:
        deadline = connection.ep_statement_deadline  # type: ignore[attr-defined]
        return 1 if deadline is not None and time.monotonic() > deadline else 0

    return interrupt_past_deadline


def _guard(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """Give this statement what is left of the limit (and of the request's budget)."""
    limit = _process_limit
    if limit is None:
        return execute(sql, params, many, context)
    connection = context["connection"]
    if _is_transaction_control(sql):
        # Never stop BEGIN, COMMIT, ROLLBACK or a savepoint: a BEGIN interrupted half-way (SQLite)
        # or a ROLLBACK refused for a spent budget would leave the connection inside a transaction
        # that Django believes is closed. The statements between them carry the limit.
        if connection.vendor == "sqlite":
            connection.ep_statement_deadline = None
        return execute(sql, params, many, context)
    now = time.monotonic()
    seconds = limit.seconds
    deadline: float | None = getattr(_request, "deadline", None)
    if deadline is not None:
        if deadline <= now:
            raise TimeLimitExceeded(f"the request used up its {limit.says()} budget")
        seconds = min(seconds, deadline - now)
    if connection.vendor == "sqlite":
        connection.ep_statement_deadline = now + seconds
    elif connection.vendor == "postgresql":
        current = getattr(connection, "ep_statement_timeout", None)
        if current is not None and seconds < current - BUDGET_SLACK:
            execute(f"SET statement_timeout = {_milliseconds(seconds)}", None, False, context)
            connection.ep_statement_timeout = seconds
    return execute(sql, params, many, context)


_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "END")


def _is_transaction_control(sql: str) -> bool:
    return sql.lstrip()[:9].upper().startswith(_TRANSACTION_CONTROL)


def _restore_connections() -> None:
    """Put back the process limit on connections whose timeout a slow request lowered."""
    limit = _process_limit
    if limit is None:
        return
    for connection in connections.all(initialized_only=True):
        lowered = getattr(connection, "ep_statement_timeout", None)
        if connection.connection is None or lowered is None or lowered == limit.seconds:
            continue
        try:
            _apply(connection)
        except Exception:
            # A broken connection: the next request opens a fresh one with the full limit.
            if not connection.in_atomic_block:
                connection.close()


def is_time_limit(exc: BaseException) -> bool:
    """Whether ``exc`` is a statement stopped by a time limit (either database)."""
    if isinstance(exc, TimeLimitExceeded):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if QueryCanceled is not None and isinstance(cause, QueryCanceled):
        return True
    return isinstance(cause, sqlite3.OperationalError) and str(cause) == "interrupted"


def describe_failure(exc: BaseException) -> str:
    """What a person reads in a failed build's ``last_error``."""
    from celery.exceptions import SoftTimeLimitExceeded

    if is_time_limit(exc):
        limit = _process_limit
        said = limit.says() if limit else "the database's statement_timeout"
        return (
            f"Stopped: a database statement ran past the limit of {said}. "
            "Simplify the rule tree, or raise the limit if this size of work is expected."
        )
    if isinstance(exc, SoftTimeLimitExceeded):
        return (
            f"Stopped: the task ran past its time limit of {settings.CELERY_TASK_SOFT_TIME_LIMIT} s "
            "(TASK_SOFT_TIME_LIMIT). Simplify the rule tree, or raise the limit if this size of work is expected."
        )
    return f"{type(exc).__name__}: {exc}"


class TimeLimitMiddleware:
    """Bounds a web request's database work and answers a statement stopped by a limit.

    Near the top of MIDDLEWARE, so the budget covers the session and user lookups too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = _process_limit
        if limit is None or limit.role != WEB:
            return self.get_response(request)
        _request.deadline = time.monotonic() + limit.seconds
        try:
            return self.get_response(request)
        finally:
            _request.deadline = None
            _restore_connections()

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_time_limit(exception):
            return None
        _request.deadline = None  # the answer itself must not trip over the spent budget
        return time_limit_response(request)


def time_limit_response(request: HttpRequest) -> HttpResponse:
    """503: JSON in the API's error format under /api/, a short message for pages and htmx."""
    limit = _process_limit
    said = limit.says() if limit else "the database's statement_timeout"
    if request.path.startswith("/api/"):
        return JsonResponse(
            {
                "error": (
                    f"This request's database work ran past the limit of {said} and was stopped. "
                    "Ask for less at once (fewer conditions, a smaller page); segment membership "
                    "is built in the background: segments.create, then segments.get for its status."
                ),
                "details": {"limit": [said]},
            },
            status=503,
        )
    # No context processors: the answer reads nothing more from the database.
    template = "503.html#message" if getattr(request, "htmx", False) else "503.html"
    seconds = f"{limit.seconds:g}" if limit else None
    return HttpResponse(render_to_string(template, {"seconds": seconds}), status=503)
