"""customEvents.upsert / .get / .list: the seed's examples, the occurred_at rule, soft delete, paging."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from contacts.models import Contact, CustomEvent, TimelineEntry
from contacts.tests.api_helpers import event_body, upsert_ok
from contacts.tests.factories import EventInputFactory, events_create
from events_platform.workspaces.models import Workspace

UPSERT = "/api/customEvents.upsert"
GET = "/api/customEvents.get"
LIST = "/api/customEvents.list"

# The seed's single-event curl body, byte for byte (workspace renamed to the test's).
SEED_UPSERT_BODY = """{
    "workspace_id": "acme",
    "email": "customer@example.com",
    "event_name": "order.completed",
    "external_id": "order_12345",
    "properties": {
      "items": ["Product A", "Product B"],
      "currency": "USD"
    },
    "goal_type": "purchase",
    "goal_value": 149.99
  }"""

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def upsert(client: APIClient, **fields: Any) -> dict[str, Any]:
    return upsert_ok(client, event_body(**fields))


def get_event(client: APIClient, external_id: str = "order_12345", event_name: str = "order.completed") -> Any:
    return client.get(GET, {"workspace_id": "acme", "event_name": event_name, "external_id": external_id})


# --- the seed's examples --------------------------------------------------------------------


def test_seed_single_event_example_works_verbatim(api_client: APIClient) -> None:
    """The curl body of the doc creates the event and answers it as stored, contact auto-created."""
    # given
    assert not Contact.objects.exists()
    # when
    response = api_client.post(
        UPSERT, SEED_UPSERT_BODY, content_type="application/json", HTTP_ACCEPT="application/json"
    )
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["operation"] == "created"
    event = body["event"]
    assert event["workspace_id"] == "acme"
    assert event["email"] == "customer@example.com"
    assert event["event_name"] == "order.completed"
    assert event["external_id"] == "order_12345"
    assert event["properties"] == {"items": ["Product A", "Product B"], "currency": "USD"}
    assert event["goal_type"] == "purchase"
    assert event["goal_value"] == 149.99
    assert event["goal_name"] is None
    assert event["deleted_at"] is None
    assert event["source"] == "api"
    assert isinstance(event["id"], int)
    stored = CustomEvent.objects.get()
    assert str(stored.goal_value) == "149.99"
    assert stored.contact.email == "customer@example.com"
    assert get_event(api_client).json()["event"] == event


def test_seed_single_event_example_replayed_keeps_one_row(api_client: APIClient) -> None:
    """Replaying the doc's example (no occurred_at, so now) updates the same row, never a second one."""
    # given
    first = api_client.post(UPSERT, SEED_UPSERT_BODY, content_type="application/json").json()
    # when
    second = api_client.post(UPSERT, SEED_UPSERT_BODY, content_type="application/json").json()
    # then: the replay's default occurred_at (now) is the newer one
    assert second["operation"] == "updated"
    assert second["event"]["id"] == first["event"]["id"]
    assert CustomEvent.objects.count() == 1
    assert second["event"]["properties"] == first["event"]["properties"]


def test_seed_refund_example_stores_a_negative_value(api_client: APIClient) -> None:
    """A refund is a purchase with a negative goal_value, stored as sent."""
    # given
    refund = {
        "email": "customer@example.com",
        "event_name": "order.refunded",
        "external_id": "refund_12345",
        "goal_type": "purchase",
        "goal_value": -50.00,
    }
    # when
    body = upsert(api_client, **refund)
    # then
    assert body["operation"] == "created"
    assert body["event"]["goal_value"] == -50.0
    assert str(CustomEvent.objects.get(external_id="refund_12345").goal_value) == "-50.00"


