"""The outbox: written in the transaction of each change, only for wanted types, in constant
statements per batch; fanned out to deliveries with bodies the API's serializers render."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts import services as contacts
from contacts.models import CustomEvent
from contacts.services import EventInput
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookOutbox

from .conftest import subscribe

URL = "https://hooks.example.com/in"


@pytest.fixture(autouse=True)
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """hooks.example.com resolves to a public address (the outside world, replaced)."""
    import ipaddress

    from webhooks import network

    monkeypatch.setattr(network, "resolve", lambda host, port: [ipaddress.ip_address("93.184.216.34")])


def _event(n: int, **overrides: Any) -> EventInput:
    fields: dict[str, Any] = {
        "email": f"user{n % 7}@example.com",
        "event_name": "order.completed",
        "external_id": f"order_{n}",
        "occurred_at": timezone.now() - timedelta(hours=1),
        "goal": {"goal_type": "purchase", "goal_value": Decimal("10.50")},
    }
    fields.update(overrides)
    return EventInput(**fields)


def _types() -> list[str]:
    return list(WebhookOutbox.objects.order_by("id").values_list("event_type", flat=True))


def test_nothing_is_recorded_without_a_subscription(workspace: Any) -> None:
    """A workspace nobody subscribes to writes no outbox rows."""
    # given no subscription
    # when events and contacts are written
    contacts.events_upsert(workspace_id=workspace.id, events=[_event(1), _event(2)])
    contacts.contact_upsert(workspace_id=workspace.id, email="new@example.com", fields={"first_name": "N"})
    # then
    assert WebhookOutbox.objects.count() == 0


def test_only_wanted_types_are_recorded(workspace: Any) -> None:
    """A subscription to custom_event.created alone gets no contact.created rows written."""
    # given
    subscribe(workspace, URL, event_types=["custom_event.created"])
    # when a new contact's first event arrives
    contacts.events_upsert(workspace_id=workspace.id, events=[_event(1)])
    # then
    assert _types() == ["custom_event.created"]


def test_a_disabled_subscription_wants_nothing(workspace: Any) -> None:
    """Disabled subscriptions do not cause outbox rows."""
    # given
    subscription = subscribe(workspace, URL)
    services.subscription_set_enabled(subscription=subscription, enabled=False)
    # when
    contacts.events_upsert(workspace_id=workspace.id, events=[_event(1)])
    # then
    assert WebhookOutbox.objects.count() == 0


def test_another_workspaces_subscription_wants_nothing(workspace: Any) -> None:
    """A subscription of workspace B does not make workspace A record changes."""
    # given
    from events_platform.workspaces.services import workspace_create

    other = workspace_create(workspace_id="other", name="Other")
    subscribe(other, URL)
    # when
    contacts.events_upsert(workspace_id=workspace.id, events=[_event(1)])
    # then
    assert WebhookOutbox.objects.count() == 0


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ({}, None, ["custom_event.created"]),
        ({"deleted_at": "now"}, None, ["custom_event.deleted"]),
        ({}, {"deleted_at": "now"}, ["custom_event.created", "custom_event.deleted"]),
        ({"deleted_at": "now"}, {}, ["custom_event.deleted", "custom_event.created"]),
        ({}, {"newer": True}, ["custom_event.created", "custom_event.updated"]),
        ({}, {}, ["custom_event.created"]),
        ({"deleted_at": "now"}, {"deleted_at": "now", "newer": True}, ["custom_event.deleted"]),
    ],
    ids=["insert", "insert-deleted", "delete", "restore", "update", "unchanged", "update-while-deleted"],
)
def test_event_types_follow_notifuses_rules(
    workspace: Any, first: dict[str, Any], second: dict[str, Any] | None, expected: list[str]
) -> None:
    """Restore emits created, an insert already deleted emits deleted, an unchanged upsert nothing,
    and an update of an event that stays deleted nothing."""
    # given
    subscribe(workspace, URL, event_types=["custom_event.created", "custom_event.updated", "custom_event.deleted"])
    base = timezone.now() - timedelta(hours=2)

    def version(spec: dict[str, Any]) -> EventInput:
        return _event(
            1,
            occurred_at=base + (timedelta(minutes=5) if spec.get("newer") else timedelta(0)),
            deleted_at=timezone.now() if spec.get("deleted_at") else None,
        )

    # when
    contacts.events_upsert(workspace_id=workspace.id, events=[version(first)])
    if second is not None:
        contacts.events_upsert(workspace_id=workspace.id, events=[version(second)])
    # then
    assert _types() == expected


def test_contact_writes_and_erasure_are_recorded(workspace: Any) -> None:
    """contacts.upsert creates and updates, contacts.delete erases: each one row, the erased contact as it was."""
    # given
    subscribe(workspace, URL, event_types=["contact.created", "contact.updated", "contact.deleted"])
    # when
    contacts.contact_upsert(workspace_id=workspace.id, email="ada@example.com", fields={"first_name": "Ada"})
    contacts.contact_upsert(workspace_id=workspace.id, email="ada@example.com", fields={"first_name": "Ada"})
    contacts.contact_upsert(workspace_id=workspace.id, email="ada@example.com", fields={"last_name": "L"})
    contacts.contact_delete(workspace_id=workspace.id, email="ada@example.com")
    # then (the unchanged upsert wrote nothing)
    assert _types() == ["contact.created", "contact.updated", "contact.deleted"]
    erased = WebhookOutbox.objects.get(event_type="contact.deleted").data
    assert (erased["email"], erased["first_name"], erased["last_name"]) == ("ada@example.com", "Ada", "L")


def test_a_batch_of_new_and_stored_events_records_each_change_once(workspace: Any) -> None:
    """A batch whose events are not all new: the common-case statement (every event new) records
    nothing, the batch's second statement records every change, the new ones' included."""
    # given
    subscribe(workspace, URL, event_types=["custom_event.created", "custom_event.updated", "contact.created"])
    contacts.events_upsert(workspace_id=workspace.id, events=[_event(1, email="old@example.com")])
    WebhookOutbox.objects.all().delete()
    # when: event 1 newer, event 2 new (a new contact)
    contacts.events_upsert(
        workspace_id=workspace.id,
        events=[_event(1, email="old@example.com", occurred_at=timezone.now()), _event(2, email="new@example.com")],
    )
    # then
    assert sorted(_types()) == ["contact.created", "custom_event.created", "custom_event.updated"]
    created = WebhookOutbox.objects.get(event_type="custom_event.created").data
    assert created["id"] == CustomEvent.objects.get(external_id="order_2").pk


def test_a_rolled_back_change_records_nothing(workspace: Any) -> None:
    """The outbox row commits or rolls back with the change itself."""
    # given
    subscribe(workspace, URL)
    # when the transaction that wrote the events fails afterwards
    with pytest.raises(RuntimeError), transaction.atomic():
        contacts.events_upsert(workspace_id=workspace.id, events=[_event(1), _event(2)])
        assert WebhookOutbox.objects.count() > 0
        raise RuntimeError("later failure")
    # then
    assert WebhookOutbox.objects.count() == 0


def test_an_import_costs_the_same_statements_for_1_or_50_events(workspace: Any) -> None:
    """With a subscription on every type, the outbox adds one statement per batch, whatever its size."""
    # given
    subscribe(workspace, URL)
    contacts.events_upsert(workspace_id=workspace.id, events=[_event(0, email="warm@example.com")])
    counts = []
    for size, start in ((1, 100), (50, 200)):
        batch = [_event(start + i, email=f"c{start + i}@example.com") for i in range(size)]
        with CaptureQueriesContext(connection) as captured:
            contacts.events_upsert(workspace_id=workspace.id, events=batch)
        counts.append(len(captured.captured_queries))
    # then
    assert counts[0] == counts[1]
    assert WebhookOutbox.objects.filter(event_type="custom_event.created").count() == 52


def test_the_outbox_costs_the_same_with_or_without_subscriptions(workspace: Any) -> None:
    """The wanted-types check is part of the insert: a workspace with or without subscriptions
    pays the same single statement per batch."""

    # given
    def run(start: int) -> int:
        batch = [_event(start + i, email=f"d{start + i}@example.com") for i in range(20)]
        with CaptureQueriesContext(connection) as captured:
            contacts.events_upsert(workspace_id=workspace.id, events=batch)
        return len(captured.captured_queries)

    without = run(0)
    subscribe(workspace, URL)
    # when
    with_subscription = run(100)
    # then
    assert with_subscription == without
    assert WebhookOutbox.objects.count() == 40  # 20 contacts created + 20 events


def test_without_an_enabled_subscription_an_ingest_write_builds_no_outbox_rows(workspace: Any) -> None:
    """PostgreSQL: the contacts' statement reads the outbox recorder's probe (an enabled
    subscription exists), so a write in a workspace without one sends no outbox INSERT at all,
    new events and stored ones alike; once a subscription is enabled the next write records."""
    if connection.vendor != "postgresql":
        pytest.skip("the probe rides in the PostgreSQL contacts statement; elsewhere the recorder always runs")
    outbox = f'INSERT INTO "{WebhookOutbox._meta.db_table}"'

    def outbox_inserts(batch: list[EventInput]) -> int:
        with CaptureQueriesContext(connection) as captured:
            contacts.events_upsert(workspace_id=workspace.id, events=batch)
        return sum(outbox in q["sql"] for q in captured.captured_queries)

    subscription = subscribe(workspace, URL)
    services.subscription_set_enabled(subscription=subscription, enabled=False)
    later = timezone.now()
    # when: new events, then the same events again, newer (the stored-events path)
    assert outbox_inserts([_event(1), _event(2)]) == 0
    assert outbox_inserts([_event(1, occurred_at=later), _event(3)]) == 0
    # then: nothing recorded; enabled, the next write records its changes
    assert WebhookOutbox.objects.count() == 0
    services.subscription_set_enabled(subscription=subscription, enabled=True)
    assert outbox_inserts([_event(2, occurred_at=later), _event(4)]) >= 1  # 2: the all-new try, then the update
    # order_2 updated; order_4 created, with its contact (user4's first write)
    assert sorted(_types()) == ["contact.created", "custom_event.created", "custom_event.updated"]


def test_fan_out_renders_the_event_as_customevents_get_returns_it(workspace: Any, api_client: Any) -> None:
    """data.custom_event of the body equals customEvents.get's event; the envelope is Notifuse's."""
    # given
    subscription = subscribe(workspace, URL, event_types=["custom_event.created"])
    event = _event(
        1,
        properties={"items": ["A", "B"], "currency": "USD", "nested": {"z": 1, "a": [1, 2]}},
        goal={"goal_type": "purchase", "goal_value": Decimal("149.99"), "goal_name": "first order"},
        integration_id="shopify",
    )
    contacts.events_upsert(workspace_id=workspace.id, events=[event])
    # when
    taken, created = services.outbox_fan_out()
    # then
    assert (taken, created) == (1, 1)
    delivery = WebhookDelivery.objects.get()
    body = json.loads(delivery.body)
    served = api_client.get(
        "/api/customEvents.get",
        {"workspace_id": workspace.id, "event_name": "order.completed", "external_id": "order_1"},
    ).json()["event"]
    assert body["data"] == {"custom_event": served}
    assert body["id"] == delivery.message_id
    assert body["type"] == "custom_event.created"
    assert body["workspace_id"] == workspace.id
    assert body["timestamp"].endswith("Z")
    assert delivery.subscription_id == subscription.pk
    assert WebhookOutbox.objects.count() == 0


def test_fan_out_renders_the_contact_as_contacts_get_returns_it(workspace: Any, api_client: Any) -> None:
    """data.contact of a contact.updated body is the contact object contacts.get returns."""
    # given
    subscribe(workspace, URL, event_types=["contact.updated"])
    contacts.contact_upsert(workspace_id=workspace.id, email="ada@example.com", fields={})
    contacts.contact_upsert(
        workspace_id=workspace.id, email="ada@example.com", fields={"first_name": "Ada", "properties": {"plan": "pro"}}
    )
    # when
    services.outbox_fan_out()
    # then
    body = json.loads(WebhookDelivery.objects.get().body)
    served = api_client.get("/api/contacts.get", {"workspace_id": workspace.id, "email": "ada@example.com"}).json()
    # the segments and RFM layers' extensions; membership and group changes have their own events
    served["contact"].pop("segments")
    served["contact"].pop("contact_segments")
    served["contact"].pop("rfm")
    assert body["data"] == served


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["order.completed:order_1", "signup:s_1", "lead.created:l_1"]),
        ({"goal_types": ["purchase"]}, ["order.completed:order_1"]),
        ({"event_names": ["signup", "lead.created"]}, ["signup:s_1", "lead.created:l_1"]),
        ({"goal_types": ["lead"], "event_names": ["signup", "lead.created"]}, ["lead.created:l_1"]),
    ],
    ids=["none", "goal_types", "event_names", "both"],
)
def test_custom_event_filters(workspace: Any, filters: dict[str, Any], expected: list[str]) -> None:
    """goal_types and event_names each narrow custom_event deliveries; together they are ANDed;
    an event without a goal never passes a goal filter."""
    # given
    subscribe(workspace, URL, event_types=["custom_event.created"], **filters)
    contacts.events_upsert(
        workspace_id=workspace.id,
        events=[
            _event(1),
            _event(2, event_name="signup", external_id="s_1", goal={}),
            _event(3, event_name="lead.created", external_id="l_1", goal={"goal_type": "lead"}),
        ],
    )
    # when
    services.outbox_fan_out()
    # then
    sent = [json.loads(d.body)["data"]["custom_event"] for d in WebhookDelivery.objects.order_by("id")]
    assert sorted(f"{e['event_name']}:{e['external_id']}" for e in sent) == sorted(expected)


def test_a_subscription_created_later_gets_no_earlier_changes(workspace: Any) -> None:
    """Fan-out gives a subscription only changes recorded after it existed."""
    # given
    subscribe(workspace, URL, name="first")
    contacts.events_upsert(workspace_id=workspace.id, events=[_event(1)])
    subscribe(workspace, URL, name="second")
    # when
    services.outbox_fan_out()
    # then
    assert set(WebhookDelivery.objects.values_list("subscription__name", flat=True)) == {"first"}


def test_a_batch_of_new_events_sends_their_values_once_and_renders_each_as_customevents_get(
    workspace: Any, api_client: Any
) -> None:
    """A batch of new events (the common case): on PostgreSQL their outbox rows are built from
    the rows the statement inserts, so each event's values travel to the database once; every
    body is still what customEvents.get returns, one inserted deleted is a custom_event.deleted."""
    # given
    subscribe(workspace, URL, event_types=["custom_event.created", "custom_event.deleted"])
    batch = [
        _event(1, properties={"marker": "mark-1", "ünï": "çödé", "n": 1.5, "deep": {"b": [1, {"c": None}], "a": ""}}),
        _event(2, properties={"marker": "mark-2"}, goal={"goal_type": "purchase", "goal_value": Decimal("150")}),
        _event(3, properties={"marker": "mark-3"}, goal={}, integration_id="crm"),
        _event(4, properties={"marker": "mark-4"}, deleted_at=timezone.now()),
    ]
    sent_params: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent_params.extend(str(p) for p in params or ())
        return execute(sql, params, many, context)

    # when
    with connection.execute_wrapper(record):
        contacts.events_upsert(workspace_id=workspace.id, events=batch)
    services.outbox_fan_out()
    # then
    sent = {}
    for delivery in WebhookDelivery.objects.all():
        body = json.loads(delivery.body)
        sent[body["data"]["custom_event"]["external_id"]] = (body["type"], body["data"]["custom_event"])
    assert {k: t for k, (t, _) in sent.items()} == {
        "order_1": "custom_event.created",
        "order_2": "custom_event.created",
        "order_3": "custom_event.created",
        "order_4": "custom_event.deleted",
    }
    for external_id in ("order_1", "order_2", "order_3"):
        served = api_client.get(
            "/api/customEvents.get",
            {"workspace_id": workspace.id, "event_name": "order.completed", "external_id": external_id},
        ).json()["event"]
        assert sent[external_id][1] == served
    assert sent["order_4"][1]["deleted_at"] is not None
    sent_text = " ".join(sent_params)
    travels = 1 if connection.vendor == "postgresql" else 2  # elsewhere the outbox is a statement of its own
    assert [sent_text.count(f"mark-{n}") for n in range(1, 5)] == [travels] * 4


def test_the_same_new_event_twice_in_a_batch_records_its_creation_and_its_update(workspace: Any) -> None:
    """A key sent twice, the second newer: two changes of one event, each recorded with the
    values it had right after it (not the row's final values twice)."""
    # given
    subscribe(workspace, URL, event_types=["custom_event.created", "custom_event.updated"])
    first = _event(1, properties={"v": 1})
    second = _event(1, properties={"v": 2}, occurred_at=first.occurred_at + timedelta(minutes=1))
    # when
    contacts.events_upsert(workspace_id=workspace.id, events=[first, second, _event(2)])
    # then
    rows = list(WebhookOutbox.objects.order_by("id"))
    recorded = sorted((r.event_type, r.data["external_id"], r.data["properties"]) for r in rows)
    assert recorded == [
        ("custom_event.created", "order_1", {"v": 1}),
        ("custom_event.created", "order_2", {}),
        ("custom_event.updated", "order_1", {"v": 2}),
    ]
