"""contacts.* as a Notifuse client uses them (NOTIFUSE-API.md §4): the console's request shapes
(TS/contacts.ts), validated against Notifuse's response shapes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from rest_framework.test import APIClient

from contacts.models import Contact, CustomEvent, TimelineEntry
from contacts.tests.notifuse_shapes import assert_contact, assert_error
from events_platform.workspaces.models import Workspace
from segments.models import Segment, SegmentMembership


def upsert(client: APIClient, contact: dict[str, Any]) -> Any:
    """TS/contacts.ts upsert: the envelope."""
    return client.post("/api/contacts.upsert", {"workspace_id": "acme", "contact": contact}, format="json")


def test_upsert_takes_the_envelope_and_answers_email_and_action(api_client: APIClient) -> None:
    """{"workspace_id", "contact": {...}} creates, then updates only the keys sent; the answer is {email, action}."""
    # when
    created = upsert(api_client, {"email": "  Ann@Example.COM ", "first_name": "Ann", "last_name": "Lee"})
    updated = upsert(api_client, {"email": "ann@example.com", "last_name": "Smith", "phone": "+33 1 23"})
    same = upsert(api_client, {"email": "ann@example.com", "last_name": "Smith"})
    # then
    assert created.status_code == 200, created.content
    assert (created.json()["email"], created.json()["action"]) == ("ann@example.com", "create")
    assert (updated.json()["email"], updated.json()["action"]) == ("ann@example.com", "update")
    assert same.json()["action"] == "update"  # Notifuse has no "unchanged"; ours is in operation
    assert same.json()["operation"] == "unchanged"
    contact = Contact.objects.get()
    assert (contact.first_name, contact.last_name) == ("Ann", "Smith")
    assert list(TimelineEntry.objects.order_by("id").values_list("kind", flat=True)) == [
        "contact.created",
        "contact.updated",
    ]


def test_upsert_envelope_null_clears_a_field(api_client: APIClient) -> None:
    """An explicit null clears the field (Go pointers: null is "set to nothing")."""
    # given
    upsert(api_client, {"email": "ann@example.com", "first_name": "Ann", "external_id": "crm-1"})
    # when
    response = upsert(api_client, {"email": "ann@example.com", "first_name": None})
    # then
    assert response.status_code == 200, response.content
    contact = Contact.objects.get()
    assert (contact.first_name, contact.external_id) == ("", "crm-1")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"workspace_id": "acme", "contact": {"first_name": "Ann"}}, "contact.email"),
        ({"workspace_id": "acme", "contact": {"email": "not-an-email"}}, "contact.email"),
        ({"workspace_id": "acme", "contact": {"email": "a@x.io", "first_name": 5}}, "contact.first_name"),
        ({"workspace_id": "acme", "contact": "a@x.io"}, "contact"),
        ({"workspace_id": "acme", "contact": None}, "contact"),
        ({"workspace_id": "acme"}, "email"),
    ],
)
def test_upsert_bad_contact_is_a_json_400_and_writes_nothing(
    api_client: APIClient, body: dict[str, Any], field: str
) -> None:
    """A missing contact, a bad email or a wrong type is 400 {"error"} naming the field."""
    # when
    response = api_client.post("/api/contacts.upsert", body, format="json")
    # then
    assert_error(response, 400)
    assert field in response.json()["details"], response.json()
    assert not Contact.objects.exists()


def test_the_flat_body_is_still_accepted(api_client: APIClient) -> None:
    """This app's own flat spelling keeps working and gets both answers."""
    # when
    response = api_client.post(
        "/api/contacts.upsert", {"workspace_id": "acme", "email": "bo@example.com", "first_name": "Bo"}, format="json"
    )
    # then
    body = response.json()
    assert (body["email"], body["action"], body["operation"]) == ("bo@example.com", "create", "created")
    assert body["contact"]["first_name"] == "Bo"


