"""In a real browser: log in, find a contact, page through its timeline, manage API keys."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from conftest import login, save_screenshot, workspace_with_marketer
from contacts import views
from contacts.models import Contact
from contacts.tests.factories import EventInputFactory, events_create
from events_platform.workspaces.models import ApiKey, Workspace

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EVENTS = 60  # more than two timeline pages


@pytest.fixture
def shop(django_user_model: Any) -> tuple[Workspace, Any]:
    """A workspace with one busy customer and one quiet one, and a marketer who is a member."""
    workspace, user = workspace_with_marketer(django_user_model, workspace_id="shop", name="Shop")
    now = timezone.now()
    events_create(
        workspace,
        [
            EventInputFactory.build(
                email="ines@example.com",
                external_id=f"ord-{n:03d}",
                occurred_at=now - timedelta(hours=6 * n + 1),
                properties={"currency": "EUR", "items": n % 4 + 1, "channel": "web", "coupon": "NONE", "n": n},
                goal={"goal_type": "purchase", "goal_value": Decimal("20.00") + n},
            )
            for n in range(EVENTS)
        ]
        + [EventInputFactory.build(email="quiet@example.com", external_id="ord-q")],
    )
    return workspace, user


def timeline_items(page: Any) -> int:
    return int(page.locator("#timeline-list > li.tl-item").count())


def test_log_in_open_a_contact_and_page_through_the_timeline(
    browser_page: Any, live_server: Any, shop: tuple[Workspace, Any]
) -> None:
    """A marketer logs in, searches a contact, opens it and loads older events in place until the end."""
    page = browser_page
    _, user = shop
    # given
    login(page, live_server, user, then="/contacts/")
    # when: search and open the contact
    page.fill("#contact-q", "ines")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_function("() => document.querySelectorAll('.contact-email').length === 1")
    assert "q=ines" in page.url  # htmx pushed the filtered URL
    page.click("text=ines@example.com")
    page.wait_for_url(re.compile(r"/contacts/\d+/$"))
    contact_url = page.url
    # then: summary and the first page of the timeline
    assert page.locator(".rfm").inner_text().count(str(EVENTS)) >= 1
    assert timeline_items(page) == views.TIMELINE_PAGE_SIZE
    save_screenshot(page, "contact_page_1280")
    # when: "Older events" twice, in place
    page.click("text=Older events")
    page.wait_for_function(
        f"() => document.querySelectorAll('#timeline-list > li.tl-item').length === {2 * views.TIMELINE_PAGE_SIZE}"
    )
    page.click("text=Older events")
    page.wait_for_function(f"() => document.querySelectorAll('#timeline-list > li.tl-item').length === {EVENTS + 1}")
    # then: the whole timeline on one page, no reload, no more button, no duplicates
    assert page.url == contact_url
    assert page.locator("text=Older events").count() == 0
    ids = page.locator("#timeline-list code").all_inner_texts()
    assert len(ids) == len(set(ids)) == EVENTS
    page.set_viewport_size({"width": 390, "height": 844})
    save_screenshot(page, "contact_page_390")


def test_older_events_works_as_a_plain_link_without_javascript(
    browser_page: Any, live_server: Any, shop: tuple[Workspace, Any]
) -> None:
    """With JavaScript off, "Older events" navigates to the next page of the timeline."""
    page = browser_page
    _, user = shop
    contact = Contact.objects.get(email="ines@example.com")
    login(page, live_server, user)
    # given
    context = page.context.browser.new_context(java_script_enabled=False, storage_state=page.context.storage_state())
    no_js = context.new_page()
    no_js.goto(f"{live_server.url}/contacts/{contact.pk}/")
    first = no_js.locator("#timeline-list code").all_inner_texts()
    # when
    no_js.click("text=Older events")
    no_js.wait_for_load_state()
    # then
    assert "cursor=" in no_js.url
    second = no_js.locator("#timeline-list code").all_inner_texts()
    assert len(second) == views.TIMELINE_PAGE_SIZE and not set(first) & set(second)
    context.close()


def test_create_a_key_see_the_secret_once_then_revoke_it(
    browser_page: Any, live_server: Any, shop: tuple[Workspace, Any]
) -> None:
    """Create shows the secret once with a working copy button; revoking asks first, then marks the key."""
    page = browser_page
    workspace, user = shop
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    # when: create
    login(page, live_server, user, then="/settings/api-keys/")
    page.fill("#id_name", "Shopify")
    page.click("text=Create key")
    # then: the secret, with a copy button that copies it
    secret = page.input_value("#new-secret")
    assert secret.startswith("ep_") and len(secret) > 40
    page.click("[data-copy='#new-secret']")
    page.wait_for_selector("text=Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    save_screenshot(page, "api_key_created_1280")
    # and not again
    page.goto(f"{live_server.url}/settings/api-keys/")
    assert page.locator("#new-secret").count() == 0 and secret not in page.content()
    # when: revoke, confirming
    page.click("[aria-label='Revoke Shopify']")
    page.wait_for_selector("text=Revoke key “Shopify”?")
    page.click("button:has-text('Revoke key')")
    # then
    page.wait_for_selector("text=is revoked")
    row = page.locator("tr", has_text="Shopify")
    assert "revoked" in row.inner_text()
    assert not ApiKey.objects.get(workspace=workspace, name="Shopify").is_active
