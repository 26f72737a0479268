"""Helpers for the segments API tests: purchases and API calls that let the build run (trees: ``trees``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any

from django.utils import timezone
from rest_framework.test import APIClient

from contacts.services import EventInput, events_upsert
from segments.models import Segment, SegmentMembership

CaptureOnCommit = Callable[..., AbstractContextManager[Any]]


def purchase(
    email: str,
    external_id: str,
    value: str,
    *,
    days_ago: float = 1,
    now: dt.datetime | None = None,
    deleted: bool = False,
) -> EventInput:
    """A purchase ``days_ago`` days before ``now`` (default: the real now), as the API would store it."""
    now = now or timezone.now()
    return EventInput(
        email=email,
        event_name="order.completed",
        external_id=external_id,
        occurred_at=now - dt.timedelta(days=days_ago),
        properties={"currency": "USD"},
        goal={"goal_type": "purchase", "goal_value": Decimal(value)},
        deleted_at=now if deleted else None,
    )


def store(workspace_id: str, events: list[EventInput]) -> None:
    """Store events through the ingest service, in API-sized batches."""
    for start in range(0, len(events), 50):
        events_upsert(workspace_id=workspace_id, events=events[start : start + 50])


def post(client: APIClient, path: str, body: dict[str, Any], capture: CaptureOnCommit) -> Any:
    """POST, then run what the request queued for after its commit (the build, in-process)."""
    with capture(execute=True):
        response = client.post(f"/api/{path}", body, format="json")
    return response


def create_from_template(client: APIClient, template: str, capture: CaptureOnCommit) -> Any:
    """segments.create of the built-in ``template`` in workspace ``acme``, its id the template's, built."""
    return post(client, "segments.create", {"workspace_id": "acme", "id": template, "template": template}, capture)


def get(client: APIClient, path: str, params: dict[str, Any]) -> Any:
    return client.get(f"/api/{path}", params)


def member_emails(workspace_id: str, slug: str) -> set[str]:
    segment = Segment.objects.get(workspace_id=workspace_id, slug=slug)
    return set(SegmentMembership.objects.filter(segment=segment).values_list("contact__email", flat=True))
