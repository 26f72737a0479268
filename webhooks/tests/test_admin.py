"""Admin: every webhooks model listed with bounded queries; subscriptions saved through the services."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contacts import services as contacts
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookSubscription
from webhooks.receiver import Receiver

from .conftest import subscribe


def _deliver(workspace: Any, url: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        contacts.contact_upsert(workspace_id=workspace.id, email=f"a{i}@example.com", fields={})
    services.outbox_fan_out()
    services.deliveries_send_due()


def _queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize(
    "name",
    ["webhooksubscription", "webhookdelivery", "webhookattempt", "webhookoutbox"],
)
def test_changelists_cost_the_same_for_5_or_30_rows(
    admin_client: Any, workspace: Any, receiver: Receiver, name: str
) -> None:
    """Each changelist's query count does not grow with its rows."""
    subscribe(workspace, receiver.url, event_types=["contact.created"])
    url = reverse(f"admin:webhooks_{name}_changelist")
    _deliver(workspace, receiver.url, 5)
    few = _queries(admin_client, url)
    _deliver(workspace, receiver.url, 25, start=5)
    assert _queries(admin_client, url) == few


def test_delivery_page_shows_attempts_with_bounded_queries(
    admin_client: Any, workspace: Any, receiver: Receiver
) -> None:
    """A delivery's admin page lists its attempts inline, read-only."""
    subscribe(workspace, receiver.url, event_types=["contact.created"])
    _deliver(workspace, receiver.url, 1)
    delivery = WebhookDelivery.objects.get()
    url = reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk])
    assert _queries(admin_client, url) <= 12
    page = admin_client.get(url).content.decode()
    assert "127.0.0.1" in page and delivery.message_id in page


def test_adding_a_subscription_goes_through_the_service(admin_client: Any, workspace: Any, receiver: Receiver) -> None:
    """The admin's add form checks the URL like the API does, and a saved one gets a secret."""
    url = reverse("admin:webhooks_webhooksubscription_add")
    form = {
        "workspace": workspace.pk,
        "name": "From admin",
        "url": "https://10.0.0.1/in",
        "event_types": '["contact.created"]',
        "goal_types": "[]",
        "event_names": "[]",
        "segment_ids": "[]",
    }
    refused = admin_client.post(url, form)
    assert refused.status_code == 200 and "10.0.0.1" in refused.content.decode()
    assert not WebhookSubscription.objects.exists()
    admin_client.post(url, {**form, "url": receiver.url})
    saved = WebhookSubscription.objects.get()
    assert saved.secret.startswith("whsec_") and saved.url == receiver.url


def test_replay_action(admin_client: Any, workspace: Any, receiver: Receiver) -> None:
    """The deliveries changelist's replay action queues the selected deliveries again."""
    subscribe(workspace, receiver.url, event_types=["contact.created"])
    _deliver(workspace, receiver.url, 2)
    ids = list(WebhookDelivery.objects.values_list("pk", flat=True))
    admin_client.post(
        reverse("admin:webhooks_webhookdelivery_changelist"),
        {"action": "replay_selected", "_selected_action": ids},
    )
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"pending"}
