"""timeline.list and the timeline entries every contact and event write leaves behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from contacts.models import CustomEvent, StoredTimelineEntry, TimelineEntry
from contacts.tests.api_helpers import event_body, upsert_ok

UPSERT = "/api/customEvents.upsert"
TIMELINE = "/api/timeline.list"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def upsert(client: APIClient, **fields: Any) -> dict[str, Any]:
    return upsert_ok(client, event_body(**{"email": "ann@example.com", "external_id": "order_1", **fields}))


def import_one(client: APIClient, **fields: Any) -> None:
    event = {"email": "ann@example.com", "event_name": "order.completed", "external_id": "order_1", **fields}
    response = client.post("/api/customEvents.import", {"workspace_id": "acme", "events": [event]}, format="json")
    assert response.status_code == 201, response.content


def timeline(client: APIClient, **query: Any) -> dict[str, Any]:
    response = client.get(TIMELINE, {"workspace_id": "acme", "email": "ann@example.com", **query})
    assert response.status_code == 200, response.content
    return response.json()


def test_first_event_of_a_new_email_writes_contact_created_and_event_insert(api_client: APIClient) -> None:
    """A new email gets contact.created; the event gets custom_event.<name> insert with its fields as 'new'."""
    # when
    body = upsert(
        api_client, occurred_at=iso(T0), properties={"sku": "A"}, goal_type="purchase", goal_value=12.5, goal_name="o"
    )
    # then
    entries = {e.kind: e for e in TimelineEntry.objects.all()}
    assert set(entries) == {"contact.created", "custom_event.order.completed"}
    created = entries["contact.created"]
    assert (created.operation, created.entity_type) == ("insert", "contact")
    assert created.changes == {"email": {"new": "ann@example.com"}}
    insert = entries["custom_event.order.completed"]
    assert (insert.operation, insert.entity_type, insert.entity_id) == (
        "insert",
        "custom_event",
        str(body["event"]["id"]),
    )
    assert insert.created_at == T0
    # The insert's changes are read from the event row (the entry does not copy them).
    listed = timeline(api_client, kind="custom_event.*")["timeline"]
    assert [e["operation"] for e in listed] == ["insert"]
    changes = listed[0]["changes"]
    assert changes["properties"] == {"new": {"sku": "A"}}
    assert changes["goal_value"] == {"new": 12.5}
    assert changes["goal_type"] == {"new": "purchase"}
    assert changes["external_id"] == {"new": "order_1"}
    assert all(set(change) == {"new"} for change in changes.values())


def test_insert_entry_stores_no_copy_of_the_event(api_client: APIClient) -> None:
    """The insert entry's row holds no changes; timeline.list shows every set field of the first
    version, as the diff from nothing wrote it, read from the event row."""
    # given: imported, since the import keeps the source sent (the upsert stores "api")
    import_one(
        api_client,
        occurred_at=iso(T0),
        properties={"sku": "A", "note": None},
        goal_type="purchase",
        goal_value=12.5,
        goal_name="o",
        source="integration",
        integration_id="shop",
    )
    # when
    entry = TimelineEntry.objects.get(operation="insert", entity_type="custom_event")
    listed = timeline(api_client, kind="custom_event.*")["timeline"][0]
    # then
    assert entry.changes == {}
    assert listed["changes"] == {
        "event_name": {"new": "order.completed"},
        "external_id": {"new": "order_1"},
        "occurred_at": {"new": iso(T0)},
        "properties": {"new": {"sku": "A", "note": None}},
        "source": {"new": "integration"},
        "integration_id": {"new": "shop"},
        "goal_type": {"new": "purchase"},
        "goal_name": {"new": "o"},
        "goal_value": {"new": 12.5},
    }


def test_insert_entry_of_a_changed_event_shows_its_first_version(api_client: APIClient) -> None:
    """After an update, a delete and a restore the insert entry still shows the first version:
    each field from the "old" of the first later entry that changed it, the rest from the row."""
    # given
    upsert(api_client, occurred_at=iso(T0), properties={"v": 1}, goal_type="purchase", goal_value=10)
    upsert(api_client, occurred_at=iso(T0 + timedelta(hours=1)), properties={"v": 2}, goal_name="renamed")
    upsert(api_client, occurred_at=iso(T0 + timedelta(hours=2)), properties={"v": 3}, goal_value=11)
    upsert(api_client, occurred_at=iso(T0 + timedelta(hours=2)), deleted_at=iso(T0 + timedelta(hours=3)))
    # when
    listed = timeline(api_client, kind="custom_event.*")["timeline"]
    # then
    assert [e["operation"] for e in listed] == ["delete", "update", "update", "insert"]
    assert listed[-1]["changes"] == {
        "event_name": {"new": "order.completed"},
        "external_id": {"new": "order_1"},
        "occurred_at": {"new": iso(T0)},
        "properties": {"new": {"v": 1}},
        "source": {"new": "api"},
        "goal_type": {"new": "purchase"},
        "goal_value": {"new": 10.0},
    }


def test_insert_followed_by_a_newer_version_in_one_batch_shows_the_first(api_client: APIClient) -> None:
    """Two versions of a new event in one import: the row holds the second, so the insert entry
    is stored at the first version's time (lean) and timeline.list shows the first version."""
    # given
    events = [
        {
            "email": "ann@example.com",
            "event_name": "order.completed",
            "external_id": "order_1",
            "occurred_at": iso(T0 + timedelta(hours=h)),
            "properties": {"v": h},
        }
        for h in (0, 1)
    ]
    response = api_client.post("/api/customEvents.import", {"workspace_id": "acme", "events": events}, format="json")
    assert response.status_code == 201, response.content
    # when
    listed = timeline(api_client, kind="custom_event.*")["timeline"]
    # then
    insert = TimelineEntry.objects.get(operation="insert", entity_type="custom_event")
    assert (insert.created_at, insert.changes) == (T0, {})
    assert StoredTimelineEntry.objects.filter(custom_event=insert.custom_event, operation="insert").exists()
    assert [e["operation"] for e in listed] == ["update", "insert"]
    assert [datetime.fromisoformat(e["created_at"].replace("Z", "+00:00")) for e in listed] == [
        T0 + timedelta(hours=1),
        T0,
    ]
    assert listed[1]["changes"]["properties"] == {"new": {"v": 0}}
    assert listed[0]["changes"]["properties"] == {"old": {"v": 0}, "new": {"v": 1}}


