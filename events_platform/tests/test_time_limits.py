"""Bounded work: a request's database work stops at WEB_STATEMENT_TIMEOUT with a readable 503,
and a build stops at WORKER_STATEMENT_TIMEOUT and records why (events_platform/time_limits.py)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from django.db.models import Model
from django.test import Client
from rest_framework.test import APIClient

from contacts.models import Contact
from contacts.services import events_upsert
from contacts.tests.factories import EventInputFactory
from events_platform import time_limits
from events_platform.testing import celery_worker, worker_unavailable_reason
from events_platform.workspaces.models import ApiKey, Workspace
from segments import services
from segments.models import Segment, SegmentMembership
from segments.tests.trees import all_of, goal_leaf

pytestmark = pytest.mark.django_db(transaction=True)

# Like the tree that ran past gunicorn's timeout on 50k contacts: 151 goal conditions.
BIG_TREE = all_of(*(goal_leaf("sum", "gte", index) for index in range(151)))


@contextmanager
def table_locked(model: type[Model]) -> Iterator[Callable[[], None]]:
    """Another PostgreSQL session holds an exclusive lock on the model's table, so any statement
    reading it waits (as a heavy one would run) until a limit stops it or the lock is released
    (by the function this yields, or at the end)."""
    s = connection.settings_dict
    with psycopg.connect(
        dbname=s["NAME"], user=s["USER"], password=s["PASSWORD"] or None, host=s["HOST"] or "127.0.0.1", port=s["PORT"]
    ) as other:
        other.execute(f"LOCK TABLE {model._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        yield other.rollback
        other.rollback()


@contextmanager
def slow_contact_reads() -> Iterator[float]:
    """While open, reading contacts takes longer than the limit this yields.

    PostgreSQL: reads wait behind a lock for longer than 0.5 s. SQLite's readers never wait for
    a writer, so there the limit is made shorter than the work instead: 1 µs, so the first
    progress check (every SQLITE_PROGRESS_STEPS steps) is past it however fast the machine.
    (1 ms was not always enough: on a quiet machine the 20-contact rebuild finished inside it.)"""
    if connection.vendor == "postgresql":
        with table_locked(Contact):
            yield 0.5
    else:
        yield 0.000001


@pytest.fixture
def bound_as(settings: Any) -> Iterator[Callable[[str, float], None]]:
    """Bind this process as a web process or a worker with a given limit; unbound afterwards."""

    def bind(role: str, seconds: float) -> None:
        setattr(settings, time_limits.ROLE_SETTINGS[role], seconds)
        time_limits.bind_process(role)

    yield bind
    time_limits.bind_process(None)


def buyers(workspace: Workspace, count: int = 20) -> None:
    events = [
        EventInputFactory.build(email=f"buyer{i}@x.io", external_id=f"o{i}", properties={}, goal=purchase_of(10 * i))
        for i in range(count)
    ]
    events_upsert(workspace_id=workspace.id, events=events)


def purchase_of(value: int) -> dict[str, Any]:
    return {"goal_type": "purchase", "goal_value": Decimal(value)}


def test_a_preview_past_the_web_limit_is_a_json_503_naming_the_limit(
    workspace: Workspace, api_client: APIClient, bound_as: Callable[[str, float], None]
) -> None:
    """segments.preview whose statement runs past WEB_STATEMENT_TIMEOUT is stopped and answered
    503 in the API's error format, naming the limit, long before a worker timeout."""
    # given
    buyers(workspace)
    with slow_contact_reads() as limit:
        bound_as(time_limits.WEB, limit)
        started = time.monotonic()

        # when
        response = api_client.post("/api/segments.preview", {"workspace_id": "acme", "tree": BIG_TREE}, format="json")

    # then
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "details"}
    assert f"{limit:g} s (WEB_STATEMENT_TIMEOUT)" in body["error"]
    assert body["details"] == {"limit": [f"{limit:g} s (WEB_STATEMENT_TIMEOUT)"]}
    assert elapsed < limit + 5


@pytest.mark.postgres
def test_the_connection_serves_the_next_request_after_a_stopped_statement(
    workspace: Workspace, api_client: APIClient, bound_as: Callable[[str, float], None]
) -> None:
    """After a statement was stopped, the same connection answers the next request normally."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (a lock makes the statement wait)")
    # given
    buyers(workspace)
    bound_as(time_limits.WEB, 0.3)
    tree = all_of(goal_leaf("sum", "gte", 50))
    with table_locked(Contact):
        stopped = api_client.post("/api/segments.preview", {"workspace_id": "acme", "tree": tree}, format="json")

    # when
    response = api_client.post("/api/segments.preview", {"workspace_id": "acme", "tree": tree}, format="json")

    # then
    assert stopped.status_code == 503
    assert response.status_code == 200
    assert response.json()["total"] == 15
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("300ms",)


@pytest.mark.postgres
def test_a_slow_request_gives_its_later_statements_only_what_is_left(
    workspace: Workspace, api_client: APIClient, bound_as: Callable[[str, float], None]
) -> None:
    """A request's statements share one budget: after the first statement spent most of it,
    the next one is stopped at the budget's end, not a full limit later; the connection then
    gets its full limit back."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (a lock makes the statement wait)")
    # given a 3 s budget, the key lookup held up for 1.6 s and the contacts locked throughout
    buyers(workspace)
    bound_as(time_limits.WEB, 3)
    with table_locked(ApiKey) as release_keys, table_locked(Contact):
        threading.Timer(1.6, release_keys).start()
        started = time.monotonic()

        # when
        response = api_client.post("/api/segments.preview", {"workspace_id": "acme", "tree": BIG_TREE}, format="json")
        elapsed = time.monotonic() - started

    # then the preview was stopped at the budget's end (3 s), not 1.6 + 3 s after the start
    assert response.status_code == 503
    assert 2.6 < elapsed < 4.0, elapsed
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("3s",)