@pytest.fixture
def people(api_client: APIClient, workspace: Workspace) -> dict[str, Contact]:
    """Three contacts; ann and cy are in segment vip, bo in churned."""
    for email, first, last, external in (
        ("ann@acme.com", "Ann", "Lee", "crm-1"),
        ("bo@globex.com", "Bo", "Marsh", "crm-2"),
        ("cy@acme.com", "Cy", "Leeds", ""),
    ):
        upsert(api_client, {"email": email, "first_name": first, "last_name": last, "external_id": external})
    contacts = {c.email.split("@")[0]: c for c in Contact.objects.all()}
    entered = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for slug, members in (("vip", ("ann", "cy")), ("churned", ("bo",))):
        segment = Segment.objects.create(workspace=workspace, slug=slug, name=slug, tree={}, status="active")
        SegmentMembership.objects.bulk_create(
            [SegmentMembership(segment=segment, contact=contacts[m], entered_at=entered) for m in members]
        )
    return contacts


def listed(client: APIClient, query: str) -> list[str]:
    response = client.get(f"/api/contacts.list?workspace_id=acme&{query}")
    assert response.status_code == 200, response.content
    for contact in response.json()["contacts"]:
        assert_contact(contact)
    return sorted(c["email"] for c in response.json()["contacts"])


@pytest.mark.parametrize(
    ("query", "emails"),
    [
        ("segments[]=vip", ["ann@acme.com", "cy@acme.com"]),
        ("segments[]=churned", ["bo@globex.com"]),
        ("segments[]=vip&segments[]=churned", ["ann@acme.com", "bo@globex.com", "cy@acme.com"]),
        ("segments=churned", ["bo@globex.com"]),
        ("segments[]=nosuch", []),
        ("email=ACME", ["ann@acme.com", "cy@acme.com"]),
        ("first_name=an", ["ann@acme.com"]),
        ("last_name=LEE", ["ann@acme.com", "cy@acme.com"]),
        ("full_name=ann%20lee", ["ann@acme.com"]),
        ("external_id=crm", ["ann@acme.com", "bo@globex.com"]),
        ("segments[]=vip&last_name=leeds", ["cy@acme.com"]),
        ("phone=123", []),
        ("country=FR", []),
        ("list_id=newsletter", []),
        ("phone=&country=", ["ann@acme.com", "bo@globex.com", "cy@acme.com"]),
    ],
)
def test_list_honours_notifuse_filters(
    api_client: APIClient, people: dict[str, Contact], query: str, emails: list[str]
) -> None:
    """segments[] keeps members of any given segment; text filters are case-insensitive substrings,
    ANDed; filters on fields and lists this app does not have match nobody; empty ones are left out."""
    # when / then
    assert listed(api_client, query) == emails


def test_the_contact_drawer_request(api_client: APIClient, people: dict[str, Contact]) -> None:
    """The drawer asks {email, limit:1, with_contact_lists:true} and maps contacts[0].contact_lists."""
    # when
    response = api_client.get(
        "/api/contacts.list",
        {"workspace_id": "acme", "email": "ann@acme.com", "limit": "1", "with_contact_lists": "true"},
    )
    # then
    body = response.json()
    assert "next_cursor" not in body or body["next_cursor"] is None
    (contact,) = body["contacts"]
    assert_contact(contact)
    assert contact["contact_lists"] == []
    assert [m["segment_id"] for m in contact["contact_segments"]] == ["vip"]
    assert contact["contact_segments"][0]["email"] == "ann@acme.com"


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 101}, {"with_contact_lists": "maybe"}])
def test_list_bad_paging_is_a_json_400(api_client: APIClient, query: dict[str, Any]) -> None:
    """limit outside 1-100 or a with_contact_lists that is not a boolean: 400 JSON (Notifuse: plain text)."""
    # when / then
    assert_error(api_client.get("/api/contacts.list", {"workspace_id": "acme", **query}), 400)