def test_soft_delete_hides_the_event_from_get_and_list(api_client: APIClient) -> None:
    """Sending the event with deleted_at soft-deletes it: operation deleted, get 404, list excludes it."""
    # given
    upsert(api_client, occurred_at=iso(T0), goal_type="purchase", goal_value=10)
    upsert(api_client, external_id="order_2", occurred_at=iso(T0), goal_type="purchase", goal_value=20)
    # when
    body = upsert(api_client, occurred_at=iso(T0), deleted_at=iso(T0 + timedelta(hours=1)))
    # then
    assert body["operation"] == "deleted"
    assert body["event"]["deleted_at"] is not None
    assert get_event(api_client).status_code == 404
    listed = api_client.get(LIST, {"workspace_id": "acme", "email": "customer@example.com"}).json()
    assert [e["external_id"] for e in listed["events"]] == ["order_2"]
    assert CustomEvent.objects.get(external_id="order_12345").deleted_at is not None


def test_restore_by_sending_the_event_without_deleted_at(api_client: APIClient) -> None:
    """A deleted event sent again without deleted_at is restored and visible again, data intact."""
    # given
    upsert(api_client, occurred_at=iso(T0), properties={"a": 1}, goal_type="purchase", goal_value=10)
    upsert(api_client, occurred_at=iso(T0), deleted_at=iso(T0 + timedelta(hours=1)))
    # when
    body = upsert(api_client, occurred_at=iso(T0))
    # then
    assert body["operation"] == "restored"
    assert body["event"]["deleted_at"] is None
    fetched = get_event(api_client)
    assert fetched.status_code == 200
    assert fetched.json()["event"]["goal_value"] == 10.0
    assert fetched.json()["event"]["properties"] == {"a": 1}
    listed = api_client.get(LIST, {"workspace_id": "acme", "event_name": "order.completed"}).json()
    assert [e["external_id"] for e in listed["events"]] == ["order_12345"]


def test_restore_with_explicit_null_deleted_at(api_client: APIClient) -> None:
    """deleted_at: null restores just like omitting it (the doc: set to null to restore)."""
    # given
    upsert(api_client, occurred_at=iso(T0))
    upsert(api_client, occurred_at=iso(T0), deleted_at=iso(T0 + timedelta(hours=1)))
    # when
    body = upsert(api_client, occurred_at=iso(T0), deleted_at=None)
    # then
    assert body["operation"] == "restored"
    assert get_event(api_client).status_code == 200


def test_deleting_an_already_deleted_event_with_the_same_time_is_unchanged(api_client: APIClient) -> None:
    """A repeated soft delete with an equal occurred_at changes nothing."""
    # given
    upsert(api_client, occurred_at=iso(T0))
    upsert(api_client, occurred_at=iso(T0), deleted_at=iso(T0 + timedelta(hours=1)))
    entries = TimelineEntry.objects.count()
    # when
    body = upsert(api_client, occurred_at=iso(T0), deleted_at=iso(T0 + timedelta(hours=2)))
    # then
    assert body["operation"] == "unchanged"
    assert TimelineEntry.objects.count() == entries


@pytest.mark.parametrize("event_name", ["order.completed", "subscription/started", "form_submit", "user-signup"])
def test_event_name_formats_round_trip_through_get(api_client: APIClient, event_name: str) -> None:
    """Each event-name format of the doc can be stored and fetched back by get (slash included)."""
    # given
    upsert(api_client, event_name=event_name, external_id="e1")
    # when
    response = get_event(api_client, external_id="e1", event_name=event_name)
    # then
    assert response.status_code == 200
    assert response.json()["event"]["event_name"] == event_name


def test_email_is_trimmed_and_lower_cased_on_event_upsert(api_client: APIClient) -> None:
    """'  Foo@Example.COM ' lands on the contact foo@example.com, and list finds it by either spelling."""
    # given
    upsert(api_client, email="  Foo@Example.COM ")
    # when
    upsert(api_client, email="foo@example.com", external_id="order_2")
    by_other_spelling = api_client.get(LIST, {"workspace_id": "acme", "email": " FOO@example.com"})
    # then
    assert list(Contact.objects.values_list("email", flat=True)) == ["foo@example.com"]
    assert len(by_other_spelling.json()["events"]) == 2
    assert {e["email"] for e in by_other_spelling.json()["events"]} == {"foo@example.com"}


