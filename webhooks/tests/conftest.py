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
