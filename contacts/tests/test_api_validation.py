"""customEvents.upsert / customEvents.import validation: every rule is a 400 naming the field, nothing written."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.tests.api_helpers import event_body as seed_body

UPSERT = "/api/customEvents.upsert"
IMPORT = "/api/customEvents.import"


def event_body(**overrides: Any) -> dict[str, Any]:
    """A valid upsert body with a purchase goal; an override of ``...`` leaves its field out."""
    body = seed_body(properties={"currency": "USD"}, goal_type="purchase", goal_value=149.99) | overrides
    return {k: v for k, v in body.items() if v is not ...}


def assert_rejected(response: Any, field: str) -> dict[str, Any]:
    """A 400 in the API's error format whose details name ``field``."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"error", "details"}
    assert isinstance(body["error"], str) and body["error"]
    assert field in body["details"], body
    assert all(isinstance(m, str) for m in body["details"][field])
    return body


def post_rejected(client: APIClient, row_counts: Callable[[], dict[str, int]], body: Any, field: str) -> dict[str, Any]:
    before = row_counts()
    response = client.post(UPSERT, body, format="json")
    result = assert_rejected(response, field)
    assert row_counts() == before
    return result


Rejects = Callable[[Any, str], dict[str, Any]]


@pytest.fixture
def rejects(api_client: APIClient, row_counts: Callable[[], dict[str, int]]) -> Rejects:
    """``rejects(body, field)``: an upsert of ``body`` is a 400 naming ``field``, nothing written."""
    return partial(post_rejected, api_client, row_counts)


# --- event_name ------------------------------------------------------------------------


def test_event_name_is_required(rejects: Rejects) -> None:
    """An upsert without event_name is a 400 naming event_name, and nothing is written."""
    # given
    body = event_body(event_name=...)
    # when / then
    rejects(body, "event_name")


def test_event_name_longer_than_100_characters_is_rejected(rejects: Rejects) -> None:
    """event_name is at most 100 characters."""
    # given
    body = event_body(event_name="a" * 101)
    # when / then
    rejects(body, "event_name")


def test_event_name_of_100_characters_is_accepted(api_client: APIClient) -> None:
    """Exactly 100 characters is within the limit."""
    # given
    body = event_body(event_name="a" * 100)
    # when
    response = api_client.post(UPSERT, body, format="json")
    # then
    assert response.status_code == 200, response.content
    assert response.json()["event"]["event_name"] == "a" * 100


def test_uppercase_event_name_is_rejected_not_rewritten(rejects: Rejects) -> None:
    """Uppercase is refused (not lower-cased) and the message lists every allowed character, hyphen included."""
    # given
    body = event_body(event_name="Order.Completed")
    # when
    result = rejects(body, "event_name")
    # then
    message = " ".join(result["details"]["event_name"])
    for allowed in ("lowercase letters", "digits", "dot (.)", "underscore (_)", "hyphen (-)", "slash (/)"):
        assert allowed in message, message
    assert "event_name" in result["error"]


@pytest.mark.parametrize("event_name", ["order completed", "order:completed", "ordér", " order.completed", ""])
def test_event_name_with_characters_outside_the_allowed_set_is_rejected(rejects: Rejects, event_name: str) -> None:
    """Spaces, colons, accents, leading whitespace and the empty string are all refused."""
    # given
    body = event_body(event_name=event_name)
    # when / then
    rejects(body, "event_name")


@pytest.mark.parametrize("event_name", ["order.completed", "subscription/started", "form_submit", "user-signup"])
def test_each_event_name_format_of_the_seed_is_accepted(api_client: APIClient, event_name: str) -> None:
    """The four formats the product doc lists are stored as sent."""
    # given
    body = event_body(event_name=event_name)
    # when
    response = api_client.post(UPSERT, body, format="json")
    # then
    assert response.status_code == 200, response.content
    assert response.json()["operation"] == "created"
    assert response.json()["event"]["event_name"] == event_name


@pytest.mark.parametrize("value", [123, True, ["order.completed"], {"name": "x"}])
def test_event_name_of_the_wrong_type_is_rejected(rejects: Rejects, value: Any) -> None:
    """A number, boolean, array or object is not silently turned into a name."""
    # given
    body = event_body(event_name=value)
    # when / then
    rejects(body, "event_name")


# --- external_id, email ------------------------------------------------------------------


@pytest.mark.parametrize("value", [..., "", None])
def test_external_id_is_required(rejects: Rejects, value: Any) -> None:
    """Missing, empty or null external_id is a 400 naming external_id."""
    # given
    body = event_body(external_id=value)
    # when / then
    rejects(body, "external_id")


