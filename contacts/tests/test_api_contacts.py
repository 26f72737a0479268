"""contacts.upsert / .get / .list / .delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from rest_framework.test import APIClient

from contacts.models import Contact, CustomEvent, TimelineEntry
from contacts.tests.factories import EventInputFactory, events_create
from events_platform.workspaces.models import Workspace

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def contact_upsert(client: APIClient, **fields: Any) -> Any:
    return client.post("/api/contacts.upsert", {"workspace_id": "acme", **fields}, format="json")


def test_upsert_creates_a_contact_with_a_normalised_email(api_client: APIClient) -> None:
    """'  Foo@Example.COM ' is stored as foo@example.com; the contact is created with a timeline entry."""
    # when
    response = contact_upsert(api_client, email="  Foo@Example.COM ", first_name="Foo", properties={"plan": "pro"})
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["operation"] == "created"
    assert body["contact"]["email"] == "foo@example.com"
    assert body["contact"]["first_name"] == "Foo"
    assert body["contact"]["properties"] == {"plan": "pro"}
    contact = Contact.objects.get()
    assert contact.email == "foo@example.com"
    entry = TimelineEntry.objects.get()
    assert entry.kind == "contact.created"
    assert entry.changes["email"] == {"new": "foo@example.com"}
    assert entry.changes["first_name"] == {"new": "Foo"}


def test_upsert_of_a_known_email_updates_only_the_fields_sent(api_client: APIClient) -> None:
    """Fields sent change (properties whole); fields omitted are kept; a contact.updated entry records the diff."""
    # given
    contact_upsert(api_client, email="foo@example.com", first_name="Foo", last_name="Bar", properties={"a": 1})
    # when
    response = contact_upsert(api_client, email="FOO@example.com", last_name="Baz", properties={"b": 2})
    # then
    body = response.json()
    assert body["operation"] == "updated"
    assert (body["contact"]["first_name"], body["contact"]["last_name"]) == ("Foo", "Baz")
    assert body["contact"]["properties"] == {"b": 2}
    assert Contact.objects.count() == 1
    entry = TimelineEntry.objects.get(kind="contact.updated")
    assert entry.operation == "update"
    assert entry.changes == {
        "last_name": {"old": "Bar", "new": "Baz"},
        "properties": {"old": {"a": 1}, "new": {"b": 2}},
    }


def test_upsert_with_nothing_new_is_unchanged(api_client: APIClient) -> None:
    """Sending the same data again writes nothing."""
    # given
    contact_upsert(api_client, email="foo@example.com", first_name="Foo")
    entries = TimelineEntry.objects.count()
    # when
    response = contact_upsert(api_client, email="foo@example.com", first_name="Foo")
    # then
    assert response.json()["operation"] == "unchanged"
    assert TimelineEntry.objects.count() == entries


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "nope"),
        ("email", ""),
        ("email", {"a": 1}),
        ("properties", ["a"]),
        ("properties", None),
        ("first_name", "x" * 151),
    ],
)
def test_upsert_rejects_invalid_fields(api_client: APIClient, field: str, value: Any) -> None:
    """Invalid contact fields are a 400 naming the field; nothing is written."""
    # given
    body = {"email": "foo@example.com", field: value}
    # when
    response = contact_upsert(api_client, **body)
    # then
    assert response.status_code == 400
    assert field in response.json()["details"]
    assert not Contact.objects.exists()


def test_get_finds_a_contact_by_any_spelling_of_its_email(api_client: APIClient) -> None:
    """contacts.get trims and lower-cases the email it is given."""
    # given
    contact_upsert(api_client, email="foo@example.com", first_name="Foo")
    # when
    response = api_client.get("/api/contacts.get", {"workspace_id": "acme", "email": "  Foo@Example.COM "})
    # then
    assert response.status_code == 200
    assert response.json()["contact"]["first_name"] == "Foo"
    assert response.json()["contact"]["email"] == "foo@example.com"


def test_get_of_an_unknown_email_is_a_404(api_client: APIClient) -> None:
    """No such contact: 404 in the error format."""
    # when
    response = api_client.get("/api/contacts.get", {"workspace_id": "acme", "email": "nobody@example.com"})
    # then
    assert response.status_code == 404
    assert set(response.json()) == {"error", "details"}


def test_contact_created_by_event_upsert_is_found_by_contacts_get(api_client: APIClient) -> None:
    """The contact an event created on the fly is an ordinary contact."""
    # given
    api_client.post(
        "/api/customEvents.upsert",
        {"workspace_id": "acme", "email": " Zed@Example.com", "event_name": "a", "external_id": "1"},
        format="json",
    )
    # when
    response = api_client.get("/api/contacts.get", {"workspace_id": "acme", "email": "zed@example.com"})
    # then
    assert response.status_code == 200


@pytest.fixture
def contacts(workspace: Workspace) -> list[str]:
    """25 contacts made by events; returns their emails newest first."""
    for i in range(25):
        events_create(
            workspace, [EventInputFactory.build(email=f"user{i:02d}@{'shop' if i % 2 else 'crm'}.example.com")]
        )
    return [f"user{i:02d}@{'shop' if i % 2 else 'crm'}.example.com" for i in reversed(range(25))]


def test_list_returns_contacts_newest_first(api_client: APIClient, contacts: list[str]) -> None:
    """contacts.list lists newest first."""
    # when
    body = api_client.get("/api/contacts.list", {"workspace_id": "acme"}).json()
    # then
    assert [c["email"] for c in body["contacts"]] == contacts
    assert body["next_cursor"] is None


def test_list_searches_by_email_substring(api_client: APIClient, contacts: list[str]) -> None:
    """email= matches a case-insensitive substring of the address."""
    # when
    body = api_client.get("/api/contacts.list", {"workspace_id": "acme", "email": "@SHOP."}).json()
    # then
    assert [c["email"] for c in body["contacts"]] == [e for e in contacts if "@shop." in e]


def every_page(client: APIClient, limit: str) -> list[str]:
    """The emails of contacts.list, page after page of ``limit`` following next_cursor, in order."""
    seen: list[str] = []
    cursor = ""
    while True:
        body = client.get("/api/contacts.list", {"workspace_id": "acme", "limit": limit, "cursor": cursor}).json()
        seen.extend(c["email"] for c in body["contacts"])
        cursor = body["next_cursor"]
        if not cursor:
            return seen


def test_list_cursor_pages_through_every_contact_once(api_client: APIClient, contacts: list[str]) -> None:
    """next_cursor walks every contact once, in order."""
    # when
    seen = every_page(api_client, "4")
    # then
    assert seen == contacts


def test_list_cursor_pages_contacts_created_in_one_batch(api_client: APIClient, workspace: Workspace) -> None:
    """Contacts created by one import share created_at; paging still yields each once."""
    # given
    events_create(workspace, [EventInputFactory.build(email=f"b{i}@example.com") for i in range(10)])
    # when
    seen = every_page(api_client, "3")
    # then
    assert sorted(seen) == sorted(f"b{i}@example.com" for i in range(10))


def test_list_rejects_a_bad_cursor(api_client: APIClient, contacts: list[str]) -> None:
    """A cursor we did not make is a 400."""
    # when
    response = api_client.get("/api/contacts.list", {"workspace_id": "acme", "cursor": "nope"})
    # then
    assert response.status_code == 400
    assert "cursor" in response.json()["details"]


def test_delete_erases_the_contact_its_events_and_its_timeline(api_client: APIClient, workspace: Workspace) -> None:
    """contacts.delete removes the contact with all its events (deleted ones too) and timeline; others stay."""
    # given
    events_create(
        workspace,
        [
            EventInputFactory.build(email="gone@example.com", external_id="g1"),
            EventInputFactory.build(email="gone@example.com", external_id="g2", deleted_at=T0),
            EventInputFactory.build(email="stays@example.com", external_id="s1"),
        ],
    )
    # when
    response = api_client.post(
        "/api/contacts.delete", {"workspace_id": "acme", "email": " Gone@Example.com"}, format="json"
    )
    # then
    assert response.status_code == 200
    assert response.json() == {"success": True, "deleted": True}
    assert list(Contact.objects.values_list("email", flat=True)) == ["stays@example.com"]
    assert list(CustomEvent.objects.values_list("external_id", flat=True)) == ["s1"]
    assert set(TimelineEntry.objects.values_list("contact__email", flat=True)) == {"stays@example.com"}
    fetched = api_client.get(
        "/api/customEvents.get", {"workspace_id": "acme", "event_name": "order.completed", "external_id": "g1"}
    )
    assert fetched.status_code == 404


def test_delete_of_an_unknown_email_is_a_404(api_client: APIClient, row_counts: Any) -> None:
    """Nothing to erase: 404, and nothing changes."""
    # given
    before = row_counts()
    # when
    response = api_client.post(
        "/api/contacts.delete", {"workspace_id": "acme", "email": "nobody@example.com"}, format="json"
    )
    # then
    assert response.status_code == 404
    assert row_counts() == before


def test_delete_is_documented_as_an_erasure(api_client: APIClient) -> None:
    """The OpenAPI description of contacts.delete says it erases events and timeline."""
    # when
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    # then
    description = schema["paths"]["/api/contacts.delete"]["post"]["description"]
    assert "events" in description
    assert "timeline" in description
