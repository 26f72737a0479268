"""Fixtures for webhook tests: a real HTTP receiver on 127.0.0.1 and loopback let through."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from events_platform.workspaces.models import Workspace
from webhooks import services
from webhooks.events import EVENT_TYPE_NAMES
from webhooks.models import WebhookSubscription
from webhooks.receiver import Receiver


@pytest.fixture
def allow_loopback(settings: Any) -> None:
    """Loopback is refused by default; the test receiver lives there."""
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def receiver(allow_loopback: None) -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def subscribe(workspace: Workspace, url: str, **kwargs: Any) -> WebhookSubscription:
    """A subscription made through the service (every type unless told)."""
    kwargs.setdefault("event_types", list(EVENT_TYPE_NAMES))
    kwargs.setdefault("name", "receiver")
    return services.subscription_create(workspace_id=workspace.id, url=url, **kwargs)


def verify(secret: str, request: Any, at: Any = None) -> Any:
    """Check a received request with the independent ``standardwebhooks`` package; ``at`` is the
    moment its clock reads (a frozen clock's attempts carry frozen timestamps)."""
    from datetime import UTC, datetime

    import standardwebhooks.webhooks as oracle

    if at is None:
        return oracle.Webhook(secret).verify(request.body.decode(), request.headers)

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return at.astimezone(tz or UTC)

    real = oracle.datetime
    oracle.datetime = FrozenDatetime  # type: ignore[misc]  # freezes the oracle's clock: its module's datetime class
    try:
        return oracle.Webhook(secret).verify(request.body.decode(), request.headers)
    finally:
        oracle.datetime = real  # type: ignore[misc]  # the oracle's module-level datetime class, put back


def purchases(n: int, *, start: int = 0, emails: int | None = None) -> list[Any]:
    """``n`` purchase events ``order_<start>``.. (an hour old), one buyer each or cycling over ``emails``."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from contacts.services import EventInput

    return [
        EventInput(
            email=f"buyer{(start + i) % emails if emails else i}@example.com",
            event_name="order.completed",
            external_id=f"order_{start + i}",
            occurred_at=timezone.now() - timedelta(hours=1),
            goal={"goal_type": "purchase", "goal_value": Decimal("99.99")},
        )
        for i in range(n)
    ]


def buy(
    workspace: Workspace, email: str, external_id: str, value: str, *, days_ago: float = 1, deleted: bool = False
) -> None:
    """One purchase of ``value`` by ``email`` ``days_ago`` days ago, upserted through the contacts
    service (``deleted`` marks it deleted now)."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from contacts import services as contacts

    contacts.events_upsert(
        workspace_id=workspace.id,
        events=[
            contacts.EventInput(
                email=email,
                event_name="order.completed",
                external_id=external_id,
                occurred_at=timezone.now() - timedelta(days=days_ago),
                goal={"goal_type": "purchase", "goal_value": Decimal(value)},
                deleted_at=timezone.now() if deleted else None,
            )
        ],
    )