def test_a_page_past_the_web_limit_is_a_readable_503(
    member_client: Client, workspace: Workspace, bound_as: Callable[[str, float], None]
) -> None:
    """A page whose database work runs past the limit answers a short 503 page saying so; an
    htmx request gets the message alone, to swap in where the fragment would go."""
    # given
    buyers(workspace)
    with slow_contact_reads() as limit:
        bound_as(time_limits.WEB, limit)

        # when
        page = member_client.get("/contacts/")
        fragment = member_client.get("/contacts/", HTTP_HX_REQUEST="true")

    # then
    assert page.status_code == 503
    html = page.content.decode()
    assert "<h1>This took too long</h1>" in html
    assert "ran past the limit" in html
    assert fragment.status_code == 503
    message = fragment.content.decode()
    assert message.startswith('<p class="error" role="alert">') and "<html" not in message
    assert "ran past the limit" in message


def test_a_build_past_the_worker_limit_records_failed_with_a_clear_error(
    workspace: Workspace, bound_as: Callable[[str, float], None]
) -> None:
    """A build whose statement runs past WORKER_STATEMENT_TIMEOUT is stopped, leaves the
    membership as it was, and records status failed with a last_error naming the limit."""
    # given a built segment
    buyers(workspace)
    segment = services.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=BIG_TREE)
    segment.refresh_from_db()
    assert segment.status == Segment.Status.ACTIVE
    members_before = set(SegmentMembership.objects.filter(segment=segment).values_list("contact_id", flat=True))

    # when it is rebuilt (the build runs in-process here)
    with slow_contact_reads() as limit:
        bound_as(time_limits.WORKER, limit)
        services.segment_rebuild(segment=segment)
        time_limits.bind_process(None)

    # then
    segment.refresh_from_db()
    assert segment.status == Segment.Status.FAILED
    assert segment.last_error.startswith("Stopped: a database statement ran past the limit of")
    assert f"{limit:g} s (WORKER_STATEMENT_TIMEOUT)" in segment.last_error
    assert set(SegmentMembership.objects.filter(segment=segment).values_list("contact_id", flat=True)) == members_before


@pytest.mark.postgres
@pytest.mark.celery_worker
def test_a_real_worker_stops_a_build_at_its_limit_and_records_it(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Celery worker started with WORKER_STATEMENT_TIMEOUT stops a build's statement there
    and records the build as failed with that limit in last_error."""
    reason = worker_unavailable_reason()
    if reason:
        if os.environ.get("REQUIRE_SERVICES"):
            pytest.fail(f"REQUIRE_SERVICES is set but the real-worker test cannot run: {reason}")
        pytest.skip(reason)
    # given a built segment and a worker bound to 0.5 s per statement
    buyers(workspace)
    segment = services.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=BIG_TREE)
    monkeypatch.setenv("WORKER_STATEMENT_TIMEOUT", "0.5")

    with celery_worker() as worker, table_locked(Contact):
        # when it is rebuilt while reading contacts takes longer than that
        services.segment_rebuild(segment=segment)
        deadline = time.monotonic() + 30
        while Segment.objects.get(pk=segment.pk).status != Segment.Status.FAILED:
            assert time.monotonic() < deadline, "".join(worker.log[-30:])
            time.sleep(0.1)

    # then
    segment.refresh_from_db()
    assert "0.5 s (WORKER_STATEMENT_TIMEOUT)" in segment.last_error
    assert segment.last_build_duration_ms is not None and segment.last_build_duration_ms < 5000


@pytest.mark.django_db(transaction=True)
def test_a_limit_never_stops_a_transaction_s_begin(bound_as: Callable[[str, float], None]) -> None:
    """Transaction control is never stopped by a limit. On SQLite a prepared statement's VM-step
    counter runs on across executions, so once BEGIN IMMEDIATE has run a few hundred times the
    progress check fires inside it; with the deadline past, it was interrupted half-way and left
    the connection inside a transaction Django believed closed (every later test then failed with
    "cannot start a transaction within a transaction"). Under a limit shorter than any statement,
    2,000 transactions open and close, and the connection works afterwards."""
    # given a worker whose limit every statement exceeds
    bound_as(time_limits.WORKER, 0.000001)
    # when
    for _ in range(2000):
        with transaction.atomic():
            pass
    # then
    assert not connection.in_atomic_block
    bound_as(time_limits.WORKER, 30.0)
    assert Contact.objects.count() == 0
