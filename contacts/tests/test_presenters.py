"""How values, names and timeline entries read: one reading for the timeline, the events page and the admin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from contacts import presenters
from contacts.models import Contact, CustomEvent, TimelineEntry
from contacts.services import EventInput, contact_upsert, events_upsert
from events_platform.workspaces.models import Workspace

PROPERTIES = {
    "items": ["Product A", "Product B"],
    "gift": True,
    "coupon": None,
    "shipping": {"city": "Lyon", "express": False},
    "quantity": 2,
}
READABLE = {
    "items": "Product A, Product B",
    "gift": "true",
    "coupon": "—",
    "shipping": "city: Lyon, express: false",
    "quantity": "2",
}
PYTHON_NOTATION = ("['Product A', 'Product B']", "True", "None", "{'city'")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (19.9, "19.9"),
        ("", "—"),
        ("plain text", "plain text"),
        ([], "—"),
        (["Product A", "Product B"], "Product A, Product B"),
        ([1, None, True], "1, —, true"),
        ({"city": "Lyon", "zip": "69001"}, "city: Lyon, zip: 69001"),
        ([{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}], "(sku: A, qty: 2), (sku: B, qty: 1)"),
        ({"tags": ["new", "vip"], "address": {"city": "Lyon"}}, "tags: (new, vip), address: (city: Lyon)"),
    ],
)
def test_json_values_read_as_a_person_reads_them(value: Any, text: str) -> None:
    """Lists are joined, booleans are true/false, null and empty values are an em dash, objects are key: value."""
    # when / then
    assert presenters.json_text(value) == text


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("order.completed", "Order completed"),
        ("subscription_renewed", "Subscription renewed"),
        ("checkout/step-2.done", "Checkout step 2 done"),
        ("signup", "Signup"),
    ],
)
def test_event_names_read_as_titles(name: str, title: str) -> None:
    """Separators (. _ / -) become spaces and the first letter a capital."""
    # when / then
    assert presenters.event_title(name) == title


def test_kinds_and_fields_have_human_labels() -> None:
    """Timeline kinds and model fields read as labels, unknown ones as words."""
    # when / then
    assert presenters.kind_label("contact.created") == "Contact created"
    assert presenters.kind_label("segment.joined") == "Joined a segment"
    assert presenters.kind_label("custom_event.order.completed") == "Order completed"
    assert presenters.kind_label("rfm.score_changed") == "Rfm score changed"
    assert presenters.field_label(Contact, "first_name") == "First name"
    assert presenters.field_label(CustomEvent, "goal_value") == "Goal value"
    assert presenters.field_label(Contact, "no_such_field") == "No such field"


def _order(workspace: Workspace, **changes: Any) -> EventInput:
    return EventInput(
        email="ann@x.io",
        event_name="order.completed",
        external_id="o-1",
        occurred_at=timezone.now() - timedelta(hours=1),
        properties=PROPERTIES,
        **changes,
    )


def _assert_readable(html: str) -> None:
    for key, text in READABLE.items():
        assert key in html and text in html, key
    for python in PYTHON_NOTATION:
        assert python not in html


def test_timeline_shows_properties_and_labels_readably(member_client: Client, workspace: Workspace) -> None:
    """The contact page: event titles, contact fields by label with their values, properties readable."""
    # given
    contact_upsert(
        workspace_id=workspace.id,
        email="ann@x.io",
        fields={"first_name": "Ann", "last_name": "Lee", "properties": {"tags": ["a", "b"]}},
    )
    contact_upsert(workspace_id=workspace.id, email="ann@x.io", fields={"first_name": "Annie"})
    events_upsert(workspace_id=workspace.id, events=[_order(workspace)])
    contact = Contact.objects.get(email="ann@x.io")
    # when
    html = member_client.get(f"/contacts/{contact.pk}/").content.decode()
    # then
    _assert_readable(html)
    assert ">Order completed<" in html and "order.completed" in html
    assert ">Contact created<" in html and ">Contact updated<" in html
    assert "<dt>First name</dt><dd>Ann</dd>" in html and "<dt>Last name</dt><dd>Lee</dd>" in html
    assert '<dt>First name</dt><dd>Annie <span class="muted">(was Ann)</span></dd>' in html
    assert "<dt>Properties</dt><dd>tags: (a, b)</dd>" in html
    assert "first_name" not in html and "contact.created" not in html.split('id="timeline-list"')[1]
    assert "<dt>tags</dt><dd>a, b</dd>" in html  # the profile's properties too


def test_events_page_shows_properties_readably(member_client: Client, workspace: Workspace) -> None:
    """Each event of the events page lists its first properties, readable, and counts the rest."""
    # given
    events_upsert(workspace_id=workspace.id, events=[_order(workspace)])
    # when
    html = member_client.get("/events/").content.decode()
    # then
    for key in ("items", "gift", "coupon"):
        assert f"{key}: {READABLE[key]}" in html
    assert "+2 more" in html
    for python in PYTHON_NOTATION:
        assert python not in html


def test_admin_event_page_shows_properties_readably(admin_client: Client, workspace: Workspace) -> None:
    """The admin's event page shows the properties as the pages do, above the stored JSON."""
    # given
    events_upsert(workspace_id=workspace.id, events=[_order(workspace)])
    event = CustomEvent.objects.get()
    # when
    html = admin_client.get(reverse("admin:contacts_customevent_change", args=[event.pk])).content.decode()
    # then
    for key, text in READABLE.items():
        assert f"<td>{key}</td><td>{text}</td>" in html
    assert "&quot;Product A&quot;" in html  # the stored JSON, for developers


def test_update_entries_name_the_changed_fields_by_label(workspace: Workspace) -> None:
    """An event update lists what changed as labels ("Occurred at", "Properties")."""
    # given
    first = _order(workspace)
    events_upsert(workspace_id=workspace.id, events=[first])
    later = EventInput(**{**first.__dict__, "occurred_at": first.occurred_at + timedelta(minutes=5), "properties": {}})
    events_upsert(workspace_id=workspace.id, events=[later])
    entry = TimelineEntry.objects.get(operation=TimelineEntry.Operation.UPDATE)
    # when
    item = presenters.TimelineItem.of(entry)
    # then
    assert item.title == "Order completed"
    assert item.changed_fields == ["Occurred at", "Properties"]