def test_contact_created_is_written_once_per_email(api_client: APIClient) -> None:
    """The second event of a known email adds no contact.created entry."""
    # given
    upsert(api_client, occurred_at=iso(T0))
    # when
    upsert(api_client, external_id="order_2", occurred_at=iso(T0), email="ANN@example.com")
    # then
    assert TimelineEntry.objects.filter(kind="contact.created").count() == 1
    assert TimelineEntry.objects.filter(kind="custom_event.order.completed", operation="insert").count() == 2


def test_each_event_operation_writes_its_entry(api_client: APIClient) -> None:
    """insert, update, delete and restore each leave one custom_event.<name> entry; unchanged leaves none."""
    # given / when
    upsert(api_client, occurred_at=iso(T0))
    upsert(api_client, occurred_at=iso(T0 + timedelta(hours=1)), properties={"v": 2})
    upsert(api_client, occurred_at=iso(T0 - timedelta(hours=1)))  # unchanged
    upsert(api_client, occurred_at=iso(T0 + timedelta(hours=1)), deleted_at=iso(T0 + timedelta(hours=2)))
    upsert(api_client, occurred_at=iso(T0 + timedelta(hours=1)))
    # then
    event = CustomEvent.objects.get()
    entries = TimelineEntry.objects.filter(kind="custom_event.order.completed").order_by("id")
    assert [e.operation for e in entries] == ["insert", "update", "delete", "restore"]
    assert {e.custom_event_id for e in entries} == {event.pk}
    assert {e.entity_id for e in entries} == {str(event.pk)}
    delete, restore = entries[2], entries[3]
    assert set(delete.changes) == {"deleted_at"}
    assert delete.changes["deleted_at"]["old"] is None
    assert set(restore.changes) == {"deleted_at"}
    assert restore.changes["deleted_at"]["new"] is None


