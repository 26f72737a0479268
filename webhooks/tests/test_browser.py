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


@pytest.mark.parametrize("width", [390, 1280])
def test_every_webhooks_page_fits_the_screen(
    browser_page: Any, live_server: Any, django_user_model: Any, settings: Any, width: int
) -> None:
    """The Webhooks pages, with long names, URLs and a failed delivery, fit a phone and a desktop:
    nothing scrolls sideways, every control is on screen, no inline script, every hx-get a real page."""
    from contacts.services import contact_upsert
    from segments.tests.test_browser_layout import HX_GETS, INLINE_SCRIPT, assert_fits
    from webhooks import services
    from webhooks.models import WebhookDelivery
    from webhooks.receiver import Answer

    from .conftest import subscribe

    # given
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    workspace = workspace_create(workspace_id="shop", name="Shop")
    user = django_user_model.objects.create_user(username="marketer")
    workspace_member_add(workspace=workspace, user=user)
    with Receiver(lambda request: Answer(status=500, body=b"upstream error " * 40)) as failing:
        subscription = subscribe(
            workspace,
            failing.url + "/" + "very-long-path-segment/" * 6 + "?token=" + "x" * 60,
            name="Customer data platform sync for the EU storefront (production, do not disable)",
            event_types=["contact.created", "custom_event.created"],
            goal_types=["purchase", "subscription"],
            event_names=["order.completed", "checkout.step_completed.with_a_rather_long_name"],
        )
        contact_upsert(workspace_id=workspace.id, email="ines.montgomery-featherstonehaugh@example-long.com", fields={})
        services.outbox_fan_out()
        services.deliveries_send_due()
        delivery = WebhookDelivery.objects.get()
        page = browser_page
        login(page, live_server, user)
        page.set_viewport_size({"width": width, "height": 844})
        for path in (
            "/webhooks/",
            f"/webhooks/{subscription.public_id}/deliveries/",
            f"/webhooks/{subscription.public_id}/deliveries/?status=pending",
            f"/webhooks/{subscription.public_id}/deliveries/{delivery.message_id}/",
        ):
            # when
            response = page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
            # then
            assert response is not None and response.status == 200
            assert_fits(page, path)
            assert page.evaluate(INLINE_SCRIPT) == [], f"{path}: inline script"
            for target in page.evaluate(HX_GETS):
                assert not target["link"] or target["href"] == target["url"], f"{path}: {target}"
                assert page.request.get(target["url"]).status == 200
        save_screenshot(page, f"webhooks-delivery-{width}")