def test_external_id_longer_than_255_characters_is_rejected(rejects: Rejects, api_client: APIClient) -> None:
    """external_id is at most 255 characters; 255 itself is fine."""
    # given
    too_long = event_body(external_id="x" * 256)
    longest = event_body(external_id="x" * 255)
    # when / then
    rejects(too_long, "external_id")
    assert api_client.post(UPSERT, longest, format="json").status_code == 200


@pytest.mark.parametrize("value", [..., "", None])
def test_email_is_required(rejects: Rejects, value: Any) -> None:
    """Missing, empty or null email is a 400 naming email."""
    # given
    body = event_body(email=value)
    # when / then
    rejects(body, "email")


@pytest.mark.parametrize("value", ["not-an-email", "a@", "@example.com", "a b@example.com", 42, {"a": 1}, ["x@y.z"]])
def test_invalid_email_is_rejected(rejects: Rejects, value: Any) -> None:
    """Only a valid address of the right type is accepted."""
    # given
    body = event_body(email=value)
    # when / then
    rejects(body, "email")


# --- goals --------------------------------------------------------------------------------


@pytest.mark.parametrize("goal_type", ["refund", "Purchase", "", 1])
def test_goal_type_outside_the_seven_types_is_rejected(rejects: Rejects, goal_type: Any) -> None:
    """goal_type is one of purchase, subscription, lead, signup, booking, trial, other."""
    # given
    body = event_body(goal_type=goal_type)
    # when / then
    rejects(body, "goal_type")


@pytest.mark.parametrize("goal_type", ["purchase", "subscription"])
@pytest.mark.parametrize("goal_value", [..., None])
def test_goal_value_is_required_for_purchase_and_subscription(
    rejects: Rejects, goal_type: str, goal_value: Any
) -> None:
    """A money goal without a value (omitted or null) is a 400 naming goal_value."""
    # given
    body = event_body(goal_type=goal_type, goal_value=goal_value)
    # when / then
    rejects(body, "goal_value")


@pytest.mark.parametrize("goal_type", ["lead", "signup", "booking", "trial", "other"])
def test_goal_value_is_optional_for_the_other_goal_types(api_client: APIClient, goal_type: str) -> None:
    """lead, signup, booking, trial and other may come without a value."""
    # given
    body = event_body(goal_type=goal_type, goal_value=...)
    # when
    response = api_client.post(UPSERT, body, format="json")
    # then
    assert response.status_code == 200, response.content
    assert response.json()["event"]["goal_type"] == goal_type
    assert response.json()["event"]["goal_value"] is None


@pytest.mark.parametrize("goal_value", [-50.0, "-50.00", -0.01, 999999999999.99, "-999999999999.99", 0])
def test_goal_value_accepts_negative_and_the_largest_that_fits(api_client: APIClient, goal_value: Any) -> None:
    """Refunds are negative; anything with at most 12 integer digits and 2 decimals fits the column."""
    # given
    body = event_body(goal_value=goal_value)
    # when
    response = api_client.post(UPSERT, body, format="json")
    # then
    assert response.status_code == 200, response.content
    assert response.json()["event"]["goal_value"] == float(goal_value)


@pytest.mark.parametrize(
    "goal_value",
    [
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        1000000000000,  # 13 integer digits
        "1e13",
        999999999999.995,  # rounds to 1000000000000.00: 13 integer digits
        "0.001",  # a numeric string must already have at most 2 decimals (a JSON number is rounded)
        "abc",
        "",
        "1,5",
        True,
        [1],
        {"amount": 1},
    ],
)
def test_goal_value_that_is_not_a_finite_fitting_number_is_rejected(rejects: Rejects, goal_value: Any) -> None:
    """NaN, infinities, values too large for the column, too precise strings and non-numbers are 400s.

    (A JSON number with more decimals is rounded to cents: contacts/tests/test_notifuse_custom_events.py.)"""
    # given
    body = event_body(goal_value=goal_value)
    # when / then
    rejects(body, "goal_value")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_goal_value_as_a_non_finite_json_literal_is_rejected(
    api_client: APIClient, row_counts: Callable[[], dict[str, int]], literal: str
) -> None:
    """Non-standard JSON literals (and a float overflowing to infinity) are a 400, never a 500."""
    # given
    text = json.dumps(event_body(goal_value=0)).replace('"goal_value": 0', f'"goal_value": {literal}')
    before = row_counts()
    # when
    response = api_client.post(UPSERT, text, content_type="application/json")
    # then
    assert response.status_code == 400, response.content
    assert "error" in response.json()
    assert row_counts() == before


