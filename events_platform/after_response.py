"""Work that can wait until the response has been sent.

After an ingest commit a drain of the refresh queue is published (the changed contacts were
queued inside the write's own transaction) and webhook deliveries are fanned out: work the
client need not wait for, and nothing that must not be lost (whatever is deferred here has its
record in the database already, and a periodic sweep re-publishes it if this never runs).
Inside a request, :func:`defer` holds such a call until ``request_finished``, which WSGI
servers (gunicorn, runserver) send when they close the response, after its bytes went out;
outside a request (tasks, commands, tests calling services)
the call runs at once. The calls are per thread and per request, never shared between workers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)
_state = threading.local()


def defer(call: Callable[[], object]) -> None:
    """Run ``call`` once the current response is sent, or now when no request is being served."""
    calls: list[Callable[[], object]] | None = getattr(_state, "calls", None)
    if calls is None:
        call()
    else:
        calls.append(call)


def _run_deferred() -> None:
    calls: list[Callable[[], object]] | None = getattr(_state, "calls", None)
    _state.calls = None
    for call in calls or ():
        try:
            call()
        except Exception:
            # The response is gone; the periodic sweeps re-publish what a failed publish left.
            logger.exception("deferred call failed after the response")


class AfterResponseMiddleware:
    """Opens the per-request list of deferred calls (first in MIDDLEWARE, so everything after it,
    views included, may defer)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        _run_deferred()  # anything a previous request on this thread left behind
        _state.calls = []
        return self.get_response(request)


@receiver(request_finished, dispatch_uid="events_platform.after_response")
def _request_finished(sender: Any, **kwargs: Any) -> None:
    _run_deferred()
