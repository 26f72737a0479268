"""The OpenAPI schema documents both spellings of each changed request, and the answers to Notifuse's
requests match the schema's response shapes (response conformance, checked with jsonschema)."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs installed; only validate() is used
import pytest
from django.test import Client
from rest_framework.test import APIClient

from contacts.models import Contact
from contacts.tests.notifuse_shapes import CONSOLE_SPENT_1000_TREE
from segments.models import Segment, SegmentMembership


@pytest.fixture
def schema(db: None) -> dict[str, Any]:
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable`` as JSON Schema's null type, everything else as it is (3.0's other
    keywords are JSON Schema draft 4's: boolean exclusiveMaximum)."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        else:
            converted = {"anyOf": [converted, {"type": "null"}]}
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    return converted


def conforms(schema: dict[str, Any], path: str, method: str, response: Any) -> None:
    """The response's JSON matches what the schema documents for this path, method and status."""
    documented = schema["paths"][f"/api/{path}"][method]["responses"][str(response.status_code)]
    shape = documented["content"]["application/json"]["schema"]
    jsonschema.validate(
        response.json(), _json_schema({**shape, "components": schema["components"]}), cls=jsonschema.Draft4Validator
    )


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    """The object schemas a request body may be: $refs followed, oneOf alternatives each."""
    if "$ref" in node:
        return _resolve(schema, schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]])
    if "oneOf" in node:
        return [part for alternative in node["oneOf"] for part in _resolve(schema, alternative)]
    return [node]


def request_fields(schema: dict[str, Any], path: str) -> set[str]:
    content = schema["paths"][f"/api/{path}"]["post"]["requestBody"]["content"]
    body = next(iter(content.values()))["schema"]
    return {name for part in _resolve(schema, body) for name in part["properties"]}


def query_parameters(schema: dict[str, Any], path: str) -> set[str]:
    return {p["name"] for p in schema["paths"][f"/api/{path}"]["get"]["parameters"] if p["in"] == "query"}


def test_both_spellings_are_documented(schema: dict[str, Any]) -> None:
    """Where Notifuse's request differs from this app's earlier one, the schema names both."""
    # then
    assert {"contact", "email"} <= request_fields(schema, "contacts.upsert")
    assert {"segment_id", "id"} <= request_fields(schema, "segments.rebuild")
    assert {"segment_id", "id", "limit", "offset", "cursor"} <= query_parameters(schema, "segments.contacts")
    assert {"segments[]", "segments", "with_contact_lists", "first_name"} <= query_parameters(schema, "contacts.list")
    assert "limit" in request_fields(schema, "segments.preview")
    for path in ("contacts.getByEmail", "contacts.getByExternalID", "contacts.count"):
        assert "get" in schema["paths"][f"/api/{path}"], path
    assert "post" in schema["paths"]["/api/contacts.import"]


TREE = CONSOLE_SPENT_1000_TREE


def test_answers_to_notifuse_requests_match_the_schema(
    schema: dict[str, Any], api_client: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    """Every Notifuse-shaped request of this issue gets an answer its documented schema accepts."""
    # given
    ws = {"workspace_id": "acme"}
    calls: list[tuple[str, str, dict[str, Any]]] = [
        (
            "customEvents.upsert",
            "post",
            ws
            | {
                "email": "a@x.io",
                "event_name": "order.completed",
                "external_id": "o1",
                "goal_type": "purchase",
                "goal_value": 3.3000000000000003,
            },
        ),
        (
            "customEvents.import",
            "post",
            ws
            | {
                "events": [
                    {"email": "b@x.io", "event_name": "signup", "external_id": "s1"},
                    {
                        "email": "b@x.io",
                        "event_name": "order.completed",
                        "external_id": "o2",
                        "goal_type": "purchase",
                        "goal_value": 2000,
                    },
                ]
            },
        ),
        ("customEvents.list", "get", ws | {"email": "a@x.io", "limit": "500"}),
        ("customEvents.get", "get", ws | {"event_name": "order.completed", "external_id": "o1"}),
        ("contacts.upsert", "post", ws | {"contact": {"email": "a@x.io", "first_name": "A", "last_name": None}}),
        ("contacts.import", "post", ws | {"contacts": [{"email": "c@x.io"}, {"email": "bad"}]}),
        (
            "segments.create",
            "post",
            ws | {"id": "big", "name": "Big", "color": "blue", "tree": TREE, "timezone": "UTC"},
        ),
        ("contacts.list", "get", ws | {"segments[]": "big", "with_contact_lists": "true"}),
        ("contacts.getByEmail", "get", ws | {"email": "a@x.io"}),
        ("contacts.getByExternalID", "get", ws | {"external_id": "nope"}),
        ("contacts.count", "get", ws),
        ("timeline.list", "get", ws | {"email": "a@x.io", "limit": "10"}),
        ("segments.list", "get", ws | {"with_count": "true"}),
        ("segments.get", "get", ws | {"id": "big"}),
        (
            "segments.update",
            "post",
            ws | {"id": "big", "name": "Big", "color": "green", "tree": TREE, "timezone": "UTC"},
        ),
        ("segments.preview", "post", ws | {"tree": TREE, "limit": 100}),
        ("segments.contacts", "get", ws | {"segment_id": "big", "limit": "10", "offset": "0"}),
        ("segments.rebuild", "post", ws | {"segment_id": "big"}),
        ("segments.delete", "post", ws | {"id": "big"}),
        ("contacts.delete", "post", ws | {"email": "c@x.io"}),
    ]
    for path, method, payload in calls:
        # when
        with django_capture_on_commit_callbacks(execute=True):
            if method == "post":
                response = api_client.post(f"/api/{path}", payload, format="json")
            else:
                response = api_client.get(f"/api/{path}", payload)
        # then
        assert response.status_code < 500, (path, response.content)
        if path == "contacts.getByExternalID":
            assert response.status_code == 404
            continue
        assert response.status_code in (200, 201), (path, response.content)
        conforms(schema, path, method, response)
        if path in ("contacts.list", "segments.contacts"):  # the lists' items were checked too
            assert "b@x.io" in str(response.json()), (path, response.json())
    assert Segment.objects.get(slug="big").status == Segment.Status.DELETED
    assert not SegmentMembership.objects.exists()
    assert set(Contact.objects.values_list("email", flat=True)) == {"a@x.io", "b@x.io"}