def test_count_get_by_email_and_by_external_id(api_client: APIClient, people: dict[str, Contact]) -> None:
    """contacts.count answers total_contacts; getByEmail (trimmed, lower-cased), getByExternalID (exact) a contact."""
    # when
    count = api_client.get("/api/contacts.count", {"workspace_id": "acme"})
    by_email = api_client.get("/api/contacts.getByEmail", {"workspace_id": "acme", "email": " ANN@acme.com "})
    by_external = api_client.get("/api/contacts.getByExternalID", {"workspace_id": "acme", "external_id": "crm-2"})
    # then
    assert count.json() == {"total_contacts": 3}
    assert_contact(by_email.json()["contact"])
    assert by_email.json()["contact"]["email"] == "ann@acme.com"
    assert_contact(by_external.json()["contact"])
    assert by_external.json()["contact"]["email"] == "bo@globex.com"
    assert [m["segment_id"] for m in by_external.json()["contact"]["contact_segments"]] == ["churned"]


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("contacts.getByEmail", {"email": "nobody@acme.com"}, 404),
        ("contacts.getByEmail", {}, 400),
        ("contacts.getByExternalID", {"external_id": "crm-9"}, 404),
        ("contacts.getByExternalID", {"external_id": "CRM-1"}, 404),  # exact match
        ("contacts.getByExternalID", {}, 400),
    ],
)
def test_get_of_an_absent_contact_is_404_and_a_missing_param_400(
    api_client: APIClient, people: dict[str, Contact], path: str, query: dict[str, str], status: int
) -> None:
    """Errors are JSON {"error"}."""
    # when / then
    assert_error(api_client.get(f"/api/{path}", {"workspace_id": "acme", **query}), status)


def test_import_answers_operations_in_input_order_with_inline_errors(api_client: APIClient) -> None:
    """contacts.import writes the valid contacts in one go and answers each item's action; a bad item is
    an inline error (still 200) that stops nothing."""
    # given
    upsert(api_client, {"email": "old@example.com"})
    body = {
        "workspace_id": "acme",
        "contacts": [
            {"email": "new@example.com", "first_name": "New"},
            {"email": "broken"},
            {"email": "OLD@example.com", "last_name": "Timer"},
            "not an object",
            {"email": "new@example.com", "last_name": "Again"},
        ],
        "subscribe_to_lists": ["newsletter"],
    }
    # when
    response = api_client.post("/api/contacts.import", body, format="json")
    # then
    assert response.status_code == 200, response.content
    operations = response.json()["operations"]
    assert [(o["email"], o["action"]) for o in operations] == [
        ("new@example.com", "create"),
        ("broken", "error"),
        ("old@example.com", "update"),
        ("", "error"),
        ("new@example.com", "update"),
    ]
    assert all(isinstance(o["error"], str) and o["error"] for o in operations if o["action"] == "error")
    new = Contact.objects.get(email="new@example.com")
    assert (new.first_name, new.last_name) == ("New", "Again")
    assert Contact.objects.get(email="old@example.com").last_name == "Timer"
    assert Contact.objects.count() == 2


@pytest.mark.parametrize("contacts", [[], "a@x.io", None])
def test_import_without_a_list_of_contacts_is_a_400(api_client: APIClient, contacts: Any) -> None:
    """contacts not an array, or empty: 400 {"error"}."""
    # when / then
    response = api_client.post("/api/contacts.import", {"workspace_id": "acme", "contacts": contacts}, format="json")
    assert_error(response, 400)


def test_import_writes_in_a_constant_number_of_queries(
    api_client: APIClient, django_assert_max_num_queries: Any
) -> None:
    """100 new contacts are written set-based: the statement count does not grow with the batch."""
    # given
    body = {"workspace_id": "acme", "contacts": [{"email": f"c{i}@example.com", "first_name": "C"} for i in range(100)]}
    # when
    with django_assert_max_num_queries(20):
        response = api_client.post("/api/contacts.import", body, format="json")
    # then
    assert response.status_code == 200
    assert Contact.objects.count() == 100
    assert TimelineEntry.objects.filter(kind="contact.created").count() == 100


def test_delete_answers_success_and_erases_the_contacts_events(api_client: APIClient) -> None:
    """contacts.delete answers {"success": true} (and our "deleted"); it erases the events too (documented)."""
    # given
    api_client.post(
        "/api/customEvents.upsert",
        {"workspace_id": "acme", "email": "ann@example.com", "event_name": "signup", "external_id": "s1"},
        format="json",
    )
    # when
    response = api_client.post(
        "/api/contacts.delete", {"workspace_id": "acme", "email": "ann@example.com"}, format="json"
    )
    again = api_client.post("/api/contacts.delete", {"workspace_id": "acme", "email": "ann@example.com"}, format="json")
    bad = api_client.post("/api/contacts.delete", {"workspace_id": "acme", "email": "nope"}, format="json")
    # then
    assert response.status_code == 200
    assert response.json()["success"] is True
    assert not Contact.objects.exists() and not CustomEvent.objects.exists()
    assert_error(again, 404)
    assert_error(bad, 400)
