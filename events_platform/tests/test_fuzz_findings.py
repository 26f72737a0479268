"""What the schema-driven fuzz (`.ci/fuzz`) found once its requests reached the operations (issue 10):
answers that did not match their documented schema, and requests the schema calls invalid that were
accepted. Each case as a test, so it stays fixed without a fuzz run."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
from rest_framework.test import APIClient

from contacts.models import Contact, CustomEvent
from contacts.tests.test_notifuse_schema import conforms, schema  # noqa: F401  (a fixture)
from events_platform.workspaces.models import Workspace
from webhooks import network

WS = {"workspace_id": "acme"}
EVENT = {"email": "a@x.io", "event_name": "order.completed", "external_id": "o1"}


@pytest.mark.parametrize("field", ["goal_name", "integration_id"])
@pytest.mark.parametrize("path", ["customEvents.upsert", "customEvents.import"])
def test_a_number_where_an_event_takes_a_string_is_a_400(api_client: APIClient, field: str, path: str) -> None:
    """goal_name and integration_id are strings (a Go client cannot even send a number there): 0 is a
    400 naming the field, not stored as "0"."""
    # given
    event: dict[str, Any] = {**EVENT, field: 0}
    body: dict[str, Any] = {**WS, "events": [event]} if path == "customEvents.import" else {**WS, **event}
    # when
    response = api_client.post(f"/api/{path}", body, format="json")
    # then
    assert response.status_code == 400, response.content
    assert field in str(response.json()["details"])
    assert not CustomEvent.objects.exists()


def test_a_numeric_external_id_is_documented_and_read_as_text(
    api_client: APIClient,
    schema: dict[str, Any],  # noqa: F811
) -> None:
    """An order number sent as a number is still accepted (stored as its text), and the schema says so."""
    # when
    response = api_client.post("/api/customEvents.upsert", {**WS, **EVENT, "external_id": 42}, format="json")
    # then
    assert response.status_code == 200, response.content
    assert response.json()["event"]["external_id"] == "42"
    documented = schema["components"]["schemas"]["EventUpsertInputRequest"]["properties"]["external_id"]
    assert {alternative["type"] for alternative in documented["oneOf"]} == {"string", "number"}


@pytest.fixture
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhook URLs resolve to a public address without a DNS lookup."""
    monkeypatch.setattr(network, "resolve", lambda host, port: [ipaddress.ip_address("93.184.216.34")])