def test_event_name_of_100_characters_makes_a_timeline_kind_that_stores(api_client: APIClient) -> None:
    """custom_event. plus a 100-character name (113 characters) is stored and filterable exactly."""
    # given
    name = "a." + "b" * 98
    # when
    upsert(api_client, event_name=name, occurred_at=iso(T0))
    # then
    kind = f"custom_event.{name}"
    assert TimelineEntry.objects.get(kind=kind).operation == "insert"
    assert [e["kind"] for e in timeline(api_client, kind=kind)["timeline"]] == [kind]


def test_timeline_lists_newest_first(api_client: APIClient) -> None:
    """Entries are ordered by when they happened (event entries at their occurred_at), newest first."""
    # given: the contact is created now, the events happened in the past
    upsert(api_client, external_id="old", occurred_at=iso(T0))
    upsert(api_client, external_id="newer", occurred_at=iso(T0 + timedelta(days=1)))
    upsert(api_client, external_id="middle", occurred_at=iso(T0 + timedelta(hours=1)))
    # when
    body = timeline(api_client)
    # then
    moments = [e["created_at"] for e in body["timeline"]]
    assert moments == sorted(moments, reverse=True)
    assert body["timeline"][0]["kind"] == "contact.created"
    assert [e["event"]["external_id"] for e in body["timeline"] if e["event"]] == ["newer", "middle", "old"]
    assert body["next_cursor"] is None


def test_event_entries_carry_the_events_current_data(api_client: APIClient) -> None:
    """Every entry of an event shows its current properties, goal and source, even the older insert."""
    # given
    upsert(api_client, occurred_at=iso(T0), properties={"v": 1}, goal_type="purchase", goal_value=10)
    upsert(api_client, occurred_at=iso(T0 + timedelta(hours=1)), properties={"v": 2}, goal_name="renamed")
    # when
    body = timeline(api_client, kind="custom_event.*")
    # then
    assert [e["operation"] for e in body["timeline"]] == ["update", "insert"]
    for entry in body["timeline"]:
        current = entry["event"]
        assert current["properties"] == {"v": 2}
        assert (current["goal_type"], current["goal_value"], current["goal_name"]) == ("purchase", 10.0, "renamed")
        assert current["source"] == "api"
        assert current["event_name"] == "order.completed"
    update = body["timeline"][0]
    assert update["changes"]["properties"] == {"old": {"v": 1}, "new": {"v": 2}}
    assert update["changes"]["goal_name"] == {"old": None, "new": "renamed"}


def test_contact_entries_carry_no_event(api_client: APIClient) -> None:
    """contact.created has event null."""
    # given
    upsert(api_client, occurred_at=iso(T0))
    # when
    body = timeline(api_client, kind="contact.created")
    # then
    assert [(e["kind"], e["event"]) for e in body["timeline"]] == [("contact.created", None)]


def test_kind_filter_is_exact_or_a_prefix_with_star(api_client: APIClient) -> None:
    """kind=custom_event.order.completed matches only that name; custom_event.* matches every event entry."""
    # given
    upsert(api_client, occurred_at=iso(T0))
    upsert(api_client, event_name="order.completed.v2", external_id="x", occurred_at=iso(T0))
    upsert(api_client, event_name="form_submit", external_id="f", occurred_at=iso(T0))
    # when
    exact = timeline(api_client, kind="custom_event.order.completed")
    prefix = timeline(api_client, kind="custom_event.*")
    name_prefix = timeline(api_client, kind="custom_event.order.*")
    # then
    assert {e["kind"] for e in exact["timeline"]} == {"custom_event.order.completed"}
    assert len(exact["timeline"]) == 1
    assert sorted(e["kind"] for e in prefix["timeline"]) == [
        "custom_event.form_submit",
        "custom_event.order.completed",
        "custom_event.order.completed.v2",
    ]
    assert len(name_prefix["timeline"]) == 2