# --- the occurred_at ordering rule -----------------------------------------------------------


@pytest.mark.parametrize("delta", [timedelta(0), -timedelta(seconds=1), -timedelta(days=30)])
def test_equal_or_older_occurred_at_leaves_the_event_unchanged(api_client: APIClient, delta: timedelta) -> None:
    """An equal or older version changes nothing and writes no timeline entry."""
    # given
    original = upsert(
        api_client, occurred_at=iso(T0), properties={"v": 1}, goal_type="purchase", goal_value=10, goal_name="x"
    )
    entries = TimelineEntry.objects.count()
    # when
    body = upsert(api_client, occurred_at=iso(T0 + delta), properties={"v": 2}, goal_type="purchase", goal_value=99)
    # then
    assert body["operation"] == "unchanged"
    assert body["event"] == original["event"]
    assert get_event(api_client).json()["event"] == original["event"]
    assert TimelineEntry.objects.count() == entries


def test_newer_occurred_at_updates_and_replaces_properties_whole(api_client: APIClient) -> None:
    """A newer version is 'updated'; properties are replaced, not merged."""
    # given
    upsert(api_client, occurred_at=iso(T0), properties={"a": 1, "b": 2})
    # when
    body = upsert(api_client, occurred_at=iso(T0 + timedelta(minutes=1)), properties={"c": 3})
    # then
    assert body["operation"] == "updated"
    stored = get_event(api_client).json()["event"]
    assert stored["properties"] == {"c": 3}
    assert stored["occurred_at"] == iso(T0 + timedelta(minutes=1))


def test_newer_version_without_properties_clears_them(api_client: APIClient) -> None:
    """properties replaced whole: omitted means the empty object."""
    # given
    upsert(api_client, occurred_at=iso(T0), properties={"a": 1})
    # when
    upsert(api_client, occurred_at=iso(T0 + timedelta(minutes=1)))
    # then
    assert get_event(api_client).json()["event"]["properties"] == {}


def test_goal_fields_sent_replace_and_goal_fields_omitted_are_kept(api_client: APIClient) -> None:
    """On update, goal_name sent replaces; goal_type and goal_value omitted keep their stored values."""
    # given
    upsert(api_client, occurred_at=iso(T0), goal_type="purchase", goal_value=149.99, goal_name="first order")
    # when
    upsert(api_client, occurred_at=iso(T0 + timedelta(hours=1)), goal_name="renamed")
    # then
    stored = get_event(api_client).json()["event"]
    assert (stored["goal_type"], stored["goal_value"], stored["goal_name"]) == ("purchase", 149.99, "renamed")


def test_goal_fields_omitted_entirely_are_kept(api_client: APIClient) -> None:
    """An update carrying no goal field keeps the whole stored goal."""
    # given
    upsert(api_client, occurred_at=iso(T0), goal_type="subscription", goal_value=20, goal_name="pro")
    # when
    upsert(api_client, occurred_at=iso(T0 + timedelta(hours=1)), properties={"plan": "pro"})
    # then
    stored = get_event(api_client).json()["event"]
    assert (stored["goal_type"], stored["goal_value"], stored["goal_name"]) == ("subscription", 20.0, "pro")


def test_goal_value_sent_replaces_the_stored_value(api_client: APIClient) -> None:
    """A newer version with a new goal_value replaces it (a corrected order total)."""
    # given
    upsert(api_client, occurred_at=iso(T0), goal_type="purchase", goal_value=100)
    # when
    upsert(api_client, occurred_at=iso(T0 + timedelta(hours=1)), goal_type="purchase", goal_value=80.5)
    # then
    assert get_event(api_client).json()["event"]["goal_value"] == 80.5


