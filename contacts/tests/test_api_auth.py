"""Authentication (401), workspace access (403, no enumeration) and isolation between workspaces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from conftest import IssuedApiKey
from contacts.tests.factories import EventInputFactory, events_create
from events_platform.workspaces.models import ApiKey, Workspace
from events_platform.workspaces.services import api_key_revoke

SEED_BODY = {
    "workspace_id": "acme",
    "email": "customer@example.com",
    "event_name": "order.completed",
    "external_id": "order_12345",
    "goal_type": "purchase",
    "goal_value": 149.99,
}

# (method, path, payload without workspace_id) of every endpoint.
Endpoint = tuple[str, str, dict[str, Any]]
ENDPOINTS: list[Endpoint] = [
    ("post", "/api/customEvents.upsert", {k: v for k, v in SEED_BODY.items() if k != "workspace_id"}),
    ("post", "/api/customEvents.import", {"events": [{k: v for k, v in SEED_BODY.items() if k != "workspace_id"}]}),
    ("get", "/api/customEvents.get", {"event_name": "order.completed", "external_id": "order_12345"}),
    ("get", "/api/customEvents.list", {"email": "customer@example.com"}),
    ("post", "/api/contacts.upsert", {"email": "customer@example.com", "first_name": "Ann"}),
    ("get", "/api/contacts.get", {"email": "customer@example.com"}),
    ("get", "/api/contacts.list", {}),
    ("post", "/api/contacts.delete", {"email": "customer@example.com"}),
    ("get", "/api/timeline.list", {"email": "customer@example.com"}),
]
ENDPOINT_IDS = [path.removeprefix("/api/") for _, path, _ in ENDPOINTS]


def call(client: APIClient, method: str, path: str, payload: dict[str, Any], workspace_id: str | None) -> Any:
    data = dict(payload) if workspace_id is None else {"workspace_id": workspace_id, **payload}
    if method == "post":
        return client.post(path, data, format="json")
    return client.get(path, data)


@pytest.fixture
def stored_data(workspace: Workspace) -> None:
    """The seed customer with their order in the key's own workspace, so a leak would show."""
    events_create(
        workspace, [EventInputFactory.build(email="customer@example.com", external_id="order_12345", properties={})]
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_request_without_a_key_is_a_401(
    stored_data: None, row_counts: Callable[[], dict[str, int]], endpoint: Endpoint
) -> None:
    """No Authorization header: 401 in the error format, with a Bearer challenge; nothing written."""
    # given
    client = APIClient()
    before = row_counts()
    # when
    response = call(client, *endpoint, "acme")
    # then
    assert response.status_code == 401, response.content
    assert set(response.json()) == {"error", "details"}
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert row_counts() == before


@pytest.mark.parametrize(
    "header",
    ["Bearer ep_not_a_real_key", "Bearer", "Token ep_x", "Basic dXNlcjpwYXNz", "Bearer a b", "ep_x"],
)
@pytest.mark.parametrize("endpoint", ENDPOINTS[:3], ids=ENDPOINT_IDS[:3])
def test_request_with_a_bad_key_is_a_401(
    stored_data: None,
    row_counts: Callable[[], dict[str, int]],
    header: str,
    endpoint: Endpoint,
) -> None:
    """An unknown key or a malformed Authorization header is a 401; nothing written."""
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    before = row_counts()
    # when
    response = call(client, *endpoint, "acme")
    # then
    assert response.status_code == 401, response.content
    assert response.json()["error"]
    assert row_counts() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_request_with_a_revoked_key_is_a_401(
    stored_data: None,
    api_key: IssuedApiKey,
    api_client: APIClient,
    row_counts: Callable[[], dict[str, int]],
    endpoint: Endpoint,
) -> None:
    """Once revoked, a key opens nothing."""
    # given
    api_key_revoke(api_key=api_key.api_key)
    before = row_counts()
    # when
    response = call(api_client, *endpoint, "acme")
    # then
    assert response.status_code == 401, response.content
    assert row_counts() == before


def test_a_valid_key_records_when_it_was_last_used(api_key: IssuedApiKey, api_client: APIClient) -> None:
    """last_used_at is set on use, so staff can see which keys are alive."""
    # given
    assert api_key.api_key.last_used_at is None
    # when
    api_client.get("/api/contacts.list", {"workspace_id": "acme"})
    # then
    assert ApiKey.objects.get(pk=api_key.api_key.pk).last_used_at is not None


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_key_used_with_another_workspace_is_a_403_whether_it_exists_or_not(
    stored_data: None,
    other_workspace: Workspace,
    api_client: APIClient,
    other_api_client: APIClient,
    row_counts: Callable[[], dict[str, int]],
    endpoint: Endpoint,
) -> None:
    """A key of globex used on acme, and on a workspace that does not exist, gets the same 403; nothing happens."""
    # given: acme holds the customer and the order; globex's key asks for them
    before = row_counts()
    # when
    existing = call(other_api_client, *endpoint, "acme")
    missing = call(other_api_client, *endpoint, "nowhere")
    # then
    assert existing.status_code == 403, existing.content
    assert missing.status_code == 403, missing.content
    # The bodies may echo the workspace_id the client sent, and nothing else differs.
    assert existing.json() == {
        key: value.replace("nowhere", "acme") if isinstance(value, str) else value
        for key, value in missing.json().items()
    }
    assert existing.json()["details"] == {}
    assert "customer@example.com" not in existing.content.decode()
    assert row_counts() == before
    assert call(api_client, "get", "/api/contacts.get", {"email": "customer@example.com"}, "acme").status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_access_is_checked_before_the_payload_is_validated(
    other_workspace: Workspace,
    other_api_client: APIClient,
    row_counts: Callable[[], dict[str, int]],
    endpoint: Endpoint,
) -> None:
    """An invalid payload sent to a foreign workspace is a 403, not a 400 that would describe the payload."""
    # given
    method, path, payload = endpoint
    invalid = {key: "INVALID value" for key in payload} | {"limit": "many"}
    before = row_counts()
    # when
    response = call(other_api_client, method, path, invalid, "acme")
    # then
    assert response.status_code == 403, response.content
    assert row_counts() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_missing_workspace_id_is_a_400_on_every_endpoint(
    api_client: APIClient, row_counts: Callable[[], dict[str, int]], endpoint: Endpoint
) -> None:
    """workspace_id is required in the body of POSTs and the query of GETs."""
    # given
    before = row_counts()
    # when
    response = call(api_client, *endpoint, None)
    # then
    assert response.status_code == 400, response.content
    assert "workspace_id" in response.json()["details"]
    assert row_counts() == before


def test_workspace_id_in_the_query_of_a_post_does_not_count(api_client: APIClient) -> None:
    """POSTs name their workspace in the JSON body; a query parameter alone is a 400."""
    # given
    body = {k: v for k, v in SEED_BODY.items() if k != "workspace_id"}
    # when
    response = api_client.post("/api/customEvents.upsert?workspace_id=acme", body, format="json")
    # then
    assert response.status_code == 400
    assert "workspace_id" in response.json()["details"]


# --- isolation ----------------------------------------------------------------------------


@pytest.fixture
def two_tenants(workspace: Workspace, other_workspace: Workspace) -> None:
    """The same customer email and the same event identity exist in both workspaces, with different data."""
    events_create(
        workspace,
        [EventInputFactory.build(email="shared@example.com", external_id="order_1", properties={"tenant": "acme"})],
    )
    events_create(
        other_workspace,
        [
            EventInputFactory.build(email="shared@example.com", external_id="order_1", properties={"tenant": "globex"}),
            EventInputFactory.build(
                email="only-globex@example.com", external_id="order_2", properties={"tenant": "globex"}
            ),
        ],
    )


def test_same_identity_in_two_workspaces_is_two_events(two_tenants: None, api_client: APIClient) -> None:
    """customEvents.get with acme's key returns acme's row, never globex's."""
    # when
    response = api_client.get(
        "/api/customEvents.get", {"workspace_id": "acme", "event_name": "order.completed", "external_id": "order_1"}
    )
    # then
    assert response.status_code == 200
    assert response.json()["event"]["properties"] == {"tenant": "acme"}
    assert response.json()["event"]["workspace_id"] == "acme"


def test_get_does_not_find_another_workspaces_event(two_tenants: None, api_client: APIClient) -> None:
    """An event that exists only in globex is a 404 for acme's key."""
    # when
    response = api_client.get(
        "/api/customEvents.get", {"workspace_id": "acme", "event_name": "order.completed", "external_id": "order_2"}
    )
    # then
    assert response.status_code == 404


def test_list_by_event_name_shows_only_own_workspace(two_tenants: None, api_client: APIClient) -> None:
    """customEvents.list?event_name= lists acme's events only."""
    # when
    response = api_client.get("/api/customEvents.list", {"workspace_id": "acme", "event_name": "order.completed"})
    # then
    assert [e["properties"] for e in response.json()["events"]] == [{"tenant": "acme"}]


def test_list_by_email_shows_only_own_workspace(two_tenants: None, api_client: APIClient) -> None:
    """customEvents.list?email= for an email known in both workspaces lists acme's events only."""
    # when
    shared = api_client.get("/api/customEvents.list", {"workspace_id": "acme", "email": "shared@example.com"})
    foreign = api_client.get("/api/customEvents.list", {"workspace_id": "acme", "email": "only-globex@example.com"})
    # then
    assert [e["properties"] for e in shared.json()["events"]] == [{"tenant": "acme"}]
    assert foreign.json()["events"] == []


def test_timeline_shows_only_own_workspace(two_tenants: None, api_client: APIClient) -> None:
    """timeline.list of the shared email holds acme's entries; globex's contact is unknown to acme."""
    # when
    shared = api_client.get("/api/timeline.list", {"workspace_id": "acme", "email": "shared@example.com"})
    foreign = api_client.get("/api/timeline.list", {"workspace_id": "acme", "email": "only-globex@example.com"})
    # then
    events = [entry["event"] for entry in shared.json()["timeline"] if entry["event"]]
    assert [e["properties"] for e in events] == [{"tenant": "acme"}]
    assert foreign.status_code == 404


def test_contacts_show_only_own_workspace(two_tenants: None, api_client: APIClient) -> None:
    """contacts.list and contacts.get never return globex's contacts."""
    # when
    listed = api_client.get("/api/contacts.list", {"workspace_id": "acme"})
    foreign = api_client.get("/api/contacts.get", {"workspace_id": "acme", "email": "only-globex@example.com"})
    # then
    assert [c["email"] for c in listed.json()["contacts"]] == ["shared@example.com"]
    assert {c["workspace_id"] for c in listed.json()["contacts"]} == {"acme"}
    assert foreign.status_code == 404


def test_contacts_delete_leaves_the_other_workspaces_contact(
    two_tenants: None, api_client: APIClient, other_api_client: APIClient
) -> None:
    """Erasing acme's shared@ keeps globex's shared@ and its events."""
    # when
    response = api_client.post(
        "/api/contacts.delete", {"workspace_id": "acme", "email": "shared@example.com"}, format="json"
    )
    # then
    assert response.status_code == 200
    kept = other_api_client.get("/api/customEvents.list", {"workspace_id": "globex", "email": "shared@example.com"})
    assert [e["properties"] for e in kept.json()["events"]] == [{"tenant": "globex"}]