@pytest.mark.usefixtures("public_dns")
@pytest.mark.parametrize("enabled", [0, 1, "true", None])
def test_toggle_takes_a_json_boolean_only(api_client: APIClient, enabled: Any) -> None:
    """webhookSubscriptions.toggle's enabled is a JSON boolean: 0, 1 or "true" are 400s."""
    # given
    created = api_client.post(
        "/api/webhookSubscriptions.create",
        {**WS, "name": "n", "url": "https://example.com/hook", "event_types": ["contact.created"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    subscription = created.json()["subscription"]["id"]
    # when
    response = api_client.post(
        "/api/webhookSubscriptions.toggle", {**WS, "id": subscription, "enabled": enabled}, format="json"
    )
    # then
    assert response.status_code == 400, response.content
    assert "enabled" in str(response.json()["details"])


@pytest.mark.usefixtures("public_dns")
def test_subscription_answers_match_the_schema_without_filters(
    api_client: APIClient,
    schema: dict[str, Any],  # noqa: F811
) -> None:
    """A subscription without custom_event_filters and never delivered leaves those keys out, which
    its documented shape allows."""
    # given
    created = api_client.post(
        "/api/webhookSubscriptions.create",
        {**WS, "name": "n", "url": "https://example.com/hook", "event_types": ["contact.created"]},
        format="json",
    )
    subscription = created.json()["subscription"]["id"]
    # when
    answers = [
        (
            "webhookSubscriptions.get",
            "get",
            api_client.get("/api/webhookSubscriptions.get", {**WS, "id": subscription}),
        ),
        ("webhookSubscriptions.list", "get", api_client.get("/api/webhookSubscriptions.list", WS)),
    ]
    # then
    for path, method, response in answers:
        assert response.status_code == 200, response.content
        assert "custom_event_filters" not in str(response.json())
        conforms(schema, path, method, response)


def test_preview_with_a_null_limit_answers_the_default(
    api_client: APIClient,
    workspace: Workspace,
    schema: dict[str, Any],  # noqa: F811
) -> None:
    """segments.preview with "limit": null (a generated client's "not given") answers limit 10, an integer."""
    # given
    Contact.objects.create(workspace=workspace, email="a@x.io")
    tree = {
        "kind": "leaf",
        "leaf": {
            "source": "contacts",
            "contact": {
                "filters": [
                    {"field_name": "email", "field_type": "string", "operator": "contains", "string_values": ["@"]}
                ]
            },
        },
    }
    # when
    response = api_client.post("/api/segments.preview", {**WS, "tree": tree, "limit": None}, format="json")
    # then
    assert response.status_code == 200, response.content
    assert response.json()["limit"] == 10
    conforms(schema, "segments.preview", "post", response)


def test_rfm_contacts_money_is_documented_as_the_decimal_text_it_is(schema: dict[str, Any]) -> None:  # noqa: F811
    """rfm.contacts writes monetary as decimal text ("310.14", as the RFM API writes money): the schema says
    a string, not a number."""
    # when
    monetary = schema["components"]["schemas"]["RfmContactOutput"]["properties"]["monetary"]
    # then
    assert monetary["type"] == "string" and monetary.get("nullable") is True


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("rfmModels.delete", {"id": 0}),
        ("segments.delete", {"id": 0}),
        ("segments.rebuild", {"segment_id": 0}),
        ("webhookSubscriptions.delete", {"id": 0}),
        ("webhookSubscriptions.replay", {"delivery_id": 0}),
    ],
)
def test_a_number_where_a_reference_is_a_string_is_a_400(
    api_client: APIClient, path: str, body: dict[str, Any]
) -> None:
    """References in bodies are strings: a number is a 400 naming the field, never read as "0" (the fuzz
    deleted an RFM model called "0" by sending id 0)."""
    # when
    response = api_client.post(f"/api/{path}", {**WS, **body}, format="json")
    # then
    assert response.status_code == 400, response.content
    assert next(iter(body)) in str(response.json()["details"])


def test_webhook_event_types_are_listed_in_the_schema(schema: dict[str, Any]) -> None:  # noqa: F811
    """The event types a subscription takes are the schema's enum (a schema-valid request names real ones)."""
    # when
    components = schema["components"]["schemas"]
    items = components["SubscriptionCreateInputRequest"]["properties"]["event_types"]["items"]
    enum = components[items["$ref"].rsplit("/", 1)[1]]["enum"] if "$ref" in items else items["enum"]
    # then
    assert {"contact.created", "custom_event.created", "rfm.group_changed"} <= set(enum)


def test_contacts_import_states_its_minimum_in_the_schema(schema: dict[str, Any]) -> None:  # noqa: F811
    """contacts.import refuses an empty list; the schema says so (minItems), so the fuzz sends at least one."""
    # when
    contacts = schema["components"]["schemas"]["ContactImportInputRequest"]["properties"]["contacts"]
    # then
    assert contacts["minItems"] == 1


def test_the_schema_states_the_rules_the_fuzz_met(schema: dict[str, Any]) -> None:  # noqa: F811
    """Rules the fuzz's 400s named are in the schema, so schema-valid requests meet them: an RFM scale
    is 3 or 5 and its name lists are non-empty, a subscription has a name and at least one event type,
    a segment colour is a hex or one of the console's names (any case)."""
    # given
    components = schema["components"]["schemas"]
    rfm = components["RfmModelCreateInputRequest"]["properties"]
    subscription = components["SubscriptionCreateInputRequest"]["properties"]
    color = components["SegmentUpdateInputRequest"]["properties"]["color"]
    # then
    scale = rfm["scale"]["allOf"][0]["$ref"].rsplit("/", 1)[1] if "allOf" in rfm["scale"] else None
    assert (components[scale]["enum"] if scale else rfm["scale"]["enum"]) == [3, 5]
    assert rfm["goal_types"]["minItems"] == 1 and rfm["event_names"]["minItems"] == 1
    assert subscription["name"]["minLength"] == 1
    assert subscription["event_types"]["minItems"] == 1
    pattern = re.compile(color["pattern"])
    assert all(pattern.search(value) for value in ("#1677ff", "blue", " Blue ", "GEEKBLUE"))
    assert not any(pattern.search(value) for value in ("bleu", "#12345", "blue;"))


# --- found by the first CI fuzz run that reached the operations (2026-12-01, seed 20261201) ---


def _segment(api_client: APIClient, slug: str) -> None:
    tree = {
        "kind": "leaf",
        "leaf": {"source": "contacts", "contact": {"field": "email", "operator": "contains", "value": "@"}},
    }
    created = api_client.post("/api/segments.create", {**WS, "id": slug, "name": slug, "tree": tree}, format="json")
    assert created.status_code == 201, created.content


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("rfm.contacts", "model=default&group=&r=5", "group"),
        ("segments.contacts", "id=", "id"),
        ("customEvents.list", "email=&event_name=x", "email"),
    ],
)
def test_a_query_parameter_sent_empty_is_a_400_where_the_schema_refuses_blank(
    api_client: APIClient, path: str, query: str, field: str
) -> None:
    """`?group=` is not "no group": the schema says minLength 1, so an empty value is a 400 naming it
    (DRF alone would read it as left out and answer 200 for another request than the one sent)."""
    # when
    response = api_client.get(f"/api/{path}?workspace_id=acme&{query}")
    # then
    assert response.status_code == 400, response.content
    assert field in response.json()["details"]


