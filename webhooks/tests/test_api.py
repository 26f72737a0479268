"""webhookSubscriptions.* over HTTP: Notifuse's shapes, our errors, 403 across workspaces."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from rest_framework.test import APIClient

from contacts import services as contacts
from events_platform.workspaces.services import api_key_create, workspace_create
from webhooks import network, selectors, services
from webhooks.events import EVENT_TYPE_NAMES
from webhooks.models import WebhookDelivery
from webhooks.receiver import Receiver

from .conftest import subscribe, verify

API = "/api/webhookSubscriptions"
URL = "https://hooks.example.com/in"


@pytest.fixture(autouse=True)
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(network, "resolve", lambda host, port: [ipaddress.ip_address("93.184.216.34")])


def _create(client: APIClient, workspace: Any, **body: Any) -> Any:
    payload = {"workspace_id": workspace.id, "name": "CRM", "url": URL, "event_types": ["custom_event.created"]}
    payload.update(body)
    return client.post(f"{API}.create", payload, format="json")


def test_create_answers_201_with_notifuses_subscription(api_client: APIClient, workspace: Any) -> None:
    """The subscription carries id (32 hex), a whsec_ secret, settings and their flattened copies."""
    # when
    response = _create(
        api_client,
        workspace,
        event_types=["custom_event.created", "segment.joined"],
        custom_event_filters={"goal_types": ["purchase"], "event_names": None},
        segment_ids=None,
    )
    # then
    assert response.status_code == 201, response.json()
    sub = response.json()["subscription"]
    assert len(sub["id"]) == 32 and int(sub["id"], 16) >= 0
    assert sub["secret"].startswith("whsec_")
    assert sub["enabled"] is True
    assert sub["event_types"] == ["custom_event.created", "segment.joined"]
    assert sub["custom_event_filters"] == {"goal_types": ["purchase"]}
    assert sub["settings"] == {
        "event_types": ["custom_event.created", "segment.joined"],
        "custom_event_filters": {"goal_types": ["purchase"]},
        "segment_ids": [],
    }
    assert "last_delivery_at" not in sub
    assert sub["created_at"].endswith("Z")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": ""}, "name", "name"),
        ({"url": "http://example.com/x"}, "url", "https"),
        ({"url": "https://127.0.0.1/x"}, "url", "127.0.0.1"),
        ({"url": 5}, "url", "string"),
        ({"event_types": []}, "event_types", "at least one"),
        ({"event_types": ["email.sent", "custom_event.created", "list.subscribed"]}, "event_types", "email.sent"),
        ({"event_types": "contact.created"}, "event_types", "list"),
        ({"custom_event_filters": {"goal_types": ["gold"]}}, "custom_event_filters.goal_types", "gold"),
        ({"custom_event_filters": {"event_names": ["Order Done"]}}, "custom_event_filters.event_names", "Order"),
        ({"custom_event_filters": "purchase"}, "custom_event_filters", ""),
        ({"segment_ids": ["nope"]}, "segment_ids", "nope"),
    ],
)
def test_create_rejects_bad_input_naming_the_field(
    api_client: APIClient, workspace: Any, body: dict[str, Any], field: str, words: str
) -> None:
    """Each problem is a 400 in our error format whose details name the field (and the bad value)."""
    # when
    response = _create(api_client, workspace, **body)
    # then
    assert response.status_code == 400
    data = response.json()
    assert isinstance(data["error"], str) and data["error"]
    matching = [key for key in data["details"] if key.startswith(field)]
    assert matching, data
    assert words in " ".join(data["details"][matching[0]])


def test_another_workspaces_key_gets_403_and_no_key_401(api_client: APIClient, workspace: Any) -> None:
    """A key used with another workspace_id is 403 on every endpoint; no key is 401."""
    # given
    other = workspace_create(workspace_id="other", name="Other")
    foreign = APIClient()
    foreign.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(workspace=other, name='k').secret}")
    subscription = subscribe(workspace, URL)
    # when / then
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("post", "create", {"name": "x", "url": URL, "event_types": ["contact.created"]}),
        ("get", "list", {}),
        ("get", "get", {"id": subscription.public_id}),
        ("post", "delete", {"id": subscription.public_id}),
        ("post", "toggle", {"id": subscription.public_id, "enabled": False}),
        ("get", "deliveries", {}),
    ]
    for method, verb, params in calls:
        body = {"workspace_id": workspace.id, **params}
        response = getattr(foreign, method)(f"{API}.{verb}", body, format="json" if method == "post" else None)
        assert response.status_code == 403, (verb, response.json())
        assert response.json()["error"]
    assert APIClient().get(f"{API}.list", {"workspace_id": workspace.id}).status_code == 401
    assert selectors.subscription_get(workspace_id=workspace.id, public_id=subscription.public_id)


def test_list_get_update_toggle_regenerate_delete(api_client: APIClient, workspace: Any) -> None:
    """The whole life of a subscription through the API."""
    # given
    first = _create(api_client, workspace, name="first").json()["subscription"]
    second = _create(
        api_client, workspace, name="second", custom_event_filters={"event_names": ["order.completed"]}
    ).json()["subscription"]
    ws = workspace.id
    # list: newest first
    listed = api_client.get(f"{API}.list", {"workspace_id": ws}).json()["subscriptions"]
    assert [s["name"] for s in listed] == ["second", "first"]
    # get
    got = api_client.get(f"{API}.get", {"workspace_id": ws, "id": first["id"]}).json()["subscription"]
    assert got == first
    # update: a full replacement; filters left out are cleared; enabled omitted is kept
    updated = api_client.post(
        f"{API}.update",
        {"workspace_id": ws, "id": second["id"], "name": "renamed", "url": URL, "event_types": ["contact.created"]},
        format="json",
    ).json()["subscription"]
    assert (updated["name"], updated["event_types"], updated["enabled"]) == ("renamed", ["contact.created"], True)
    assert "custom_event_filters" not in updated
    # toggle
    off = api_client.post(f"{API}.toggle", {"workspace_id": ws, "id": first["id"], "enabled": False}, format="json")
    assert off.json()["subscription"]["enabled"] is False
    assert off.json()["subscription"]["disabled_reason"] == "manual"
    # regenerateSecret
    regenerated = api_client.post(f"{API}.regenerateSecret", {"workspace_id": ws, "id": first["id"]}, format="json")
    sub = regenerated.json()["subscription"]
    assert sub["secret"] != first["secret"] and sub["secret"].startswith("whsec_")
    assert sub["previous_secret_expires_at"] is not None
    # delete, then it is gone
    deleted = api_client.post(f"{API}.delete", {"workspace_id": ws, "id": first["id"]}, format="json")
    assert deleted.json() == {"success": True}
    missing = api_client.get(f"{API}.get", {"workspace_id": ws, "id": first["id"]})
    assert missing.status_code == 404 and missing.json()["error"]
    assert api_client.post(f"{API}.delete", {"workspace_id": ws, "id": first["id"]}, format="json").status_code == 404


def test_list_is_an_empty_array_without_subscriptions(api_client: APIClient, workspace: Any) -> None:
    """Notifuse answers null here; we answer []."""
    assert api_client.get(f"{API}.list", {"workspace_id": workspace.id}).json() == {"subscriptions": []}


def test_event_types_lists_exactly_what_we_emit(api_client: APIClient) -> None:
    """eventTypes needs no workspace_id and lists the nine types."""
    response = api_client.get(f"{API}.eventTypes")
    assert response.status_code == 200
    assert response.json()["event_types"] == [
        "custom_event.created",
        "custom_event.updated",
        "custom_event.deleted",
        "contact.created",
        "contact.updated",
        "contact.deleted",
        "segment.joined",
        "segment.left",
        "rfm.group_changed",
    ]
    assert list(EVENT_TYPE_NAMES) == response.json()["event_types"]


def test_wrong_methods_and_bad_bodies_are_json_errors(api_client: APIClient, workspace: Any) -> None:
    """405 and malformed bodies answer JSON with an error string, never HTML or a 500."""
    assert api_client.get(f"{API}.create").status_code == 405
    assert api_client.get(f"{API}.create").json()["error"]
    bad = api_client.post(f"{API}.create", "[1, 2]", content_type="application/json")
    assert bad.status_code == 400 and bad.json()["error"]
    garbage = api_client.post(f"{API}.toggle", "{not json", content_type="text/plain")
    assert garbage.status_code == 400 and garbage.json()["error"]
    missing = api_client.post(f"{API}.toggle", {"workspace_id": workspace.id, "id": "x"}, format="json")
    assert missing.status_code == 400 and "enabled" in missing.json()["details"]


def _delivered(workspace: Any, receiver: Receiver, n: int) -> Any:
    subscription = subscribe(workspace, receiver.url, event_types=["contact.created"])
    for i in range(n):
        contacts.contact_upsert(workspace_id=workspace.id, email=f"c{i}@example.com", fields={})
    services.outbox_fan_out()
    services.deliveries_send_due()
    return subscription


def test_deliveries_and_attempts(api_client: APIClient, workspace: Any, receiver: Receiver) -> None:
    """deliveries pages newest first with total, limit (capped at 100) and offset; payload is the
    data object; attempts shows each attempt with its resolved address."""
    # given
    subscription = _delivered(workspace, receiver, 3)
    ws = workspace.id
    # when
    page = api_client.get(
        f"{API}.deliveries", {"workspace_id": ws, "subscription_id": subscription.public_id, "limit": 2}
    ).json()
    capped = api_client.get(f"{API}.deliveries", {"workspace_id": ws, "limit": 500, "offset": 1}).json()
    # then
    assert (page["total"], page["limit"], page["offset"], len(page["deliveries"])) == (3, 2, 0, 2)
    delivery = page["deliveries"][0]
    assert delivery["id"].startswith("msg_")
    assert delivery["status"] == "delivered"
    assert delivery["payload"]["contact"]["email"] == "c2@example.com"
    assert (delivery["attempts"], delivery["max_attempts"], delivery["last_response_status"]) == (1, 10, 200)
    assert (capped["limit"], capped["offset"], len(capped["deliveries"])) == (100, 1, 2)
    assert api_client.get(f"{API}.deliveries", {"workspace_id": ws, "status": "failed"}).json()["total"] == 0
    attempts = api_client.get(f"{API}.attempts", {"workspace_id": ws, "delivery_id": delivery["id"]}).json()
    assert attempts["attempts"][0]["resolved_ip"] == "127.0.0.1"
    assert attempts["attempts"][0]["status_code"] == 200
    assert api_client.get(f"{API}.attempts", {"workspace_id": ws, "delivery_id": "msg_x"}).status_code == 404


def test_deliveries_endpoint_queries_are_bounded(
    api_client: APIClient, workspace: Any, receiver: Receiver, django_assert_max_num_queries: Any
) -> None:
    """Listing a page of deliveries costs the same few queries for 3 or 30 deliveries."""
    _delivered(workspace, receiver, 30)
    with django_assert_max_num_queries(5):
        response = api_client.get(f"{API}.deliveries", {"workspace_id": workspace.id, "limit": 100})
    assert len(response.json()["deliveries"]) == 30
    with django_assert_max_num_queries(3):
        api_client.get(f"{API}.list", {"workspace_id": workspace.id})


def test_test_sends_a_signed_sample_now(api_client: APIClient, workspace: Any, receiver: Receiver) -> None:
    """test posts a signed sample of the real shape synchronously and reports the answer."""
    # given
    subscription = subscribe(workspace, receiver.url, event_types=["custom_event.created"])
    # when
    response = api_client.post(
        f"{API}.test", {"workspace_id": workspace.id, "id": subscription.public_id}, format="json"
    ).json()
    # then
    assert (response["success"], response["status_code"], response["response_body"]) == (True, 200, "ok")
    body = verify(subscription.secret, receiver.requests[0])
    assert body["type"] == "custom_event.created"
    assert set(body["data"]["custom_event"]) >= {"event_name", "external_id", "email", "goal_value", "occurred_at"}
    assert receiver.requests[0].headers["webhook-id"].startswith("test_")
    assert WebhookDelivery.objects.get().is_test


def test_test_reports_a_transport_failure(api_client: APIClient, workspace: Any, allow_loopback: None) -> None:
    """An endpoint that does not answer gives success false and status_code 0 with the error."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subscription = subscribe(workspace, f"http://127.0.0.1:{port}/x", event_types=["contact.created"])
    response = api_client.post(
        f"{API}.test",
        {"workspace_id": workspace.id, "id": subscription.public_id, "event_type": "contact.created"},
        format="json",
    ).json()
    assert (response["success"], response["status_code"]) == (False, 0)
    assert response["error"]


