"""Deferred work: held while a response is being produced, run once it has been sent."""

from __future__ import annotations

import logging

import pytest
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from events_platform.after_response import AfterResponseMiddleware, defer

# Closing a response sends request_finished, whose other receivers tidy database connections.
pytestmark = pytest.mark.django_db


def test_outside_a_request_the_call_runs_at_once() -> None:
    ran: list[str] = []
    defer(lambda: ran.append("now"))
    assert ran == ["now"]


def test_inside_a_request_calls_wait_for_the_response_to_be_closed() -> None:
    """The view's deferred calls run, in order, when the server closes the response."""
    # given
    ran: list[str] = []

    def view(request: HttpRequest) -> HttpResponse:
        defer(lambda: ran.append("first"))
        defer(lambda: ran.append("second"))
        return HttpResponse("ok")

    # when
    response = AfterResponseMiddleware(view)(RequestFactory().get("/"))
    before_close = list(ran)
    response.close()  # what a WSGI server does after writing the body: sends request_finished
    # then
    assert before_close == []
    assert ran == ["first", "second"]
    defer(lambda: ran.append("after"))  # the request is over: no longer deferred
    assert ran[-1] == "after"


def test_a_failing_call_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    # given
    ran: list[str] = []

    def view(request: HttpRequest) -> HttpResponse:
        defer(lambda: 1 / 0)
        defer(lambda: ran.append("still"))
        return HttpResponse("ok")

    response = AfterResponseMiddleware(view)(RequestFactory().get("/"))
    # when
    with caplog.at_level(logging.ERROR, logger="events_platform.after_response"):
        request_finished.send(sender=type(response))
    # then
    assert ran == ["still"]
    assert "deferred call failed" in caplog.text
