"""customEvents.* as a Notifuse client uses them (NOTIFUSE-API.md §1): its request shapes, its answers.

goal_value is any finite JSON double, stored rounded to cents half away from zero on its shortest
decimal text (§1.7); customEvents.list caps limit at 100 and answers the page length as count.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from contacts.models import CustomEvent
from contacts.tests.api_helpers import event_body
from contacts.tests.notifuse_shapes import assert_custom_event, assert_error

UPSERT = "/api/customEvents.upsert"
IMPORT = "/api/customEvents.import"
GET = "/api/customEvents.get"
LIST = "/api/customEvents.list"


def docs_upsert(**overrides: Any) -> dict[str, Any]:
    """The request example of D:features/custom-events.mdx (workspace renamed to the test's)."""
    properties = {"items": ["Product A", "Product B"], "currency": "USD"}
    return event_body(properties=properties, goal_type="purchase", goal_value=149.99) | overrides


def post_text(client: APIClient, path: str, text: str) -> Any:
    """A body sent as the client wrote it, byte for byte (a float's digits as JavaScript prints them)."""
    return client.post(path, text, content_type="application/json")


# The table of NOTIFUSE-API.md §1.7: the JSON text sent, and the cents stored and answered.
ROUNDING = [
    ("3.3000000000000003", "3.30"),  # 1.1 * 3 in JavaScript
    ("137.9908", "137.99"),  # a converted price
    ("1.005", "1.01"),  # round(1.005, 2) would give 1.0
    ("2.675", "2.68"),
    ("-2.675", "-2.68"),
    ("0.125", "0.13"),
    ("149.99", "149.99"),
    ("150", "150.00"),
    ("-0.001", "0.00"),
    ("1e-7", "0.00"),
    ("1.5e2", "150.00"),
    ("999999999999.99", "999999999999.99"),
]


@pytest.mark.parametrize(("sent", "stored"), ROUNDING)
def test_upsert_rounds_any_double_to_cents_half_away_from_zero(api_client: APIClient, sent: str, stored: str) -> None:
    """Any finite JSON number is accepted and stored, answered and read back rounded to cents."""
    # given
    text = json.dumps(docs_upsert(goal_value=0)).replace('"goal_value": 0', f'"goal_value": {sent}')
    # when
    response = post_text(api_client, UPSERT, text)
    read = api_client.get(GET, {"workspace_id": "acme", "event_name": "order.completed", "external_id": "order_12345"})
    # then
    assert response.status_code == 200, response.content
    assert_custom_event(response.json()["event"])
    assert CustomEvent.objects.get().goal_value == Decimal(stored)
    for event in (response.json()["event"], read.json()["event"]):
        assert event["goal_value"] == float(stored)
        assert isinstance(event["goal_value"], int | float)  # a number, never a string


@pytest.mark.parametrize("slow_path", [False, True])
def test_import_with_javascript_floats_is_written_whole(api_client: APIClient, slow_path: bool) -> None:
    """An import whose goal values are JavaScript float results (1.1 * 3, a converted price) is a 201
    and stores them in cents, through the fast reader and through the serializer alike."""
    # given: a non-ASCII external_id sends the batch through the serializer instead of the fast reader
    second_id = "order_ß2" if slow_path else "order_2"
    text = (
        '{"workspace_id": "acme", "events": ['
        '{"email": "a@example.com", "event_name": "order.completed", "external_id": "order_1",'
        ' "goal_type": "purchase", "goal_value": 3.3000000000000003, "source": "integration",'
        ' "integration_id": "shopify", "created_at": "2026-03-01T10:00:00Z", "updated_at": null},'
        f'{{"email": "b@example.com", "event_name": "order.completed", "external_id": "{second_id}",'
        ' "goal_type": "purchase", "goal_value": 137.9908}]}'
    )
    # when
    response = post_text(api_client, IMPORT, text)
    # then
    assert response.status_code == 201, response.content
    assert response.json()["event_ids"] == ["order_1", second_id]
    assert response.json()["count"] == 2
    stored = dict(CustomEvent.objects.values_list("external_id", "goal_value"))
    assert stored == {"order_1": Decimal("3.30"), second_id: Decimal("137.99")}


@pytest.mark.parametrize(
    "literal",
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        '"lots"',
        '"NaN"',
        "true",
        "[1]",
        "{}",
        "1000000000000",
        "9999999999999.99",
    ],
)
def test_goal_value_that_is_not_a_finite_number_fitting_the_column_is_a_400(
    api_client: APIClient, literal: str
) -> None:
    """NaN, infinities, non-numbers and values beyond the column are a JSON 400 naming goal_value, and
    a batch holding one writes nothing. (The column holds 12 integer digits, Notifuse's 13: larger
    totals than 999 999 999 999.99 are refused here, never silently changed.)"""
    # given
    event = '{"email": "a@example.com", "event_name": "order.completed", "external_id": "o1", "goal_type": "purchase"'
    good = event + ', "goal_value": 1.1}'
    bad = event.replace('"o1"', '"o2"') + f', "goal_value": {literal}}}'
    # when
    upsert = post_text(api_client, UPSERT, bad.replace("{", '{"workspace_id": "acme", ', 1))
    batch = post_text(api_client, IMPORT, f'{{"workspace_id": "acme", "events": [{good}, {bad}]}}')
    # then
    for response in (upsert, batch):
        assert_error(response, 400)
        if literal not in ("NaN", "Infinity", "-Infinity"):  # those are not JSON: a parse error
            assert "goal_value" in response.json()["error"]
    assert not CustomEvent.objects.exists()


