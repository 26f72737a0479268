"""In a real browser: build "acme contacts with no order in 90 days" from Notifuse's two leaves
(contact filters and a zero-count timeline condition), see it in words and the preview's count."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from conftest import login, save_screenshot, workspace_with_marketer
from contacts.services import EventInput, events_upsert
from segments.models import Segment, SegmentMembership

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def order(email: str, days_ago: int) -> EventInput:
    return EventInput(
        email=email,
        event_name="order.completed",
        external_id=f"{email}-{days_ago}",
        occurred_at=timezone.now() - timedelta(days=days_ago),
        properties={},
        goal={"goal_type": "purchase", "goal_value": Decimal("10")},
    )


def test_build_a_segment_from_contact_filters_and_a_zero_count_timeline_condition(
    browser_page: Any, live_server: Any, django_user_model: Any
) -> None:
    page = browser_page
    workspace, user = workspace_with_marketer(django_user_model, workspace_id="shop", name="Shop")
    events_upsert(
        workspace_id=workspace.id,
        events=[order("quiet@acme.com", 120), order("busy@acme.com", 3), order("quiet@other.io", 120)],
    )
    login(page, live_server, user, then="/segments/new-segment/")
    page.fill("#id_name", "Quiet acme")

    # when the first condition becomes contact filters: email contains "@acme.com"
    page.select_option("#n-0-source", "contacts")
    page.wait_for_selector("#n-0-mode")
    page.select_option("#n-0-mode", "filters")
    page.wait_for_selector("#n-0-filter_field_0")
    page.fill("#n-0-filter_value_0_0", "@acme.com")
    # and a second one counts order timeline entries: exactly 0 in the last 90 days
    page.click("button[value='add_leaf:n']")
    page.wait_for_selector("#n-1-source")
    page.select_option("#n-1-source", "contact_timeline")
    page.wait_for_selector("#n-1-entry_kind")
    page.fill("#n-1-entry_kind", "custom_event.order.completed")
    page.select_option("#n-1-count_operator", "exactly")
    page.fill("#n-1-count_value", "0")
    page.select_option("#n-1-timeframe_operator", "in_the_last_days")
    page.wait_for_selector("#n-1-timeframe_value_0")
    page.fill("#n-1-timeframe_value_0", "90")

    # then both read in words and the preview counts the one quiet acme contact
    page.locator("#n-0-label").get_by_text("Contact email contains “@acme.com”").wait_for()
    page.locator("#n-1-label").get_by_text(
        "Has timeline entries “custom_event.order.completed” exactly 0 times in the last 90 days"
    ).wait_for()
    page.wait_for_function("() => document.querySelector('[data-testid=preview-total]')?.textContent.trim() === '1'")
    save_screenshot(page, "segment_builder_notifuse_leaves")

    # when saved, the build keeps exactly that contact
    page.click(".builder-actions button[value=save]")
    page.wait_for_url(f"{live_server.url}/segments/quiet_acme/")
    segment = Segment.objects.get(workspace=workspace, slug="quiet_acme")
    members = SegmentMembership.objects.filter(segment=segment).values_list("contact__email", flat=True)
    assert set(members) == {"quiet@acme.com"}
