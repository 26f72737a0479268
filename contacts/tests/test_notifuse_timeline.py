"""timeline.list as Notifuse's contact drawer uses it (NOTIFUSE-API.md §2): limit=10, then
cursor=<next_cursor>; entries validated against Notifuse's Entry shape."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from contacts.models import CustomEvent
from contacts.tests.notifuse_shapes import assert_custom_event, assert_error, assert_timeline_entry

UPSERT = "/api/customEvents.upsert"
TIMELINE = "/api/timeline.list"


def upsert(client: APIClient, **fields: Any) -> None:
    body = {"workspace_id": "acme", "email": "Ann@Example.com", "event_name": "order.completed", **fields}
    response = client.post(UPSERT, body, format="json")
    assert response.status_code == 200, response.content


def drawer_pages(client: APIClient) -> list[dict[str, Any]]:
    """Every entry, fetched as the drawer does: limit=10, then "Load More" with next_cursor."""
    entries: list[dict[str, Any]] = []
    query = {"workspace_id": "acme", "email": "ann@example.com", "limit": "10"}
    while True:
        response = client.get(TIMELINE, query)
        assert response.status_code == 200, response.content
        body = response.json()
        assert isinstance(body["timeline"], list)
        entries += body["timeline"]
        if not body.get("next_cursor"):
            return entries
        query["cursor"] = body["next_cursor"]


def test_entries_have_string_ids_the_email_and_the_event_s_external_id(api_client: APIClient) -> None:
    """Each entry has a string id, the contact's email; a custom-event entry's entity_id is the event's
    external_id, its kind custom_event.<name>, its changes.goal_value.new a number; our event object stays."""
    # given
    upsert(api_client, external_id="order_1", goal_type="purchase", goal_value=3.3000000000000003)
    for i in range(12):
        upsert(api_client, external_id=f"order_{i + 2}", goal_type="purchase", goal_value=10)
    # when
    entries = drawer_pages(api_client)
    # then
    assert len(entries) == 14  # contact.created and 13 inserts
    assert len({e["id"] for e in entries}) == 14
    for entry in entries:
        assert_timeline_entry(entry)
        assert entry["email"] == "ann@example.com"
    created = next(e for e in entries if e["kind"] == "contact.created")
    assert created["entity_type"] == "contact" and created["entity_id"] is None
    first = next(e for e in entries if e.get("entity_id") == "order_1")
    assert (first["kind"], first["operation"], first["entity_type"]) == (
        "custom_event.order.completed",
        "insert",
        "custom_event",
    )
    assert first["changes"]["goal_value"]["new"] == 3.3
    assert first["changes"]["external_id"]["new"] == "order_1"
    assert_custom_event(first["event"])
    assert first["event"]["id"] == CustomEvent.objects.get(external_id="order_1").pk


def test_an_update_entry_carries_the_external_id_and_numbers(api_client: APIClient) -> None:
    """A newer version of the event writes an update entry with entity_id the external_id and old/new numbers."""
    # given
    upsert(api_client, external_id="o1", occurred_at="2026-03-01T10:00:00Z", goal_type="purchase", goal_value=5)
    # when
    upsert(api_client, external_id="o1", occurred_at="2026-03-02T10:00:00Z", goal_type="purchase", goal_value=7.255)
    # then
    (update,) = [e for e in drawer_pages(api_client) if e["operation"] == "update"]
    assert_timeline_entry(update)
    assert update["entity_id"] == "o1"
    assert update["changes"]["goal_value"] == {"old": 5.0, "new": 7.26}


def test_missing_email_and_over_100_limit_are_json_400s(api_client: APIClient) -> None:
    """timeline.list refuses what customEvents.list caps: limit > 100 is a 400, as in Notifuse."""
    # given
    upsert(api_client, external_id="o1")
    # when / then
    assert_error(api_client.get(TIMELINE, {"workspace_id": "acme"}), 400)
    assert_error(api_client.get(TIMELINE, {"workspace_id": "acme", "email": "ann@example.com", "limit": "101"}), 400)
    bad_cursor = {"workspace_id": "acme", "email": "ann@example.com", "cursor": "garbage"}
    assert_error(api_client.get(TIMELINE, bad_cursor), 400)


def test_limit_zero_or_absent_is_a_page_of_50(api_client: APIClient) -> None:
    """limit=0 or no limit gives the default page of 50, as Notifuse reads it (§2.1)."""
    # given: a contact.created entry and 60 inserts
    for i in range(60):
        upsert(api_client, external_id=f"o{i}")
    query = {"workspace_id": "acme", "email": "ann@example.com"}
    # when
    zero = api_client.get(TIMELINE, {**query, "limit": "0"})
    absent = api_client.get(TIMELINE, query)
    # then
    for response in (zero, absent):
        assert response.status_code == 200, response.content
        assert len(response.json()["timeline"]) == 50
        assert response.json()["next_cursor"]