def test_a_generated_client_s_whole_object_is_accepted(api_client: APIClient) -> None:
    """A client generated from the openapi file sends whole objects: null optionals, source, timestamps."""
    # given
    body = docs_upsert(
        occurred_at="2026-03-01T10:00:00.123456789+02:00",
        integration_id=None,
        goal_name=None,
        deleted_at=None,
        source="integration",
        created_at="2026-03-01T10:00:00Z",
        updated_at="2026-03-01T10:00:00Z",
    )
    # when
    response = api_client.post(UPSERT, body, format="json")
    # then
    assert response.status_code == 200, response.content
    event = response.json()["event"]
    assert_custom_event(event)
    assert event["occurred_at"].startswith("2026-03-01T08:00:00.12345")  # 9 digits and an offset, in UTC
    assert event["goal_value"] == 149.99


@pytest.fixture
def thirty_orders(api_client: APIClient) -> list[str]:
    """30 orders of one contact, newest last; returns their external ids newest first."""
    events = [
        {
            "email": "ann@example.com",
            "event_name": "order.completed",
            "external_id": f"o{i:02d}",
            "occurred_at": f"2026-01-{i + 1:02d}T00:00:00Z",
            "goal_type": "purchase",
            "goal_value": i * 1.1,
        }
        for i in range(30)
    ]
    response = api_client.post(IMPORT, {"workspace_id": "acme", "events": events}, format="json")
    assert response.status_code == 201, response.content
    return [f"o{i:02d}" for i in reversed(range(30))]


def test_list_answers_count_and_offset_paging_stops_when_count_is_below_limit(
    api_client: APIClient, thirty_orders: list[str]
) -> None:
    """count is the page's length; a client paging by offset stops at the first short page."""
    # given
    seen: list[str] = []
    offset = 0
    # when
    while True:
        response = api_client.get(
            LIST, {"workspace_id": "acme", "email": "ann@example.com", "limit": "7", "offset": str(offset)}
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["count"] == len(body["events"])
        for event in body["events"]:
            assert_custom_event(event)
        seen += [e["external_id"] for e in body["events"]]
        if body["count"] < 7:
            break
        offset += 7
    # then
    assert seen == thirty_orders
    assert offset == 28


@pytest.mark.parametrize(("limit", "served"), [(500, 30), (101, 30), (0, 30), ("", 30), (3, 3)])
def test_list_caps_limit_instead_of_refusing_it(
    api_client: APIClient, thirty_orders: list[str], limit: Any, served: int
) -> None:
    """limit above 100 is served as 100 (here: all 30), never a 400; 0 or empty is the default 50."""
    # when
    query: dict[str, Any] = {"workspace_id": "acme", "event_name": "order.completed", "limit": limit}
    response = api_client.get(LIST, query)
    # then
    assert response.status_code == 200, response.content
    assert response.json()["count"] == served
    assert [e["external_id"] for e in response.json()["events"]] == thirty_orders[:served]


def test_list_empty_page_is_an_empty_array(api_client: APIClient) -> None:
    """No events: "events": [] and count 0 (Notifuse sends null, which clients must special-case)."""
    # when
    body = api_client.get(LIST, {"workspace_id": "acme", "event_name": "order.completed"}).json()
    # then
    assert (body["events"], body["count"]) == ([], 0)


def test_list_without_a_filter_is_a_json_400(api_client: APIClient) -> None:
    """Neither email nor event_name: 400 {"error"}."""
    # when / then
    assert_error(api_client.get(LIST, {"workspace_id": "acme"}), 400)


def test_upsert_ignores_the_source_sent_and_the_import_keeps_it(api_client: APIClient) -> None:
    """customEvents.upsert stores source "api" whatever the body says (Notifuse ignores it, §1.2);
    customEvents.import keeps a client's source."""
    # when
    upserted = api_client.post(UPSERT, docs_upsert(source="integration"), format="json")
    item = {k: v for k, v in docs_upsert(external_id="order_2", source="integration").items() if k != "workspace_id"}
    imported = api_client.post(IMPORT, {"workspace_id": "acme", "events": [item]}, format="json")
    # then
    assert upserted.status_code == 200, upserted.content
    assert upserted.json()["event"]["source"] == "api"
    assert imported.status_code == 201, imported.content
    stored = dict(CustomEvent.objects.values_list("external_id", "source"))
    assert stored == {"order_12345": "api", "order_2": "integration"}
