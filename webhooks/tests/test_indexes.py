"""Every index of the outbox, deliveries and attempts serves a read, and that read uses it
(PostgreSQL EXPLAIN, ``events_platform.plans``); none is kept that the models do not name."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from django.db import connection

from contacts.services import events_upsert
from events_platform.plans import LIST, LOOKUP, plans, unnamed_indexes, uses
from webhooks import selectors, services
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookOutbox
from webhooks.receiver import Receiver

from .conftest import purchases, subscribe


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...): the plans of PostgreSQL's planner are under test")


@pytest.fixture
def delivered(workspace: Any, receiver: Receiver) -> list[Any]:
    """Two subscriptions, 12 events delivered to both (24 deliveries, an attempt each)."""
    subscriptions = [subscribe(workspace, receiver.url, name=n, event_types=["custom_event.created"]) for n in "ab"]
    events_upsert(workspace_id=workspace.id, events=purchases(12))
    services.outbox_fan_out()
    services.deliveries_send_due()
    assert WebhookAttempt.objects.count() == 24
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE webhooks_webhookdelivery, webhooks_webhookattempt, webhooks_webhookoutbox")
    return subscriptions


def test_no_webhook_table_keeps_an_index_the_model_does_not_name(delivered: list[Any]) -> None:
    """No foreign-key or _like pattern index of their own (webhooks migration 0002)."""
    for model in (WebhookOutbox, WebhookDelivery, WebhookAttempt):
        assert unnamed_indexes(model) == set(), model.__name__


def test_a_workspace_s_deliveries_page_reads_webhook_delivery_ws_idx(workspace: Any, delivered: list[Any]) -> None:
    uses(
        "webhook_delivery_ws_idx",
        plans(lambda: selectors.delivery_list(workspace_id=workspace.id), "webhooks_webhookdelivery", LIST),
    )


def test_a_subscription_s_deliveries_page_reads_webhook_delivery_sub_idx(workspace: Any, delivered: list[Any]) -> None:
    run = partial(selectors.delivery_list, workspace_id=workspace.id, subscription=delivered[0])
    uses("webhook_delivery_sub_idx", plans(run, "webhooks_webhookdelivery", LIST))


def test_a_delivery_is_found_by_its_message_id_through_its_unique_index(workspace: Any, delivered: list[Any]) -> None:
    message_id = WebhookDelivery.objects.values_list("message_id", flat=True).first()
    assert message_id is not None
    run = partial(selectors.delivery_get, workspace_id=workspace.id, message_id=message_id)
    uses("webhooks_webhookdelivery_message_id_key", plans(run, "webhooks_webhookdelivery", LOOKUP))


def test_a_delivery_s_attempts_read_webhook_attempt_delivery_idx(delivered: list[Any]) -> None:
    delivery = WebhookDelivery.objects.first()
    assert delivery is not None
    run = partial(selectors.attempt_list, delivery=delivery)
    uses("webhook_attempt_delivery_idx", plans(run, "webhooks_webhookattempt", LIST))
