"""customEvents.import: the seed's batch example, in-batch duplicates, all-or-nothing, constant statements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from contacts.models import Contact, CustomEvent, TimelineEntry

IMPORT = "/api/customEvents.import"

SEED_IMPORT_BODY = """{
    "workspace_id": "acme",
    "events": [
      {
        "email": "user1@example.com",
        "event_name": "order.completed",
        "external_id": "order_001",
        "goal_type": "purchase",
        "goal_value": 99.99
      },
      {
        "email": "user2@example.com",
        "event_name": "order.completed",
        "external_id": "order_002",
        "goal_type": "purchase",
        "goal_value": 249.99
      }
    ]
  }"""

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def event(external_id: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "email": "customer@example.com",
        "event_name": "order.completed",
        "external_id": external_id,
        "occurred_at": at.isoformat(),
        **fields,
    }


def import_events(client: APIClient, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post(IMPORT, {"workspace_id": "acme", "events": events}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_seed_batch_import_example_works_verbatim(api_client: APIClient) -> None:
    """The doc's import body: 201 with event_ids, count and per-event results; both contacts created."""
    # when
    response = api_client.post(IMPORT, SEED_IMPORT_BODY, content_type="application/json")
    # then
    assert response.status_code == 201, response.content
    assert response.json() == {
        "event_ids": ["order_001", "order_002"],
        "count": 2,
        "results": [
            {"event_name": "order.completed", "external_id": "order_001", "operation": "created"},
            {"event_name": "order.completed", "external_id": "order_002", "operation": "created"},
        ],
    }
    stored = {
        e.external_id: (e.contact.email, str(e.goal_value)) for e in CustomEvent.objects.select_related("contact")
    }
    assert stored == {"order_001": ("user1@example.com", "99.99"), "order_002": ("user2@example.com", "249.99")}
    assert TimelineEntry.objects.filter(kind="contact.created").count() == 2


def test_import_of_50_events_is_accepted(api_client: APIClient) -> None:
    """50 is the largest batch."""
    # given
    events = [event(f"o{i}", T0, email=f"u{i}@example.com", goal_type="purchase", goal_value=i) for i in range(50)]
    # when
    body = import_events(api_client, events)
    # then
    assert body["count"] == 50
    assert body["event_ids"] == [f"o{i}" for i in range(50)]
    assert CustomEvent.objects.count() == 50
    assert Contact.objects.count() == 50


def test_import_reports_each_operation_in_input_order(api_client: APIClient) -> None:
    """A batch mixing new, newer, older and deleting versions reports each result at its index."""
    # given
    import_events(api_client, [event("a", T0), event("b", T0), event("c", T0)])
    batch = [
        event("new", T0),
        event("c", T0 + timedelta(hours=1), deleted_at=(T0 + timedelta(hours=2)).isoformat()),
        event("b", T0 - timedelta(hours=1)),
        event("a", T0 + timedelta(hours=1), properties={"v": 2}),
    ]
    # when
    body = import_events(api_client, batch)
    # then
    assert [(r["external_id"], r["operation"]) for r in body["results"]] == [
        ("new", "created"),
        ("c", "deleted"),
        ("b", "unchanged"),
        ("a", "updated"),
    ]
    assert CustomEvent.objects.get(external_id="a").properties == {"v": 2}
    assert CustomEvent.objects.get(external_id="c").deleted_at is not None


def test_same_event_twice_in_a_batch_is_created_then_updated(api_client: APIClient) -> None:
    """Two versions of one new event, the second newer: created then updated, as if sent one after another."""
    # given
    batch = [event("dup", T0, properties={"v": 1}), event("dup", T0 + timedelta(minutes=5), properties={"v": 2})]
    # when
    body = import_events(api_client, batch)
    # then
    assert [r["operation"] for r in body["results"]] == ["created", "updated"]
    stored = CustomEvent.objects.get()
    assert stored.properties == {"v": 2}
    assert stored.occurred_at == T0 + timedelta(minutes=5)
    entries = TimelineEntry.objects.filter(kind="custom_event.order.completed").order_by("created_at")
    assert [e.operation for e in entries] == ["insert", "update"]
    assert entries[1].changes["properties"] == {"old": {"v": 1}, "new": {"v": 2}}


