"""The Webhooks pages: subscriptions with their actions, deliveries with replay, bounded queries."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from contacts import services as contacts
from events_platform.workspaces.services import workspace_create
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookSubscription
from webhooks.receiver import Receiver

from .conftest import subscribe

PAGE = "/webhooks/"


def test_create_shows_the_secret_once(member_client: Any, workspace: Any, receiver: Receiver) -> None:
    """Adding an endpoint answers 201 with its secret and a copy button; the next view does not show it."""
    # when
    response = member_client.post(
        PAGE,
        {
            "name": "CRM",
            "url": receiver.url,
            "event_types": ["custom_event.created", "segment.joined"],
            "goal_types": ["purchase"],
            "event_names": "order.completed, refund",
        },
    )
    # then
    assert response.status_code == 201
    subscription = WebhookSubscription.objects.get()
    page = response.content.decode()
    assert subscription.secret in page and 'data-copy="#new-secret"' in page
    assert (subscription.goal_types, subscription.event_names) == (["purchase"], ["order.completed", "refund"])
    again = member_client.get(PAGE).content.decode()
    assert subscription.secret not in again
    assert "CRM" in again and receiver.url in again


def test_create_with_bad_input_names_the_fields(member_client: Any, workspace: Any) -> None:
    """A refused URL and missing types come back as field errors, nothing created."""
    response = member_client.post(PAGE, {"name": "x", "url": "https://127.0.0.1/in"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "127.0.0.1" in page and "This field is required" in page
    assert not WebhookSubscription.objects.exists()


def test_actions_toggle_test_regenerate_delete(member_client: Any, workspace: Any, receiver: Receiver) -> None:
    """Each card's buttons work as plain POSTs and as htmx swaps of the list."""
    # given
    subscription = subscribe(workspace, receiver.url, event_types=["contact.created"])

    def act(action: str, **headers: Any) -> Any:
        return member_client.post(reverse("webhook-action", args=[subscription.public_id, action]), **headers)

    # toggle (htmx: the list fragment only)
    fragment = act("toggle", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="subscriptions")
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()
    assert "Enable" in fragment.content.decode()
    subscription.refresh_from_db()
    assert not subscription.enabled
    act("toggle")
    # test
    tested = act("test").content.decode()
    assert "HTTP 200" in tested and len(receiver.requests) == 1
    # regenerate: the new secret, once
    regenerated = act("regenerate").content.decode()
    subscription.refresh_from_db()
    assert subscription.secret in regenerated and "keeps signing too" in regenerated
    # delete
    assert act("delete").status_code == 302
    assert not WebhookSubscription.objects.exists()


def test_another_workspaces_subscription_is_not_found(member_client: Any, workspace: Any, receiver: Receiver) -> None:
    """A member of one workspace cannot see or act on another's subscription."""
    other = workspace_create(workspace_id="other", name="Other")
    foreign = subscribe(other, receiver.url)
    assert member_client.get(reverse("webhook-deliveries", args=[foreign.public_id])).status_code == 404
    assert member_client.post(reverse("webhook-action", args=[foreign.public_id, "delete"])).status_code == 404
    assert WebhookSubscription.objects.filter(pk=foreign.pk).exists()


def _deliveries(workspace: Any, url: str, n: int) -> WebhookSubscription:
    subscription = subscribe(workspace, url, event_types=["contact.created"])
    for i in range(n):
        contacts.contact_upsert(workspace_id=workspace.id, email=f"p{n}-{i}@example.com", fields={})
    services.outbox_fan_out()
    services.deliveries_send_due()
    return subscription


@pytest.mark.parametrize("n", [3, 30])
def test_pages_cost_bounded_queries(
    member_client: Any, workspace: Any, receiver: Receiver, django_assert_max_num_queries: Any, n: int
) -> None:
    """The list, a deliveries page and a delivery's page cost the same few queries however many rows."""
    subscription = _deliveries(workspace, receiver.url, n)
    delivery = WebhookDelivery.objects.first()
    assert delivery is not None
    with django_assert_max_num_queries(8):
        assert member_client.get(PAGE).status_code == 200
    with django_assert_max_num_queries(10):
        page = member_client.get(reverse("webhook-deliveries", args=[subscription.public_id]))
    assert page.status_code == 200 and "delivered" in page.content.decode()
    with django_assert_max_num_queries(8):
        detail = member_client.get(
            reverse("webhook-delivery-detail", args=[subscription.public_id, delivery.message_id])
        )
    assert "127.0.0.1" in detail.content.decode() and delivery.message_id in detail.content.decode()


def test_deliveries_page_filters_pages_and_replays(member_client: Any, workspace: Any, receiver: Receiver) -> None:
    """Status filter, older/newer pages, and replay of one delivery."""
    # given
    subscription = _deliveries(workspace, receiver.url, 30)
    url = reverse("webhook-deliveries", args=[subscription.public_id])
    # when
    first = member_client.get(url).content.decode()
    older = member_client.get(url, {"offset": 25}).content.decode()
    failed = member_client.get(url, {"status": "failed"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="deliveries")
    delivery = WebhookDelivery.objects.first()
    assert delivery is not None
    replayed = member_client.post(url, {"delivery_id": delivery.message_id})
    # then
    assert "Older" in first and first.count("wh-delivery") == 25
    assert "Newer" in older and older.count("wh-delivery") == 5
    assert "No deliveries with this status" in failed.content.decode() and "<html" not in failed.content.decode()
    assert replayed.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING


def test_the_nav_links_to_webhooks(member_client: Any, workspace: Any) -> None:
    """Every page's main navigation has the Webhooks link, current on the Webhooks page."""
    page = member_client.get(PAGE).content.decode()
    assert 'href="/webhooks/" aria-current="page"' in page


def test_no_inline_script_on_the_pages(member_client: Any, workspace: Any, receiver: Receiver) -> None:
    """The pages load their JavaScript from static files: no inline handlers or script bodies of ours."""
    subscription = _deliveries(workspace, receiver.url, 1)
    for url in (PAGE, reverse("webhook-deliveries", args=[subscription.public_id])):
        page = member_client.get(url).content.decode()
        body = page.split('<main id="main"', 1)[1]
        assert " onfocus=" not in body and " onclick=" not in body
        assert "<script>" not in body