def test_goal_name_longer_than_100_characters_is_rejected(rejects: Rejects, api_client: APIClient) -> None:
    """goal_name is at most 100 characters; 100 is fine."""
    # given
    too_long = event_body(goal_name="g" * 101)
    longest = event_body(goal_name="g" * 100)
    # when / then
    rejects(too_long, "goal_name")
    assert api_client.post(UPSERT, longest, format="json").json()["event"]["goal_name"] == "g" * 100


# --- properties -----------------------------------------------------------------------------


@pytest.mark.parametrize("properties", [["a", "b"], "text", 1, True, None])
def test_properties_must_be_a_json_object(rejects: Rejects, properties: Any) -> None:
    """An array, a scalar or null is refused for properties."""
    # given
    body = event_body(properties=properties)
    # when / then
    rejects(body, "properties")


def test_properties_larger_than_64_kib_are_rejected(rejects: Rejects, api_client: APIClient) -> None:
    """Serialised compactly, properties may take 65536 bytes and not one more."""
    # given: {"x":"..."} is 8 bytes plus the string
    at_limit = {"x": "a" * (64 * 1024 - 8)}
    over_limit = {"x": "a" * (64 * 1024 - 7)}
    # when / then
    rejects(event_body(properties=over_limit), "properties")
    response = api_client.post(UPSERT, event_body(properties=at_limit), format="json")
    assert response.status_code == 200, response.content[:300]


# --- occurred_at ----------------------------------------------------------------------------


@pytest.mark.parametrize("occurred_at", ["yesterday", "2024-13-01T00:00:00Z", "2024-01-01T25:00:00Z", 1700000000, {}])
def test_occurred_at_in_an_invalid_format_is_rejected(rejects: Rejects, occurred_at: Any) -> None:
    """occurred_at must be an RFC 3339 timestamp."""
    # given
    body = event_body(occurred_at=occurred_at)
    # when / then
    rejects(body, "occurred_at")


def test_occurred_at_more_than_24_hours_ahead_is_rejected(rejects: Rejects, api_client: APIClient) -> None:
    """25 hours ahead is refused; 23 hours ahead (clock skew) is accepted."""
    # given
    too_far = (timezone.now() + timedelta(hours=25)).isoformat()
    near = (timezone.now() + timedelta(hours=23)).isoformat()
    # when / then
    rejects(event_body(occurred_at=too_far), "occurred_at")
    assert api_client.post(UPSERT, event_body(occurred_at=near), format="json").status_code == 200


def test_occurred_at_with_an_offset_is_stored_as_the_same_instant(api_client: APIClient) -> None:
    """An RFC 3339 offset is honoured: 14:00+02:00 is 12:00Z."""
    # given
    body = event_body(occurred_at="2024-05-01T14:00:00+02:00")
    # when
    response = api_client.post(UPSERT, body, format="json")
    # then
    assert response.status_code == 200, response.content
    assert response.json()["event"]["occurred_at"] in ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00+00:00")


# --- body shape ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # not JSON
        '{"workspace_id": "acme", ',
        "not json",
        "{'a': 1}",
        '{"a": 1}}',
        # JSON, but not an object
        "[]",
        json.dumps([event_body()]),
        '"text"',
        "42",
        "null",
        "true",
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400_never_a_500(
    api_client: APIClient, row_counts: Callable[[], dict[str, int]], text: str
) -> None:
    """A body that is not JSON, or JSON but an array, a string, a number, null or a boolean, gets
    the error format and a 400."""
    # given
    before = row_counts()
    # when
    response = api_client.post(UPSERT, text, content_type="application/json")
    # then
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"error", "details"}
    assert row_counts() == before


@pytest.mark.parametrize("value", [..., "", None, 7, ["acme"]])
def test_missing_workspace_id_is_a_400(rejects: Rejects, value: Any) -> None:
    """Without a string workspace_id the request is a 400 naming workspace_id."""
    # given
    body = event_body(workspace_id=value)
    # when / then
    rejects(body, "workspace_id")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("external_id", {"id": 1}),
        ("external_id", ["a"]),
        ("goal_name", {"a": 1}),
        ("deleted_at", "soon"),
        ("deleted_at", 5),
        ("source", 5),
        ("integration_id", ["x"]),
    ],
)
def test_other_fields_of_the_wrong_type_are_rejected(rejects: Rejects, field: str, value: Any) -> None:
    """Objects and arrays where a string or timestamp belongs are 400s naming the field."""
    # given
    body = event_body(**{field: value})
    # when / then
    rejects(body, field)


def test_every_invalid_field_is_named_at_once(rejects: Rejects) -> None:
    """A request with several mistakes lists each field, so a client fixes them in one go."""
    # given
    body = event_body(event_name="Bad Name", email="nope", goal_type="refund")
    # when
    result = rejects(body, "event_name")
    # then
    assert {"event_name", "email", "goal_type"} <= set(result["details"])