def test_kind_filter_treats_sql_wildcards_literally(api_client: APIClient) -> None:
    """'custom_event.form%' or '_' in kind are not SQL wildcards."""
    # given
    upsert(api_client, event_name="form_submit", external_id="f", occurred_at=iso(T0))
    upsert(api_client, event_name="formxsubmit", external_id="g", occurred_at=iso(T0))
    # when
    body = timeline(api_client, kind="custom_event.form_*")
    # then
    assert [e["kind"] for e in body["timeline"]] == ["custom_event.form_submit"]


def test_timeline_of_an_unknown_email_is_a_404(api_client: APIClient) -> None:
    """No contact, no timeline."""
    # when
    response = api_client.get(TIMELINE, {"workspace_id": "acme", "email": "nobody@example.com"})
    # then
    assert response.status_code == 404


def test_timeline_requires_email(api_client: APIClient) -> None:
    """email names whose timeline to read."""
    # when
    response = api_client.get(TIMELINE, {"workspace_id": "acme"})
    # then
    assert response.status_code == 400
    assert "email" in response.json()["details"]


def test_timeline_email_is_normalised(api_client: APIClient) -> None:
    """'  Ann@Example.COM ' finds ann@example.com's timeline."""
    # given
    upsert(api_client, occurred_at=iso(T0))
    # when
    response = api_client.get(TIMELINE, {"workspace_id": "acme", "email": "  Ann@Example.COM "})
    # then
    assert response.status_code == 200
    assert len(response.json()["timeline"]) == 2


def test_timeline_cursor_pages_through_every_entry_once(api_client: APIClient) -> None:
    """Following next_cursor with limit=3 yields each of the 12 entries once, newest first."""
    # given
    for i in range(11):
        upsert(api_client, external_id=f"e{i}", occurred_at=iso(T0 + timedelta(minutes=i)))
    seen: list[str] = []
    cursor = ""
    # when
    while True:
        body = timeline(api_client, limit=3, cursor=cursor)
        seen.extend(e["id"] for e in body["timeline"])
        cursor = body["next_cursor"]
        if not cursor:
            break
    # then: ids are strings, as Notifuse's clients decode them
    expected = [str(pk) for pk in TimelineEntry.objects.order_by("-created_at", "-id").values_list("id", flat=True)]
    assert seen == expected
    assert len(seen) == 12


@pytest.mark.parametrize(("limit", "cursor"), [(101, ""), (-1, ""), ("ten", ""), (10, "garbage")])
def test_timeline_rejects_bad_paging(api_client: APIClient, limit: int | str, cursor: str) -> None:
    """limit above 100, negative or not an integer, and a cursor we did not make, are 400s."""
    # given
    upsert(api_client, occurred_at=iso(T0))
    # when
    response = api_client.get(
        TIMELINE, {"workspace_id": "acme", "email": "ann@example.com", "limit": str(limit), "cursor": cursor}
    )
    # then
    assert response.status_code == 400


def test_timeline_costs_the_same_queries_for_few_and_many_entries(api_client: APIClient) -> None:
    """Entries with their events come in a constant number of queries."""
    # given
    upsert(api_client, occurred_at=iso(T0))
    timeline(api_client)
    with CaptureQueriesContext(connection) as small:
        timeline(api_client)
    for i in range(30):
        upsert(api_client, external_id=f"e{i}", occurred_at=iso(T0 + timedelta(minutes=i)))
    timeline(api_client)
    # when
    with CaptureQueriesContext(connection) as large:
        body = timeline(api_client)
    # then
    assert len(body["timeline"]) == 32
    assert len(large.captured_queries) == len(small.captured_queries)
