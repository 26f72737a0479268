"""Reads for webhooks: subscriptions, their deliveries and the attempts of one delivery."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet

from .models import WebhookAttempt, WebhookDelivery, WebhookSubscription


def subscription_list(*, workspace_id: str) -> list[WebhookSubscription]:
    """Newest first (a workspace has at most a few dozen)."""
    return list(WebhookSubscription.objects.filter(workspace_id=workspace_id).order_by("-created_at", "-id"))


def subscription_get(*, workspace_id: str, public_id: str) -> WebhookSubscription | None:
    return WebhookSubscription.objects.filter(workspace_id=workspace_id, public_id=public_id).first()


def subscriptions_with_counts(*, workspace_id: str) -> list[WebhookSubscription]:
    """For the Webhooks page: each subscription with how many deliveries wait and failed (one query)."""
    Status = WebhookDelivery.Status
    return list(
        WebhookSubscription.objects.filter(workspace_id=workspace_id)
        .annotate(
            waiting_count=Count("deliveries", filter=Q(deliveries__status__in=[Status.PENDING, Status.DELIVERING])),
            failed_count=Count("deliveries", filter=Q(deliveries__status=Status.FAILED)),
        )
        .order_by("-created_at", "-id")
    )


@dataclass(frozen=True)
class DeliveryPage:
    items: list[WebhookDelivery]
    total: int
    limit: int
    offset: int


def _deliveries(
    *, workspace_id: str, subscription: WebhookSubscription | None, status: str | None, event_type: str | None
) -> QuerySet[WebhookDelivery]:
    rows = WebhookDelivery.objects.filter(workspace_id=workspace_id)
    if subscription is not None:
        rows = rows.filter(subscription_id=subscription.pk)
    if status:
        rows = rows.filter(status=status)
    if event_type:
        rows = rows.filter(event_type=event_type)
    return rows


def delivery_list(
    *,
    workspace_id: str,
    subscription: WebhookSubscription | None = None,
    status: str | None = None,
    event_type: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> DeliveryPage:
    """Newest first, with the total matching (Notifuse's offset pages): two queries."""
    rows = _deliveries(workspace_id=workspace_id, subscription=subscription, status=status, event_type=event_type)
    items = list(rows.select_related("subscription").order_by("-created_at", "-id")[offset : offset + limit])
    total = rows.count()
    return DeliveryPage(items=items, total=total, limit=limit, offset=offset)


def delivery_get(*, workspace_id: str, message_id: str) -> WebhookDelivery | None:
    return (
        WebhookDelivery.objects.filter(workspace_id=workspace_id, message_id=message_id)
        .select_related("subscription")
        .first()
    )


def attempt_list(*, delivery: WebhookDelivery) -> list[WebhookAttempt]:
    return list(WebhookAttempt.objects.filter(delivery_id=delivery.pk).order_by("number", "id"))


def deliveries_with_last_attempt(*, deliveries: list[WebhookDelivery]) -> dict[int, WebhookAttempt]:
    """The latest attempt of each delivery (one query), for showing resolved IP and error kind."""
    latest: dict[int, WebhookAttempt] = {}
    for attempt in WebhookAttempt.objects.filter(delivery_id__in=[d.pk for d in deliveries]).order_by("number", "id"):
        latest[attempt.delivery_id] = attempt
    return latest


def delivery_payload(delivery: WebhookDelivery) -> Any:
    """The ``data`` object the delivery carries (Notifuse's ``payload``)."""
    return json.loads(delivery.body).get("data")
