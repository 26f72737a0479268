"""Helpers for the segments API tests: rule trees, purchases and API calls that let the build run."""

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


def goal_leaf(
    aggregate: str,
    operator: str,
    value: float | str,
    *,
    timeframe: str = "anytime",
    days: int | None = None,
    value_2: float | str | None = None,
    negate: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "goal_type": "purchase",
        "aggregate_operator": aggregate,
        "operator": operator,
        "value": value,
        "timeframe_operator": timeframe,
    }
    if days is not None:
        body["timeframe_values"] = [str(days)]
    if value_2 is not None:
        body["value_2"] = value_2
    node: dict[str, Any] = {"kind": "leaf", "leaf": {"source": "custom_events_goals", "custom_events_goal": body}}
    if negate:
        node["negate"] = True
    return node


def segment_leaf(slug: str, operator: str = "in_segment") -> dict[str, Any]:
    return {"kind": "leaf", "leaf": {"source": "segment", "segment": {"segment_id": slug, "operator": operator}}}


def all_of(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "branch", "branch": {"operator": "and", "leaves": list(nodes)}}


def any_of(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "branch", "branch": {"operator": "or", "leaves": list(nodes)}}


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


def get(client: APIClient, path: str, params: dict[str, Any]) -> Any:
    return client.get(f"/api/{path}", params)


def member_emails(workspace_id: str, slug: str) -> set[str]:
    segment = Segment.objects.get(workspace_id=workspace_id, slug=slug)
    return set(SegmentMembership.objects.filter(segment=segment).values_list("contact__email", flat=True))
