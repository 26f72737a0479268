"""Request bodies and calls the contacts API tests share."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

UPSERT = "/api/customEvents.upsert"
# The seed's customer and order, in the tests' workspace.
SEED_EVENT = {"email": "customer@example.com", "event_name": "order.completed", "external_id": "order_12345"}


def event_body(**fields: Any) -> dict[str, Any]:
    """A customEvents.upsert body for workspace acme: the seed's event, ``fields`` added or replacing its values."""
    return {"workspace_id": "acme", **SEED_EVENT, **fields}


def upsert_ok(client: APIClient, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` to customEvents.upsert, which must answer 200; its JSON answer."""
    response = client.post(UPSERT, body, format="json")
    assert response.status_code == 200, response.content
    return response.json()