def test_an_empty_cursor_is_still_the_first_page(api_client: APIClient) -> None:
    """A field that takes a blank (the cursor: Notifuse clients send `cursor=`) still accepts one."""
    # when
    response = api_client.get("/api/customEvents.list?workspace_id=acme&event_name=x&cursor=")
    # then
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("path", ["segments.rebuild", "segments.contacts"])
def test_segment_id_and_id_naming_two_segments_is_a_400(api_client: APIClient, path: str) -> None:
    """The two spellings of one reference must agree: `segment_id` vip with `id` AAA is a 400 naming id
    (it was answered for vip, ignoring id); the same segment under both spellings is fine."""
    # given
    _segment(api_client, "vip")
    send = (
        (lambda body: api_client.post(f"/api/{path}", {**WS, **body}, format="json"))
        if path.endswith("rebuild")
        else (lambda body: api_client.get(f"/api/{path}", {**WS, **body}))
    )
    # when
    mismatched = send({"segment_id": "vip", "id": "AAA"})
    agreeing = send({"segment_id": "vip", "id": "vip"})
    # then
    assert mismatched.status_code == 400, mismatched.content
    assert "id" in mismatched.json()["details"]
    assert agreeing.status_code == 200, agreeing.content


def test_lenient_paging_numbers_are_documented_as_any_text(
    api_client: APIClient,
    schema: dict[str, Any],  # noqa: F811
) -> None:
    """Notifuse's paging reads a non-integer offset as 0 (`offset=false` is 200): the schema says an
    integer or any text, not only an integer."""
    # given
    _segment(api_client, "vip")
    # when
    response = api_client.get("/api/segments.contacts", {**WS, "segment_id": "vip", "offset": "false"})
    # then
    assert response.status_code == 200, response.content
    assert response.json()["offset"] == 0
    parameters = schema["paths"]["/api/segments.contacts"]["get"]["parameters"]
    offset = next(p for p in parameters if p["name"] == "offset")["schema"]
    assert {alternative["type"] for alternative in offset["oneOf"]} == {"integer", "string"}


def test_the_goal_value_bound_is_what_fits_once_rounded(
    api_client: APIClient,
    schema: dict[str, Any],  # noqa: F811
) -> None:
    """999999999999.9999 rounds to 1000000000000.00, which does not fit: a 400, and the schema's bound
    (exclusive 999999999999.995) calls it invalid; 999999999999.994 fits."""
    # when
    too_big = api_client.post(
        "/api/customEvents.upsert",
        {**WS, **EVENT, "goal_type": "purchase", "goal_value": 999999999999.9999},
        format="json",
    )
    fits = api_client.post(
        "/api/customEvents.upsert",
        {**WS, **EVENT, "goal_type": "purchase", "goal_value": 999999999999.994},
        format="json",
    )
    # then
    assert too_big.status_code == 400, too_big.content
    assert fits.status_code == 200, fits.content
    documented = schema["components"]["schemas"]["EventUpsertInputRequest"]["properties"]["goal_value"]
    assert documented["exclusiveMaximum"] is True and 999999999999.994 < documented["maximum"] <= 999999999999.995
    assert documented["maximum"] < 999999999999.9999