def test_same_event_twice_in_a_batch_is_created_then_unchanged(api_client: APIClient) -> None:
    """Two versions of one new event, the second older: created then unchanged, the first kept."""
    # given
    batch = [event("dup", T0, properties={"v": 1}), event("dup", T0 - timedelta(minutes=5), properties={"v": 2})]
    # when
    body = import_events(api_client, batch)
    # then
    assert [r["operation"] for r in body["results"]] == ["created", "unchanged"]
    assert body["count"] == 2
    assert CustomEvent.objects.get().properties == {"v": 1}
    assert TimelineEntry.objects.filter(kind="custom_event.order.completed").count() == 1


def test_same_stored_event_twice_in_a_batch_is_deleted_then_restored(api_client: APIClient) -> None:
    """A stored event deleted then restored in one batch ends live, with both timeline entries."""
    # given
    import_events(api_client, [event("e", T0)])
    batch = [event("e", T0, deleted_at=(T0 + timedelta(hours=1)).isoformat()), event("e", T0)]
    # when
    body = import_events(api_client, batch)
    # then
    assert [r["operation"] for r in body["results"]] == ["deleted", "restored"]
    assert CustomEvent.objects.get().deleted_at is None
    operations = TimelineEntry.objects.filter(kind="custom_event.order.completed").values_list("operation", flat=True)
    assert sorted(operations) == ["delete", "insert", "restore"]


def test_import_creates_a_contact_once_for_events_sharing_a_new_email(api_client: APIClient) -> None:
    """Three events of one new customer (spelled differently) make one contact and one contact.created entry."""
    # given
    batch = [
        event("a", T0, email="New@Example.com"),
        event("b", T0, email="  new@example.com"),
        event("c", T0, email="NEW@EXAMPLE.COM "),
    ]
    # when
    import_events(api_client, batch)
    # then
    assert list(Contact.objects.values_list("email", flat=True)) == ["new@example.com"]
    assert TimelineEntry.objects.filter(kind="contact.created").count() == 1


def import_queries(client: APIClient, size: int, offset: int) -> int:
    """Queries of one import of ``size`` new events, each of a new customer."""
    events = [
        event(f"q{offset + i}", T0, email=f"q{offset + i}@example.com", goal_type="purchase", goal_value=1.5)
        for i in range(size)
    ]
    with CaptureQueriesContext(connection) as ctx:
        import_events(client, events)
    return len(ctx.captured_queries)


def test_import_of_50_new_events_costs_the_same_queries_as_5(api_client: APIClient) -> None:
    """The batch costs a constant, small number of statements, not a few per event."""
    # given: a warm-up request so the key's last_used_at write is out of the way
    api_client.get("/api/contacts.list", {"workspace_id": "acme"})
    # when
    five = import_queries(api_client, 5, 0)
    fifty = import_queries(api_client, 50, 100)
    # then
    assert fifty == five
    # SQLite has no data-modifying CTEs: there the refresh queue's insert and the dashboard's
    # activity deltas, which PostgreSQL folds into the events insert, are statements of their own.
    assert fifty <= (9 if connection.vendor == "postgresql" else 11)
    assert CustomEvent.objects.count() == 55


@pytest.mark.parametrize("size", [5, 50])
def test_import_updating_stored_events_costs_a_constant_number_of_queries(api_client: APIClient, size: int) -> None:
    """Updating a batch of stored events also costs a fixed number of statements."""
    # given
    api_client.get("/api/contacts.list", {"workspace_id": "acme"})
    import_events(api_client, [event(f"u{i}", T0) for i in range(size)])
    newer = [event(f"u{i}", T0 + timedelta(hours=1), properties={"v": 2}) for i in range(size)]
    # when
    with CaptureQueriesContext(connection) as ctx:
        body = import_events(api_client, newer)
    # then
    assert {r["operation"] for r in body["results"]} == {"updated"}
    # New rows are inserted first, so stored ones pay one no-op insert before their lock. On
    # SQLite the refresh queue's insert is a statement of its own (see above).
    assert len(ctx.captured_queries) <= (11 if connection.vendor == "postgresql" else 13)
