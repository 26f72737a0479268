"""In a real browser: build the VIP segment condition by condition, watch it build, see and explain its members."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import login, save_screenshot, workspace_with_marketer
from contacts.services import EventInput, events_upsert
from events_platform.celery import app as celery_app
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.services import api_key_create
from segments import rules, services
from segments.models import Segment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def purchases(email: str, values: list[str], *, days_ago: list[int]) -> list[EventInput]:
    now = timezone.now()
    return [
        EventInput(
            email=email,
            event_name="order.completed",
            external_id=f"{email}-{index}",
            occurred_at=now - timedelta(days=days, hours=1),
            properties={"currency": "EUR"},
            goal={"goal_type": "purchase", "goal_value": Decimal(value)},
        )
        for index, (value, days) in enumerate(zip(values, days_ago, strict=True))
    ]


@pytest.fixture
def shop(django_user_model: Any) -> tuple[Workspace, Any]:
    """A shop with one VIP and three near misses (too little, too long ago, too few orders)."""
    workspace, user = workspace_with_marketer(django_user_model, workspace_id="shop", name="Shop")
    events = (
        purchases("vip@example.com", ["250.00"] * 6, days_ago=[5, 12, 20, 30, 41, 50])
        + purchases("almost@example.com", ["150.00"] * 5, days_ago=[3, 8, 13, 18, 23])
        + purchases("lapsed@example.com", ["300.00"] * 5, days_ago=[100, 120, 140, 160, 180])
        + purchases("few@example.com", ["800.00"] * 2, days_ago=[2, 9])
    )
    events_upsert(workspace_id=workspace.id, events=events)
    return workspace, user


@pytest.fixture
def queued_builds() -> Iterator[None]:
    """Builds go to the (in-memory) queue instead of running inside the request, so the page
    really shows "building" until the test plays the worker."""
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = eager


def select(page: Any, selector: str, value: str) -> None:
    page.select_option(selector, value)


def test_build_the_vip_segment_condition_by_condition(
    browser_page: Any, live_server: Any, shop: tuple[Workspace, Any], queued_builds: None
) -> None:
    """Build VIP by hand, see the API's preview count, save, watch building -> active, see and explain members."""
    page = browser_page
    workspace, user = shop

    # given a logged-in marketer on a new segment
    login(page, live_server, user, then="/segments/new-segment/")
    page.fill("#id_name", "VIP")

    # when the three conditions are entered one by one
    page.fill("#n-0-value", "1000")  # Goal: Purchase, Sum >= 1000 (the default condition)
    page.click("button[value='add_leaf:n']")
    page.wait_for_selector("#n-1-aggregate_operator")
    select(page, "#n-1-aggregate_operator", "count")
    page.fill("#n-1-value", "5")
    page.click("button[value='add_leaf:n']")
    page.wait_for_selector("#n-2-aggregate_operator")
    select(page, "#n-2-aggregate_operator", "count")
    page.fill("#n-2-value", "1")
    select(page, "#n-2-timeframe_operator", "in_the_last_days")  # re-renders with a "Days" box
    page.wait_for_selector("#n-2-timeframe_value_0")
    page.fill("#n-2-timeframe_value_0", "60")

    # then the labels read back in plain language and the preview equals the API's preview
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(workspace=workspace, name='t').secret}")
    vip_tree = rules.TEMPLATES["vip"]["tree"]
    api_preview = api.post(
        "/api/segments.preview", {"workspace_id": workspace.id, "tree": vip_tree, "timezone": "UTC"}, format="json"
    ).json()
    assert api_preview["total"] == 1
    label = page.locator("#n-2-label")
    label.get_by_text("Number of purchase events in the last 60 days is at least 1").wait_for()
    page.locator("#n-0-label").get_by_text("Total value of purchase events is at least 1,000.00").wait_for()
    total = page.locator("[data-testid=preview-total]")
    page.wait_for_function(
        "expected => document.querySelector('[data-testid=preview-total]')?.textContent.trim() === expected",
        arg=str(api_preview["total"]),
    )
    counts = page.locator(".preview-condition-count").all_inner_texts()
    assert [int(c) for c in counts] == [c["count"] for c in api_preview["conditions"]]
    assert total.inner_text() == "1"
    save_screenshot(page, "segment_builder")

    # when saved
    page.click(".builder-actions button[value=save]")
    page.wait_for_url(f"{live_server.url}/segments/vip/")

    # then the tree saved is exactly the VIP template, and the page shows it building
    segment = Segment.objects.get(workspace=workspace, slug="vip")
    assert segment.tree == rules.validate_tree(vip_tree)
    page.locator("#segment-status").get_by_text("Building").wait_for()

    # when the worker builds it, the page turns active and lists the member without a reload
    assert services.segment_build(segment_pk=segment.pk, version=segment.version)
    page.locator("#segment-status .badge-ok").get_by_text("Active").wait_for()
    page.locator("#members").get_by_text("vip@example.com").wait_for()
    assert page.inner_text("[data-testid=member-count]") == "1"

    # when explaining a near miss
    page.fill("#explain-email", "almost@example.com")
    page.click(".explain-form button[type=submit]")
    page.wait_for_selector("#explain .explain-list")

    # then each condition shows its actual value and whether it held
    explanation = page.inner_text("#explain")
    assert "does not match" in explanation
    assert "sum = 750.00" in explanation and "count = 5" in explanation
    save_screenshot(page, "segment_page")


def test_after_save_everything_that_shows_the_build_refreshes_by_itself(
    browser_page: Any, live_server: Any, shop: tuple[Workspace, Any], queued_builds: None
) -> None:
    """Right after Save the page says the members are being computed; when the build finishes the
    status, the members, the size chart and the entered/left log all update without a reload."""
    page = browser_page
    workspace, user = shop
    # given the VIP segment, built (one member), and its edit page
    segment = services.segment_create(
        workspace_id=workspace.id, slug="big", name="Big spenders", tree=rules.TEMPLATES["vip"]["tree"]
    )
    assert services.segment_build(segment_pk=segment.pk, version=segment.version)
    login(page, live_server, user, then="/segments/big/edit/")

    # when the first condition (spent 1,000) is lowered so that the near miss matches too, and saved
    page.fill("#n-0-value", "700")
    page.click(".builder-actions button[value=save]")
    page.wait_for_url(f"{live_server.url}/segments/big/")
    page.evaluate("window.stillTheSamePage = true")

    # then the page says the build is running, and shows no stale figures
    status = page.locator("#segment-status")
    status.get_by_text("being computed").wait_for()
    assert "being computed" not in page.inner_text(".messages")  # the flash says only what stays true
    save_screenshot(page, "segment_page_building_1280")
    assert page.locator("#size-chart polyline").count() == 1  # the old version's chart, until the build

    # when the worker builds the new version
    segment.refresh_from_db()
    assert services.segment_build(segment_pk=segment.pk, version=segment.version)

    # then, without a reload, everything that shows the build follows
    status.locator(".badge-ok").get_by_text("Active").wait_for()
    page.locator("#changes").get_by_text("almost@example.com").wait_for()
    page.locator("#members").get_by_text("almost@example.com").wait_for()
    page.wait_for_function("() => document.querySelector('#size-chart figcaption')?.textContent.includes('now 2')")
    assert "being computed" not in status.inner_text()
    assert page.inner_text("[data-testid=member-count]") == "2"
    assert page.evaluate("window.stillTheSamePage") is True
    save_screenshot(page, "segment_page_after_build_1280")
    page.set_viewport_size({"width": 390, "height": 844})
    save_screenshot(page, "segment_page_after_build_390")