def test_body_sent_as_curl_default_form_content_type_is_read_as_json(api_client: APIClient) -> None:
    """curl -d without a Content-Type header sends form encoding; the JSON body is still read."""
    # given
    text = json.dumps(event_body())
    # when
    response = api_client.post(UPSERT, text, content_type="application/x-www-form-urlencoded")
    # then
    assert response.status_code == 200, response.content
    assert response.json()["operation"] == "created"


# --- import ------------------------------------------------------------------------------------


def import_event(index: int, **overrides: Any) -> dict[str, Any]:
    body = event_body(email=f"user{index}@example.com", external_id=f"order_{index:03d}", **overrides)
    del body["workspace_id"]
    return body


@pytest.fixture
def rejects_import(api_client: APIClient, row_counts: Callable[[], dict[str, int]]) -> Rejects:
    """``rejects_import(events, field)``: an import of ``events`` is a 400 naming ``field``, nothing written."""

    def rejected(events: Any, field: str) -> dict[str, Any]:
        before = row_counts()
        response = api_client.post(IMPORT, {"workspace_id": "acme", "events": events}, format="json")
        body = assert_rejected(response, field)
        assert row_counts() == before
        return body

    return rejected


@pytest.mark.parametrize("count", [0, 51])
def test_import_of_0_or_51_events_is_rejected_and_nothing_is_written(rejects_import: Rejects, count: int) -> None:
    """An import holds 1 to 50 events; outside that, a 400 naming events and no row written."""
    # given
    events = [import_event(i) for i in range(count)]
    # when / then
    rejects_import(events, "events")


def test_import_with_one_invalid_event_names_its_index_and_writes_nothing(rejects_import: Rejects) -> None:
    """One bad event among valid ones rejects the whole batch, naming events[3].goal_value."""
    # given
    events = [import_event(i) for i in range(6)]
    events[3]["goal_value"] = "lots"
    # when
    body = rejects_import(events, "events[3].goal_value")
    # then
    assert set(body["details"]) == {"events[3].goal_value"}
    assert "events[3].goal_value" in body["error"]


def test_import_errors_of_several_events_name_each_index(rejects_import: Rejects) -> None:
    """Errors of different events carry their own index."""
    # given
    events = [import_event(i) for i in range(5)]
    events[0]["event_name"] = "Upper"
    events[4]["goal_type"] = "purchase"
    del events[4]["goal_value"]
    # when
    body = rejects_import(events, "events[0].event_name")
    # then
    assert "events[4].goal_value" in body["details"]


@pytest.mark.parametrize("events", [..., None, {"a": 1}, "events", [1, 2], [["x"]]])
def test_import_events_that_are_not_a_list_of_objects_are_rejected(
    api_client: APIClient, row_counts: Callable[[], dict[str, int]], events: Any
) -> None:
    """events must be a list of objects."""
    # given
    body = {"workspace_id": "acme"} if events is ... else {"workspace_id": "acme", "events": events}
    before = row_counts()
    # when
    response = api_client.post(IMPORT, body, format="json")
    # then
    assert response.status_code == 400, response.content
    assert any(key.startswith("events") for key in response.json()["details"]), response.json()
    assert row_counts() == before


def test_import_body_that_is_a_json_array_is_a_400(
    api_client: APIClient, row_counts: Callable[[], dict[str, int]]
) -> None:
    """Sending the events list itself as the body is refused."""
    # given
    text = json.dumps([import_event(0)])
    before = row_counts()
    # when
    response = api_client.post(IMPORT, text, content_type="application/json")
    # then
    assert response.status_code == 400, response.content
    assert row_counts() == before


@pytest.mark.parametrize("event_name", ["order.completed\n", "order.completed\r\n", "\norder.completed"])
def test_event_name_with_a_line_break_is_rejected(rejects: Rejects, event_name: str) -> None:
    """A trailing or leading newline is outside the allowed characters (a regex '$' must not let it through)."""
    # given
    body = event_body(event_name=event_name)
    # when / then
    rejects(body, "event_name")


def test_deeply_nested_json_is_a_400_never_a_500(
    api_client: APIClient, row_counts: Callable[[], dict[str, int]]
) -> None:
    """A syntactically valid but absurdly deep body (100 000 nested arrays, 200 KB) is refused cleanly."""
    # given
    depth = 100_000
    text = json.dumps(event_body(properties={})).replace(
        '"properties": {}', '"properties": {"x": ' + "[" * depth + "]" * depth + "}"
    )
    before = row_counts()
    # when
    response = api_client.post(UPSERT, text, content_type="application/json")
    # then
    assert response.status_code == 400, response.status_code
    assert row_counts() == before