@pytest.mark.parametrize("delta", [timedelta(hours=1), -timedelta(hours=1)])
def test_update_and_unchanged_answer_the_event_as_stored(api_client: APIClient, delta: timedelta) -> None:
    """The event in an 'updated' or 'unchanged' answer is exactly what customEvents.get returns afterwards."""
    # given
    upsert(api_client, occurred_at=iso(T0), properties={"v": 1}, goal_type="purchase", goal_value=10)
    # when
    body = upsert(api_client, occurred_at=(T0 + delta).isoformat(), properties={"v": 2}, goal_name="n")
    # then
    assert body["operation"] == ("updated" if delta > timedelta(0) else "unchanged")
    assert body["event"] == get_event(api_client).json()["event"]


def test_update_keeps_the_contact_the_event_was_created_for(api_client: APIClient) -> None:
    """The identity is (event_name, external_id): a newer version under another email updates the same row."""
    # given
    upsert(api_client, occurred_at=iso(T0))
    # when
    body = upsert(api_client, occurred_at=iso(T0 + timedelta(hours=1)), email="someone-else@example.com")
    # then
    assert body["operation"] == "updated"
    assert CustomEvent.objects.count() == 1


def test_update_timeline_entry_records_old_and_new_of_changed_fields_only(api_client: APIClient) -> None:
    """The 'update' entry's changes hold {"field": {"old", "new"}} for exactly the fields that changed."""
    # given
    upsert(api_client, occurred_at=iso(T0), properties={"a": 1}, goal_type="purchase", goal_value=10)
    # when
    upsert(
        api_client,
        occurred_at=iso(T0 + timedelta(hours=1)),
        properties={"a": 1},
        goal_type="purchase",
        goal_value=12.5,
    )
    # then
    entry = TimelineEntry.objects.get(operation="update")
    assert entry.kind == "custom_event.order.completed"
    assert set(entry.changes) == {"occurred_at", "goal_value"}
    assert entry.changes["goal_value"] == {"old": 10.0, "new": 12.5}
    assert set(entry.changes["occurred_at"]) == {"old", "new"}
    assert datetime.fromisoformat(entry.changes["occurred_at"]["old"]) == T0
    assert datetime.fromisoformat(entry.changes["occurred_at"]["new"]) == T0 + timedelta(hours=1)