def test_replay_one_or_failed_since(api_client: APIClient, workspace: Any, receiver: Receiver) -> None:
    """replay takes a delivery_id, or subscription_id with since; anything else is a 400."""
    # given
    subscription = _delivered(workspace, receiver, 2)
    delivery = WebhookDelivery.objects.order_by("id").first()
    assert delivery is not None
    ws = workspace.id
    # when / then
    one = api_client.post(f"{API}.replay", {"workspace_id": ws, "delivery_id": delivery.message_id}, format="json")
    assert one.json() == {"success": True, "count": 1}
    since = api_client.post(
        f"{API}.replay",
        {"workspace_id": ws, "subscription_id": subscription.public_id, "since": "2020-01-01T00:00:00Z"},
        format="json",
    )
    assert since.json() == {"success": True, "count": 0}  # none failed
    neither = api_client.post(f"{API}.replay", {"workspace_id": ws}, format="json")
    assert neither.status_code == 400 and "delivery_id" in neither.json()["details"]
    no_since = api_client.post(
        f"{API}.replay", {"workspace_id": ws, "subscription_id": subscription.public_id}, format="json"
    )
    assert no_since.status_code == 400 and "since" in no_since.json()["details"]


def test_the_openapi_schema_documents_every_endpoint(api_client: APIClient) -> None:
    """drf-spectacular's schema has all twelve operations."""
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    verbs = "create list get update delete toggle regenerateSecret deliveries attempts test replay eventTypes"
    assert {f"webhookSubscriptions.{v}" for v in verbs.split()} <= operations
