"""Notifuse's contact profile fields (NOTIFUSE-API.md §4.1): timezone, language, phone, address,
custom_string/number/datetime/json_1..5. Sent as the console and the openapi file send them, stored
(as keys of ``properties``, where the segment engine's filters read them), type-checked, answered
top-level only when set, filtered by contacts.list."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from contacts.models import PROFILE_FIELD_TYPES, Contact, TimelineEntry
from contacts.tests.notifuse_shapes import (
    CONTACT_DATETIME_FIELDS,
    CONTACT_JSON_FIELDS,
    CONTACT_NUMBER_FIELDS,
    assert_contact,
    assert_error,
)

# Every profile field, as a Notifuse client sends a full contact (openapi UpsertContactRequest).
FULL_PROFILE: dict[str, Any] = {
    "timezone": "Europe/Paris",
    "language": "fr",
    "phone": "+33 1 23 45 67 89",
    "address_line_1": "1 rue de la Paix",
    "address_line_2": "Bât. B",
    "country": "FR",
    "postcode": "75002",
    "state": "Île-de-France",
    "job_title": "Buyer",
    **{f"custom_string_{n}": f"s{n}" for n in range(1, 6)},
    **{f"custom_number_{n}": n * 1.5 for n in range(1, 6)},
    **{f"custom_datetime_{n}": f"2026-03-0{n}T10:00:00Z" for n in range(1, 6)},
    "custom_json_1": {"plan": "pro", "seats": 3},
    "custom_json_2": ["a", "b"],
    "custom_json_3": {"nested": {"deep": [1, 2]}},
    "custom_json_4": [],
    "custom_json_5": {},
}


def upsert(client: APIClient, contact: dict[str, Any]) -> Any:
    return client.post("/api/contacts.upsert", {"workspace_id": "acme", "contact": contact}, format="json")


def get_contact(client: APIClient, email: str = "ann@example.com") -> dict[str, Any]:
    response = client.get("/api/contacts.getByEmail", {"workspace_id": "acme", "email": email})
    assert response.status_code == 200, response.content
    contact: dict[str, Any] = response.json()["contact"]
    assert_contact(contact)
    return contact


def test_every_profile_field_is_stored_and_answered_top_level(api_client: APIClient) -> None:
    """A contact sent with every profile field reads back with each of them, top-level and typed,
    on getByEmail, getByExternalID, get and list; properties holds none of them."""
    # when
    response = upsert(api_client, {"email": "ann@example.com", "external_id": "crm-1", **FULL_PROFILE})
    # then
    assert response.status_code == 200, response.content
    assert response.json()["action"] == "create"
    answers = [
        get_contact(api_client),
        api_client.get("/api/contacts.getByExternalID", {"workspace_id": "acme", "external_id": "crm-1"}).json()[
            "contact"
        ],
        api_client.get("/api/contacts.get", {"workspace_id": "acme", "email": "ann@example.com"}).json()["contact"],
        api_client.get("/api/contacts.list", {"workspace_id": "acme"}).json()["contacts"][0],
    ]
    for contact in [*answers, response.json()["contact"]]:  # the upsert's own contact too (ours)
        assert {key: contact.get(key) for key in FULL_PROFILE} == FULL_PROFILE
        assert contact["properties"] == {}
    for contact in answers:
        assert_contact(contact)
    stored = Contact.objects.get().properties
    assert stored == FULL_PROFILE  # one truth: the keys the segment engine reads


def test_fields_not_set_are_absent(api_client: APIClient) -> None:
    """A contact without profile fields has none of their keys (present only when set)."""
    # when
    upsert(api_client, {"email": "ann@example.com", "phone": "123"})
    # then
    contact = get_contact(api_client)
    assert contact["phone"] == "123"
    for key in FULL_PROFILE:
        if key != "phone":
            assert key not in contact, key


def test_only_the_keys_sent_change_and_null_clears(api_client: APIClient) -> None:
    """A later upsert changes the keys it sends, clears the ones sent as null, keeps the rest."""
    # given
    upsert(api_client, {"email": "ann@example.com", **FULL_PROFILE})
    # when
    response = upsert(
        api_client,
        {"email": "ann@example.com", "phone": "999", "custom_number_1": None, "custom_json_2": None, "country": None},
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json()["operation"] == "updated"
    contact = get_contact(api_client)
    assert contact["phone"] == "999"
    for cleared in ("custom_number_1", "custom_json_2", "country"):
        assert cleared not in contact
        assert cleared not in Contact.objects.get().properties
    assert contact["custom_number_2"] == 3.0
    assert contact["custom_datetime_5"] == "2026-03-05T10:00:00Z"


def test_a_profile_change_is_on_the_timeline_under_its_name(api_client: APIClient) -> None:
    """contact.updated names each profile field that changed, as Notifuse names its columns; an
    upsert repeating the same values writes nothing."""
    # given
    upsert(api_client, {"email": "ann@example.com", "first_name": "Ann", "custom_number_1": 5})
    # when
    upsert(api_client, {"email": "ann@example.com", "phone": "+33 1", "custom_number_1": 7})
    same = upsert(api_client, {"email": "ann@example.com", "phone": "+33 1", "custom_number_1": 7})
    # then
    assert same.json()["operation"] == "unchanged"
    created, updated = TimelineEntry.objects.order_by("id")
    assert created.changes == {
        "email": {"new": "ann@example.com"},
        "first_name": {"new": "Ann"},
        "custom_number_1": {"new": 5},
    }
    assert updated.changes == {"phone": {"old": None, "new": "+33 1"}, "custom_number_1": {"old": 5, "new": 7}}


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("2026-03-01T12:00:00.123456789+02:00", "2026-03-01T10:00:00.123456Z"),  # Go: 9 digits, an offset
        ("2026-03-01T10:00:00.123Z", "2026-03-01T10:00:00.123000Z"),  # JavaScript's toISOString
        ("2026-03-01T10:00:00+00:00", "2026-03-01T10:00:00Z"),  # Python, PHP
        ("2026-03-01t10:00:00z", "2026-03-01T10:00:00Z"),  # RFC 3339 allows lower case
        ("2026-03-01T10:00:00.5-01:30", "2026-03-01T11:30:00.500000Z"),
    ],
)
def test_a_custom_datetime_is_stored_in_utc(api_client: APIClient, value: str, stored: str) -> None:
    """Any RFC 3339 date-time with a zone is accepted and answered in UTC."""
    # when
    response = upsert(api_client, {"email": "ann@example.com", "custom_datetime_1": value})
    # then
    assert response.status_code == 200, response.content
    assert get_contact(api_client)["custom_datetime_1"] == stored


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("custom_number_1", "5"),
        ("custom_number_2", True),
        ("custom_number_3", [1]),
        ("custom_number_4", 10**400),
        ("custom_datetime_1", "2026-03-01"),
        ("custom_datetime_2", "2026-03-01T10:00:00"),  # no zone
        ("custom_datetime_3", "2026-02-30T10:00:00Z"),
        ("custom_datetime_4", 1772359200),
        ("custom_datetime_5", "0001-01-01T00:00:00+01:00"),  # before year 1 in UTC
        ("custom_json_1", "x"),
        ("custom_json_2", 5),
        ("custom_json_3", True),
        ("phone", 123),
        ("phone", "1" * 51),
        ("postcode", "1" * 21),
        ("country", ["FR"]),
        ("custom_string_1", {"a": 1}),
        ("custom_string_5", "nul\u0000"),
        ("language", False),
    ],
)
def test_a_wrong_type_is_a_400_naming_the_field(api_client: APIClient, field: str, value: Any) -> None:
    """String fields need strings (within Notifuse's column lengths), numbers numbers, custom_datetime_*
    RFC 3339 with a zone, custom_json_* an object or an array: else 400 naming contact.<field>, and
    nothing is written."""
    # when
    response = upsert(api_client, {"email": "ann@example.com", field: value})
    flat = api_client.post(
        "/api/contacts.upsert", {"workspace_id": "acme", "email": "ann@example.com", field: value}, format="json"
    )
    # then
    assert_error(response, 400)
    assert f"contact.{field}" in response.json()["details"], response.json()
    assert_error(flat, 400)
    assert field in flat.json()["details"], flat.json()
    assert not Contact.objects.exists()


def test_properties_replace_the_free_form_keys_and_keep_the_profile(api_client: APIClient) -> None:
    """properties (this app's object, replaced whole) never removes a profile field; a profile field
    inside it is that field (answered top-level, type-checked), so nothing sent is lost."""
    # given
    upsert(api_client, {"email": "ann@example.com", "phone": "123", "properties": {"plan": "pro", "seats": 2}})
    # when
    response = upsert(api_client, {"email": "ann@example.com", "properties": {"plan": "team", "country": "FR"}})
    # then
    assert response.status_code == 200, response.content
    contact = get_contact(api_client)
    assert contact["properties"] == {"plan": "team"}
    assert (contact["phone"], contact["country"]) == ("123", "FR")
    assert Contact.objects.get().properties == {"phone": "123", "country": "FR", "plan": "team"}


@pytest.mark.parametrize(
    ("contact", "field"),
    [
        ({"properties": {"custom_number_1": "five"}}, "contact.properties.custom_number_1"),
        ({"properties": {"custom_datetime_1": "soon"}}, "contact.properties.custom_datetime_1"),
        ({"phone": "1", "properties": {"phone": "2"}}, "contact.properties.phone"),
    ],
)
def test_a_profile_field_inside_properties_is_checked_as_that_field(
    api_client: APIClient, contact: dict[str, Any], field: str
) -> None:
    """A profile field inside properties has its type; sent both ways with different values, it is a 400."""
    # when
    response = upsert(api_client, {"email": "ann@example.com", **contact})
    # then
    assert_error(response, 400)
    assert field in response.json()["details"], response.json()
    assert not Contact.objects.exists()


def test_a_profile_field_inside_properties_is_normalised_like_the_field(api_client: APIClient) -> None:
    """custom_datetime_1 inside properties is stored in UTC, the same value sent top-level is no clash."""
    # when
    response = upsert(
        api_client,
        {
            "email": "ann@example.com",
            "custom_number_1": 2,
            "properties": {"custom_datetime_1": "2026-03-01T12:00:00+02:00", "custom_number_1": 2},
        },
    )
    # then
    assert response.status_code == 200, response.content
    contact = get_contact(api_client)
    assert (contact["custom_datetime_1"], contact["custom_number_1"]) == ("2026-03-01T10:00:00Z", 2)
    assert contact["properties"] == {}


def test_a_stored_value_of_another_type_stays_in_properties(api_client: APIClient) -> None:
    """A profile key holding another type (written before the fields were typed, or in the admin's raw
    JSON) is answered inside properties, not as the field: nothing stored is hidden, no answer breaks
    its schema."""
    # given
    upsert(api_client, {"email": "ann@example.com"})
    Contact.objects.update(properties={"phone": 33123, "custom_datetime_1": "2026-03-01", "plan": "pro"})
    # when
    contact = get_contact(api_client)
    # then
    assert "phone" not in contact and "custom_datetime_1" not in contact
    assert contact["properties"] == {"phone": 33123, "custom_datetime_1": "2026-03-01", "plan": "pro"}


@pytest.fixture
def located(api_client: APIClient) -> None:
    for email, fields in (
        ("ann@acme.com", {"phone": "+33 123 45", "country": "FR", "language": "fr-FR"}),
        ("bo@acme.com", {"phone": "+1 555 0123", "country": "US", "language": "en"}),
        ("cy@acme.com", {"first_name": "Cy"}),
    ):
        assert upsert(api_client, {"email": email, **fields}).status_code == 200


@pytest.mark.parametrize(
    ("query", "emails"),
    [
        ("phone=123", ["ann@acme.com", "bo@acme.com"]),
        ("phone=%2B33", ["ann@acme.com"]),
        ("country=fr", ["ann@acme.com"]),
        ("country=U", ["bo@acme.com"]),
        ("language=EN", ["bo@acme.com"]),
        ("language=fr&country=US", []),
        ("phone=555&email=bo", ["bo@acme.com"]),
        ("country=DE", []),
        ("phone=&country=", ["ann@acme.com", "bo@acme.com", "cy@acme.com"]),
    ],
)
def test_list_filters_phone_country_and_language(
    api_client: APIClient, located: None, query: str, emails: list[str]
) -> None:
    """phone, country and language are case-insensitive substring filters, ANDed with the others."""
    # when
    response = api_client.get(f"/api/contacts.list?workspace_id=acme&{query}")
    # then
    assert response.status_code == 200, response.content
    for contact in response.json()["contacts"]:
        assert_contact(contact)
    assert sorted(c["email"] for c in response.json()["contacts"]) == emails


def test_import_stores_profile_fields_and_names_a_wrong_type_inline(api_client: APIClient) -> None:
    """contacts.import stores each item's profile fields; an item with a wrong type is an inline error
    naming the field, and the others are written."""
    # when
    response = api_client.post(
        "/api/contacts.import",
        {
            "workspace_id": "acme",
            "contacts": [
                {"email": "ann@example.com", **FULL_PROFILE},
                {"email": "bo@example.com", "custom_number_1": "5"},
            ],
        },
        format="json",
    )
    # then
    assert response.status_code == 200, response.content
    good, bad = response.json()["operations"]
    assert (good["action"], bad["action"]) == ("create", "error")
    assert "custom_number_1" in bad["error"]
    assert {key: get_contact(api_client).get(key) for key in FULL_PROFILE} == FULL_PROFILE
    assert not Contact.objects.filter(email="bo@example.com").exists()


def test_segment_filters_read_the_fields_contacts_upsert_stored(api_client: APIClient) -> None:
    """A contacts leaf's DimensionFilters on profile fields match contacts written by contacts.upsert
    (one truth: the same keys)."""
    # given
    upsert(
        api_client,
        {"email": "ann@example.com", "country": "FR", "custom_number_1": 12, "custom_json_1": {"plan": "pro"}},
    )
    upsert(api_client, {"email": "bo@example.com", "country": "FR", "custom_number_1": 3})
    upsert(api_client, {"email": "cy@example.com", "custom_datetime_1": "2026-03-01T10:00:00+02:00"})
    filters: list[dict[str, Any]] = [
        {"field_name": "country", "field_type": "string", "operator": "equals", "string_values": ["FR"]},
        {"field_name": "custom_number_1", "field_type": "number", "operator": "gt", "number_values": [5]},
    ]
    cases = [
        (filters, ["ann@example.com"]),
        (filters[:1], ["ann@example.com", "bo@example.com"]),
        (
            [
                {
                    "field_name": "custom_json_1",
                    "field_type": "string",
                    "operator": "equals",
                    "json_path": ["plan"],
                    "string_values": ["pro"],
                }
            ],
            ["ann@example.com"],
        ),
        (
            [
                {
                    "field_name": "custom_datetime_1",
                    "field_type": "time",
                    "operator": "in_date_range",
                    "string_values": ["2026-03-01T07:59:59Z", "2026-03-01T08:00:00Z"],
                }
            ],
            ["cy@example.com"],
        ),
    ]
    for leaf_filters, emails in cases:
        tree = {"kind": "leaf", "leaf": {"source": "contacts", "contact": {"filters": leaf_filters}}}
        # when
        response = api_client.post(
            "/api/segments.preview", {"workspace_id": "acme", "tree": tree, "limit": 100}, format="json"
        )
        # then
        assert response.status_code == 200, response.content
        assert sorted(response.json()["emails"]) == emails, leaf_filters
        assert response.json()["total_count"] == len(emails)


def test_profile_field_sets_of_the_contract_are_the_stored_ones() -> None:
    """The contract's typed field lists are exactly the fields stored and typed here."""
    # then
    assert {n for n, k in PROFILE_FIELD_TYPES.items() if k == "number"} == set(CONTACT_NUMBER_FIELDS)
    assert {n for n, k in PROFILE_FIELD_TYPES.items() if k == "datetime"} == set(CONTACT_DATETIME_FIELDS)
    assert {n for n, k in PROFILE_FIELD_TYPES.items() if k == "json"} == set(CONTACT_JSON_FIELDS)
    assert set(PROFILE_FIELD_TYPES) == set(FULL_PROFILE)