def test_occurred_at_defaults_to_now(api_client: APIClient) -> None:
    """Without occurred_at the event happened now."""
    # given
    before = datetime.now(UTC)
    # when
    body = upsert(api_client)
    # then
    occurred = datetime.fromisoformat(body["event"]["occurred_at"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= occurred <= datetime.now(UTC) + timedelta(seconds=1)


# --- customEvents.get --------------------------------------------------------------------


def test_get_returns_the_stored_event(api_client: APIClient) -> None:
    """customEvents.get answers {"event": ...} as upsert stored it."""
    # given
    created = upsert(api_client, occurred_at=iso(T0), properties={"k": "v"}, goal_type="lead")
    # when
    response = get_event(api_client)
    # then
    assert response.status_code == 200
    assert response.json() == {"event": created["event"]}


def test_get_of_an_absent_event_is_a_404(api_client: APIClient) -> None:
    """No such identity: 404 in the error format."""
    # when
    response = get_event(api_client, external_id="nope")
    # then
    assert response.status_code == 404
    assert set(response.json()) == {"error", "details"}


@pytest.mark.parametrize("missing", ["event_name", "external_id"])
def test_get_without_its_identity_is_a_400(api_client: APIClient, missing: str) -> None:
    """Both identity fields are required."""
    # given
    query = {"workspace_id": "acme", "event_name": "order.completed", "external_id": "order_12345"}
    del query[missing]
    # when
    response = api_client.get(GET, query)
    # then
    assert response.status_code == 400
    assert missing in response.json()["details"]


# --- customEvents.list --------------------------------------------------------------------


@pytest.fixture
def history(workspace: Workspace) -> list[str]:
    """Ann's 6 events of mixed goals an hour apart, plus Bob's orders; returns Ann's ids newest first."""
    ann = [
        EventInputFactory.build(
            email="ann@example.com",
            event_name=name,
            external_id=f"ann_{i}",
            occurred_at=T0 + timedelta(hours=i),
            goal=goal,
        )
        for i, (name, goal) in enumerate(
            [
                ("order.completed", {"goal_type": "purchase", "goal_value": 10}),
                ("form_submit", {"goal_type": "lead"}),
                ("order.completed", {"goal_type": "purchase", "goal_value": 20}),
                ("page.viewed", {}),
                ("subscription/started", {"goal_type": "subscription", "goal_value": 9}),
                ("order.completed", {"goal_type": "purchase", "goal_value": 30}),
            ]
        )
    ]
    bob = [
        EventInputFactory.build(
            email="bob@example.com", external_id=f"bob_{i}", occurred_at=T0 + timedelta(minutes=30 * i)
        )
        for i in range(3)
    ]
    events_create(workspace, ann + bob)
    return [f"ann_{i}" for i in reversed(range(6))]


def test_list_by_email_returns_the_contacts_live_events_newest_first(api_client: APIClient, history: list[str]) -> None:
    """customEvents.list?email= lists that contact's events, newest first."""
    # when
    response = api_client.get(LIST, {"workspace_id": "acme", "email": "ann@example.com"})
    # then
    assert response.status_code == 200
    body = response.json()
    assert [e["external_id"] for e in body["events"]] == history
    assert body["next_cursor"] is None


def test_list_by_event_name_spans_contacts(api_client: APIClient, history: list[str]) -> None:
    """customEvents.list?event_name= lists that name's events of every contact, newest first."""
    # when
    body = api_client.get(LIST, {"workspace_id": "acme", "event_name": "order.completed"}).json()
    # then
    occurred = [e["occurred_at"] for e in body["events"]]
    assert occurred == sorted(occurred, reverse=True)
    assert {e["external_id"] for e in body["events"]} == {"ann_0", "ann_2", "ann_5", "bob_0", "bob_1", "bob_2"}


def test_list_by_email_and_event_name_combines_both(api_client: APIClient, history: list[str]) -> None:
    """Both filters together narrow to one contact's events of one name."""
    # when
    body = api_client.get(
        LIST, {"workspace_id": "acme", "email": "ann@example.com", "event_name": "order.completed"}
    ).json()
    # then
    assert [e["external_id"] for e in body["events"]] == ["ann_5", "ann_2", "ann_0"]


@pytest.mark.parametrize(
    ("goal_type", "expected"),
    [("purchase", ["ann_5", "ann_2", "ann_0"]), ("lead", ["ann_1"]), ("subscription", ["ann_4"]), ("trial", [])],
)
def test_list_filters_by_goal_type(
    api_client: APIClient, history: list[str], goal_type: str, expected: list[str]
) -> None:
    """goal_type narrows the list to events of that goal."""
    # when
    body = api_client.get(LIST, {"workspace_id": "acme", "email": "ann@example.com", "goal_type": goal_type}).json()
    # then
    assert [e["external_id"] for e in body["events"]] == expected


def test_list_rejects_an_unknown_goal_type(api_client: APIClient, history: list[str]) -> None:
    """goal_type must be one of the seven."""
    # when
    response = api_client.get(LIST, {"workspace_id": "acme", "email": "ann@example.com", "goal_type": "refund"})
    # then
    assert response.status_code == 400
    assert "goal_type" in response.json()["details"]


def test_list_needs_email_or_event_name(api_client: APIClient) -> None:
    """Without either filter the list is a 400 naming email."""
    # when
    response = api_client.get(LIST, {"workspace_id": "acme"})
    # then
    assert response.status_code == 400
    assert "email" in response.json()["details"]


def test_list_of_an_unknown_email_is_empty(api_client: APIClient, history: list[str]) -> None:
    """An email with no contact lists nothing (and does not create one)."""
    # when
    body = api_client.get(LIST, {"workspace_id": "acme", "email": "nobody@example.com"}).json()
    # then
    assert body == {"events": [], "count": 0, "next_cursor": None}
    assert not Contact.objects.filter(email="nobody@example.com").exists()


@pytest.fixture
def many_events(workspace: Workspace) -> list[str]:
    """120 of Ann's events, a minute apart, 7 of them soft-deleted; returns the live ids newest first."""
    inputs = [
        EventInputFactory.build(email="ann@example.com", external_id=f"e{i:03d}", occurred_at=T0 + timedelta(minutes=i))
        for i in range(120)
    ]
    events_create(workspace, inputs)
    deleted = {5, 6, 49, 50, 51, 99, 119}
    events_create(
        workspace,
        [
            EventInputFactory.build(
                email="ann@example.com", external_id=f"e{i:03d}", occurred_at=T0 + timedelta(minutes=i), deleted_at=T0
            )
            for i in deleted
        ],
    )
    return [f"e{i:03d}" for i in reversed(range(120)) if i not in deleted]


def test_list_returns_50_by_default(api_client: APIClient, many_events: list[str]) -> None:
    """Without limit a page holds 50 events, and a cursor to the next."""
    # when
    body = api_client.get(LIST, {"workspace_id": "acme", "email": "ann@example.com"}).json()
    # then
    assert [e["external_id"] for e in body["events"]] == many_events[:50]
    assert body["next_cursor"]


def test_list_serves_at_most_100(api_client: APIClient, many_events: list[str]) -> None:
    """limit=100 is served; above 100 is capped at 100 and 0, negative or text give the default 50,
    as Notifuse reads limit (NOTIFUSE-API.md §1.2; this used to be a 400, which broke its clients)."""
    # when
    hundred = api_client.get(LIST, {"workspace_id": "acme", "email": "ann@example.com", "limit": "100"})
    # then
    assert len(hundred.json()["events"]) == 100
    for sent, served in ((101, 100), (10_000, 100), (0, 50), (-1, 50), ("ten", 50)):
        response = api_client.get(LIST, {"workspace_id": "acme", "email": "ann@example.com", "limit": sent})
        assert response.status_code == 200, sent
        assert response.json()["count"] == len(response.json()["events"]) == served, sent


@pytest.mark.parametrize("limit", [1, 7, 50, 100])
def test_cursor_paging_yields_every_live_event_once_in_order(
    api_client: APIClient, many_events: list[str], limit: int
) -> None:
    """Following next_cursor walks all 113 live events exactly once, newest first, then stops."""
    # given
    seen: list[str] = []
    cursor = None
    # when
    for _ in range(200):
        query = {"workspace_id": "acme", "email": "ann@example.com", "limit": str(limit)}
        if cursor:
            query["cursor"] = cursor
        body = api_client.get(LIST, query).json()
        seen.extend(e["external_id"] for e in body["events"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    # then
    assert seen == many_events


def test_cursor_paging_is_stable_when_events_share_occurred_at(api_client: APIClient, workspace: Workspace) -> None:
    """Ties on occurred_at are broken by id, so no event is skipped or repeated across pages."""
    # given
    events_create(
        workspace,
        [EventInputFactory.build(email="ann@example.com", external_id=f"t{i}", occurred_at=T0) for i in range(9)],
    )
    seen: list[str] = []
    cursor = ""
    # when
    while True:
        body = api_client.get(
            LIST, {"workspace_id": "acme", "email": "ann@example.com", "limit": "2", "cursor": cursor}
        ).json()
        seen.extend(e["external_id"] for e in body["events"])
        cursor = body["next_cursor"]
        if not cursor:
            break
    # then
    assert sorted(seen) == [f"t{i}" for i in range(9)]
    assert len(seen) == 9


def test_offset_is_accepted(api_client: APIClient, many_events: list[str]) -> None:
    """offset skips rows, as Notifuse clients send it."""
    # when
    body = api_client.get(
        LIST, {"workspace_id": "acme", "email": "ann@example.com", "limit": "10", "offset": "20"}
    ).json()
    # then
    assert [e["external_id"] for e in body["events"]] == many_events[20:30]


@pytest.mark.parametrize("offset", [10**19, 10**30])
def test_offset_beyond_any_row_is_not_a_500(api_client: APIClient, many_events: list[str], offset: int) -> None:
    """An absurd offset is an empty page or a 400, never a database overflow surfacing as a 500."""
    # when
    response = api_client.get(LIST, {"workspace_id": "acme", "email": "ann@example.com", "offset": str(offset)})
    # then
    assert response.status_code in (200, 400), response.status_code
    if response.status_code == 200:
        assert response.json()["events"] == []


def test_negative_or_non_integer_offset_is_0(api_client: APIClient, many_events: list[str]) -> None:
    """A negative offset, or one that is not an integer, reads as 0 (Notifuse's rule; it was a 400)."""
    for offset in ("-1", "ten"):
        # when
        response = api_client.get(
            LIST, {"workspace_id": "acme", "email": "ann@example.com", "limit": "5", "offset": offset}
        )
        # then
        assert response.status_code == 200, offset
        assert [e["external_id"] for e in response.json()["events"]] == many_events[:5]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        "eyJhIjogMX0",  # {"a": 1}
        "WzEsMl0",  # [1,2]
        "WyJub3QgYSBkYXRlIiwgMV0",  # ["not a date", 1]
        "WyIyMDI1LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgIjEiXQ",  # ["2025-01-01T00:00:00+00:00", "1"]
        "MTI",  # 12
        "_w",  # a byte that is not UTF-8
    ],
)
def test_bad_cursor_is_a_400(api_client: APIClient, many_events: list[str], cursor: str) -> None:
    """A cursor we did not make is a 400 naming cursor, never a 500."""
    # when
    response = api_client.get(LIST, {"workspace_id": "acme", "email": "ann@example.com", "cursor": cursor})
    # then
    assert response.status_code == 400, response.content
    assert "cursor" in response.json()["details"]


def test_cursor_with_an_out_of_range_id_is_not_a_500(api_client: APIClient, many_events: list[str]) -> None:
    """A tampered cursor whose id overflows a bigint is a 400 (or an empty page), never a server error."""
    # given: base64 of ["2025-03-01T12:00:00+00:00", 10**30]
    raw = json.dumps(["2025-03-01T12:00:00+00:00", 10**30]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    # when
    response = api_client.get(LIST, {"workspace_id": "acme", "email": "ann@example.com", "cursor": cursor})
    # then
    assert response.status_code in (200, 400), response.content


def list_queries(client: APIClient, query: dict[str, Any]) -> int:
    client.get(LIST, query)  # warm-up: the key's last_used_at write happens once a minute
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(LIST, query)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("by", ["email", "event_name"])
def test_list_costs_the_same_queries_for_5_and_60_events(api_client: APIClient, workspace: Workspace, by: str) -> None:
    """Listing is a constant number of queries (no N+1 on contacts), whatever the page size."""
    # given
    query = {"workspace_id": "acme", "email": "ann@example.com"} if by == "email" else {"workspace_id": "acme"}
    query |= {"event_name": "order.completed"} if by == "event_name" else {}
    events_create(workspace, [EventInputFactory.build(email="ann@example.com", external_id=f"a{i}") for i in range(5)])
    small = list_queries(api_client, query)
    events_create(
        workspace,
        [EventInputFactory.build(email=f"c{i}@example.com", external_id=f"b{i}") for i in range(55)]
        if by == "event_name"
        else [EventInputFactory.build(email="ann@example.com", external_id=f"b{i}") for i in range(55)],
    )
    # when
    large = list_queries(api_client, query | {"limit": 100})
    # then
    assert small == large
    assert large <= 4
