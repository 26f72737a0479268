"""In a real browser on a phone-sized screen: add an endpoint, copy its secret once, send a test,
open its deliveries."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import login, save_screenshot
from events_platform.workspaces.services import workspace_create, workspace_member_add
from webhooks.models import WebhookSubscription
from webhooks.receiver import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_add_an_endpoint_copy_the_secret_and_send_a_test_on_a_phone(
    browser_page: Any, live_server: Any, django_user_model: Any, settings: Any
) -> None:
    """At 390 px wide nothing overflows sideways; the secret shows once with a Copy button, the test
    reaches a real receiver, and the deliveries page lists it."""
    # given
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    workspace = workspace_create(workspace_id="shop", name="Shop")
    user = django_user_model.objects.create_user(username="marketer")
    workspace_member_add(workspace=workspace, user=user)
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    login(page, live_server, user)
    with Receiver() as receiver:
        # when
        page.goto(f"{live_server.url}/webhooks/")
        page.fill("#id_name", "CRM sync")
        page.fill("#id_url", receiver.url)
        page.check("input[name=event_types][value='segment.joined']")
        page.click("button:has-text('Add endpoint')")
        page.wait_for_selector("#new-secret")
        # then the secret is shown with a working copy button
        subscription = WebhookSubscription.objects.get()
        assert page.input_value("#new-secret") == subscription.secret
        page.click("[data-copy='#new-secret']")
        page.wait_for_selector("[data-copy='#new-secret']:has-text('Copied')")
        assert page.evaluate("navigator.clipboard.readText()") == subscription.secret
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        save_screenshot(page, "webhooks-phone-created")
        # when a test is sent (htmx swaps the list in place)
        page.click("button:has-text('Send test')")
        page.wait_for_selector("#test-title:has-text('HTTP 200')")
        assert len(receiver.requests) == 1
        assert page.locator("#new-secret").count() == 0  # shown once only
        # and the deliveries page lists it
        page.click("a:has-text('Deliveries')")
        page.wait_for_selector(".wh-delivery")
        assert "delivered" in page.inner_text(".wh-delivery")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        save_screenshot(page, "webhooks-phone-deliveries")
