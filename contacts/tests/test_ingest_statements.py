"""What one ingest request costs the database, pinned so it cannot creep back: the statements of
a single upsert and of a 50-event import, through the API, and what a batch mixing new and
stored events writes when its common-case statement turns out not to cover it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.models import Contact, CustomEvent, PendingContactRefresh, TimelineEntry
from contacts.services import events_upsert
from contacts.tests.factories import EventInputFactory
from events_platform.testing import _database_url
from events_platform.workspaces.models import Workspace

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
POSTGRESQL = "postgresql"


def event(external_id: str, at: datetime = T0, **fields: Any) -> dict[str, Any]:
    return {
        "email": f"{external_id}@example.com",
        "event_name": "order.completed",
        "external_id": external_id,
        "occurred_at": at.isoformat(),
        "goal_type": "purchase",
        "goal_value": 12.5,
        "properties": {"sku": "a-1"},
        **fields,
    }


def statements(client: APIClient, path: str, body: dict[str, Any], status: int) -> list[str]:
    """The statements one request sends, without the test's own savepoints (in production the
    write is a transaction: BEGIN and COMMIT, which Django does not log as queries)."""
    with CaptureQueriesContext(connection) as captured:
        response = client.post(path, {"workspace_id": "acme", **body}, format="json")
    assert response.status_code == status, response.content
    return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


@pytest.fixture
def warm(api_client: APIClient) -> APIClient:
    """A client whose key's last_used_at write (once a minute) is out of the way."""
    api_client.get("/api/contacts.count", {"workspace_id": "acme"})
    return api_client


def test_a_single_new_upsert_is_the_key_lookup_and_two_statements(warm: APIClient) -> None:
    """PostgreSQL: the key, then the contact (created, locked, the event's advisory lock, its
    reserved id), then the event with its timeline entry, refresh queue row and outbox insert.
    SQLite has no data-modifying CTEs: each of those writes is a statement of its own."""
    # when
    sent = statements(warm, "/api/customEvents.upsert", event("s1"), 200)
    # then
    assert len(sent) == (3 if connection.vendor == POSTGRESQL else 9), sent
    assert CustomEvent.objects.count() == 1
    assert TimelineEntry.objects.count() == 2  # contact.created and the event's insert
    assert PendingContactRefresh.objects.count() == 1


def test_an_import_of_50_new_events_is_the_key_lookup_and_two_statements(warm: APIClient) -> None:
    """The same statements for 50 events as for one."""
    # when
    sent = statements(warm, "/api/customEvents.import", {"events": [event(f"i{n}") for n in range(50)]}, 201)
    # then
    assert len(sent) == (3 if connection.vendor == POSTGRESQL else 9), sent
    assert CustomEvent.objects.count() == 50
    assert TimelineEntry.objects.count() == 100
    assert PendingContactRefresh.objects.count() == 50


def test_an_upsert_updating_a_stored_event_costs_three_statements_more(warm: APIClient) -> None:
    """A stored event: its insert conflicts, then it is locked, updated, and its timeline entry,
    queue row and outbox insert are one more statement."""
    # given
    statements(warm, "/api/customEvents.upsert", event("u1"), 200)
    # when
    sent = statements(warm, "/api/customEvents.upsert", event("u1", T0 + timedelta(hours=1)), 200)
    # then
    assert len(sent) == (6 if connection.vendor == POSTGRESQL else 11), sent
    assert CustomEvent.objects.get().occurred_at == T0 + timedelta(hours=1)
    assert list(TimelineEntry.objects.order_by("id").values_list("operation", flat=True)) == [
        "insert",
        "insert",
        "update",
    ]


def test_a_batch_of_new_and_stored_events_writes_each_entry_once(workspace: Workspace) -> None:
    """When some events of a batch exist, the common-case statement writes the new ones' entries
    (and the contacts') but not the queue or the recorders' rows; the second writes the rest:
    every entry once, every changed contact queued."""
    # given: b stored, for a contact of its own
    events_upsert(workspace_id=workspace.id, events=[EventInputFactory.build(email="b@x.io", external_id="b")])
    PendingContactRefresh.objects.all().delete()
    before = list(TimelineEntry.objects.values_list("id", flat=True))
    batch = [
        EventInputFactory.build(email="a@x.io", external_id="a", occurred_at=T0),
        EventInputFactory.build(email="b@x.io", external_id="b", occurred_at=timezone.now()),
        EventInputFactory.build(email="c@x.io", external_id="c", occurred_at=T0),
        EventInputFactory.build(email="c@x.io", external_id="c", occurred_at=T0 + timedelta(hours=1)),
    ]
    # when
    results = events_upsert(workspace_id=workspace.id, events=batch)
    # then
    assert [r.operation for r in results] == ["created", "updated", "created", "updated"]
    written = TimelineEntry.objects.exclude(id__in=before)
    kinds = sorted((e.kind, e.operation, e.entity_id) for e in written)
    ids = {e.external_id: str(e.pk) for e in CustomEvent.objects.all()}
    assert kinds == sorted(
        [
            ("contact.created", "insert", str(Contact.objects.get(email="a@x.io").pk)),
            ("contact.created", "insert", str(Contact.objects.get(email="c@x.io").pk)),
            ("custom_event.order.completed", "insert", ids["a"]),
            # b's occurred_at moved: its insert entry is stored now, at the time it had
            ("custom_event.order.completed", "insert", ids["b"]),
            ("custom_event.order.completed", "update", ids["b"]),
            ("custom_event.order.completed", "insert", ids["c"]),
            ("custom_event.order.completed", "update", ids["c"]),
        ]
    )
    queued = set(PendingContactRefresh.objects.values_list("contact_id", flat=True))
    assert queued == set(Contact.objects.values_list("id", flat=True))  # a, b and c


@pytest.mark.skipif(connection.vendor != POSTGRESQL, reason="a server-side connection to lose")
def test_the_key_lookup_is_the_requests_health_check(
    transactional_db: None, api_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request on a kept connection sends no health check of its own (Django's SELECT 1): its
    first statement, the key lookup, finds a dead connection, which is replaced and the
    request answered."""
    # given: a kept connection the server has since closed, at the start of a new request
    api_client.get("/api/contacts.count", {"workspace_id": "acme"})
    with psycopg.connect(_database_url(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s, 5000)", [connection.connection.info.backend_pid])
    connection.close_if_unusable_or_obsolete()  # what every request starts with
    checks: list[bool] = []

    def is_usable() -> bool:
        checks.append(True)
        return True

    monkeypatch.setattr(connection, "is_usable", is_usable)
    # when
    response = api_client.post("/api/customEvents.upsert", {"workspace_id": "acme", **event("h1")}, format="json")
    # then
    assert response.status_code == 200, response.content
    assert checks == []
    assert CustomEvent.objects.filter(external_id="h1").exists()
