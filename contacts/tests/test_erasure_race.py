"""contacts.delete racing ingest for the same email (PostgreSQL, real threads, real row locks).

Erasure wins cleanly and ingest lands after it (a new contact) or answers a retryable 409 in
the API's error format: never a 500, never an event or timeline row left without its contact.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from contacts.models import Contact, ContactTotals, CustomEvent, TimelineEntry
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.services import api_key_create, workspace_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

EMAIL = "erase-me@example.com"
# Each thread sends at least ROUNDS requests and keeps going for RACE_SECONDS (a busy machine
# still sees the requests interleave), never longer than RACE_CAP.
RACE_SECONDS = 4.0
ROUNDS = 12
RACE_CAP = 90.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row-lock races need PostgreSQL (SQLite runs one writer at a time)")


def client_for(workspace: Workspace) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(workspace=workspace, name='race').secret}")
    return client


def event(n: int) -> dict[str, Any]:
    return {
        "email": EMAIL,
        "event_name": "order.completed",
        "external_id": f"o{n % 7}",  # a few keys, rewritten over and over
        "occurred_at": (T0 + timedelta(seconds=n)).isoformat(),
        "goal_type": "purchase",
        "goal_value": 10,
    }


def race(workspace: Workspace) -> list[tuple[str, int, dict[str, Any], dict[str, str]]]:
    """Three ingest threads (import, upsert, contacts.upsert) and one erasing thread, for a few
    seconds; every answer as (operation, status, json body, headers)."""
    answers: list[tuple[str, int, dict[str, Any], dict[str, str]]] = []
    started = time.monotonic()
    errors: list[BaseException] = []

    def run(name: str, send: Callable[[APIClient, int], Any]) -> None:
        client = client_for(workspace)
        n = 0
        try:
            while (time.monotonic() - started < RACE_SECONDS or n < ROUNDS) and time.monotonic() - started < RACE_CAP:
                n += 1
                response = send(client, n)
                body = response.json() if response.get("Content-Type", "").startswith("application/json") else {}
                answers.append((name, response.status_code, body, dict(response.headers)))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    senders: dict[str, Callable[[APIClient, int], Any]] = {
        "import": lambda c, n: c.post(
            "/api/customEvents.import",
            {"workspace_id": workspace.id, "events": [event(3 * n), event(3 * n + 1)]},
            format="json",
        ),
        "upsert": lambda c, n: c.post(
            "/api/customEvents.upsert", {"workspace_id": workspace.id, **event(3 * n + 2)}, format="json"
        ),
        "contacts.upsert": lambda c, n: c.post(
            "/api/contacts.upsert",
            {"workspace_id": workspace.id, "email": EMAIL, "first_name": f"Ann {n}"},
            format="json",
        ),
        "contacts.delete": lambda c, n: c.post(
            "/api/contacts.delete", {"workspace_id": workspace.id, "email": EMAIL}, format="json"
        ),
    }
    threads = [threading.Thread(target=run, args=item) for item in senders.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=RACE_CAP + 60)
    assert not errors, errors
    return answers


def test_erasure_racing_ingest_answers_no_500_and_leaves_no_orphan() -> None:
    """Every answer is a success, a 404 (nothing left to erase) or a retryable JSON 409; at the end
    nothing refers to an erased contact, and one more erasure leaves nothing of the email behind."""
    # given
    workspace = workspace_create(workspace_id="race", name="Race")
    # when
    answers = race(workspace)
    # then
    statuses = Counter((name, status) for name, status, _, _ in answers)
    assert all(status in (200, 201, 404, 409) for _, status in statuses), statuses
    assert statuses[("contacts.delete", 200)] > 0, statuses  # erasures did happen mid-race
    assert sum(n for (name, status), n in statuses.items() if name != "contacts.delete" and status < 300) > 0
    for name, status, body, headers in answers:
        if status == 409:
            assert body["error"] and "again" in body["error"], (name, body)
            assert headers.get("Retry-After") == "1"
        if status == 404:
            assert name == "contacts.delete", (name, body)
    live = set(Contact.objects.values_list("pk", flat=True))
    assert len(live) <= 1
    assert set(CustomEvent.objects.values_list("contact_id", flat=True)) <= live
    assert set(TimelineEntry.objects.values_list("contact_id", flat=True)) <= live
    assert set(ContactTotals.objects.values_list("contact_id", flat=True)) <= live

    # when the erasure comes last
    client = client_for(workspace)
    if live:
        assert (
            client.post("/api/contacts.delete", {"workspace_id": "race", "email": EMAIL}, format="json").status_code
            == 200
        )
    # then nothing of the email is left, and the next event creates a new contact
    assert not Contact.objects.exists() and not CustomEvent.objects.exists() and not TimelineEntry.objects.exists()
    response = client.post("/api/customEvents.upsert", {"workspace_id": "race", **event(10_000)}, format="json")
    assert response.status_code == 200
    assert Contact.objects.get().pk not in live
