"""In a real browser on a phone (390 px wide): every page fits, and every control on it can be reached.

Long content is what breaks narrow layouts, so the data is as long as the API allows: a
100-character event name, long property values, a long segment name and a long API key name.
Lives in segments (the top app) because it walks every app's pages.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from conftest import login, save_screenshot, workspace_with_marketer
from contacts.models import EVENT_NAME_MAX_LENGTH, Contact
from contacts.services import EventInput, contact_upsert, events_upsert
from events_platform.workspaces.models import ApiKey
from events_platform.workspaces.services import api_key_create, workspace_create, workspace_member_add
from rfm import services as rfm_services
from segments import services
from segments.tests.trees import all_of, goal_leaf

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LONG_EVENT_NAME = ("checkout.step_completed." + "x" * EVENT_NAME_MAX_LENGTH)[:EVENT_NAME_MAX_LENGTH]
LONG_SEGMENT_NAME = "Customers who bought twice in the spring campaign and opened every newsletter since"

# Everything a person can act on, and where it sits; 1-pixel elements are visually hidden on purpose.
CONTROLS_OUT_OF_VIEW = """
() => [...document.querySelectorAll("a, button, input, select, textarea, summary")]
  .filter(el => el.checkVisibility() && el.getBoundingClientRect().width > 1)
  .filter(el => {
    const box = el.getBoundingClientRect();
    return box.left < -0.5 || box.right > window.innerWidth + 0.5;
  })
  .map(el => `${el.tagName.toLowerCase()} "${(el.innerText || el.value || el.name || "").trim().slice(0, 40)}"`
    + ` at ${Math.round(el.getBoundingClientRect().left)}-${Math.round(el.getBoundingClientRect().right)}`)
"""
# A Content-Security-Policy without 'unsafe-inline' would block these: script lives in static/js/.
INLINE_SCRIPT = """
() => [...document.querySelectorAll("script:not([src])")].map(el => `script: ${el.textContent.slice(0, 40)}`)
  .concat([...document.querySelectorAll("*")].flatMap(el => [...el.attributes]
    .filter(a => a.name.startsWith("on") || a.value.trim().startsWith("javascript:"))
    .map(a => `${el.tagName.toLowerCase()} ${a.name}="${a.value}"`)))
"""
# Every hx-get a page holds, and whether a link's href leads to the same place.
HX_GETS = """
() => [...document.querySelectorAll("[hx-get]")].map(el => ({
  url: new URL(el.getAttribute("hx-get"), location.href).href,
  link: el.tagName === "A",
  href: el.tagName === "A" ? new URL(el.getAttribute("href"), location.href).href.split("#")[0] : null,
}))
"""
SIDEWAYS_SCROLLERS = """
() => [...document.querySelectorAll("body *")]
  .filter(el => ["auto", "scroll"].includes(getComputedStyle(el).overflowX) && el.scrollWidth > el.clientWidth + 1)
  .map(el => `${el.tagName.toLowerCase()}.${el.className}: ${el.scrollWidth} > ${el.clientWidth}`)
"""


@pytest.fixture
def busy_shop(django_user_model: Any) -> dict[str, Any]:
    """One workspace with long names everywhere: events, properties, a segment, API keys."""
    workspace, user = workspace_with_marketer(
        django_user_model, workspace_id="shop", name="The Long-Named Example Shop Workspace"
    )
    now = timezone.now()
    contact_upsert(
        workspace_id=workspace.id,
        email="ines.montgomery-featherstonehaugh@example-company-with-a-long-domain.com",
        fields={"first_name": "Inès", "last_name": "Montgomery-Featherstonehaugh", "properties": {"plan": "pro"}},
    )
    email = "ines.montgomery-featherstonehaugh@example-company-with-a-long-domain.com"
    events_upsert(
        workspace_id=workspace.id,
        events=[
            EventInput(
                email=email,
                event_name=LONG_EVENT_NAME,
                external_id="step-" + "9" * 60,
                occurred_at=now - timedelta(hours=2),
                properties={
                    "landing_page": "https://example.com/" + "campaign/" * 20,
                    "items": ["Product A", "Product B"],
                    "gift": True,
                },
            ),
            *[
                EventInput(
                    email=email,
                    event_name="order.completed",
                    external_id=f"order-{n}",
                    occurred_at=now - timedelta(days=n + 1),
                    properties={"currency": "EUR", "items": ["Product A"]},
                    goal={"goal_type": "purchase", "goal_value": Decimal("1234567.89")},
                )
                for n in range(3)
            ],
        ],
    )
    segment = services.segment_create(
        workspace_id=workspace.id,
        slug="spring_campaign_buyers",
        name=LONG_SEGMENT_NAME,
        tree=all_of(goal_leaf("count", "gte", 2)),
    )
    services.segment_build(segment_pk=segment.pk, version=segment.version)  # whether or not on-commit did already
    api_key_create(workspace=workspace, name="Shopify production integration for the EU storefront", created_by=user)
    api_key_create(workspace=workspace, name="CRM sync", created_by=user)
    rfm_model = rfm_services.rfm_model_create(
        workspace_id=workspace.id, slug="default", name="Purchases RFM for the spring campaign's customers"
    )
    rfm_services.rfm_model_compute(model_pk=rfm_model.pk)  # whether or not on-commit did already
    return {
        "workspace": workspace,
        "user": user,
        "contact": Contact.objects.get(workspace=workspace, email=email),
        "segment": segment,
        "key": ApiKey.objects.get(workspace=workspace, name="CRM sync"),
    }


def assert_fits(page: Any, url: str) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth")
    width = page.viewport_size["width"]
    assert overflow <= width, f"{url}: the page is {overflow} px wide at {width} px"
    assert page.evaluate(CONTROLS_OUT_OF_VIEW) == [], f"{url}: controls out of view"
    assert page.evaluate(SIDEWAYS_SCROLLERS) == [], f"{url}: parts that scroll sideways"


@pytest.mark.parametrize("width", [PHONE["width"], 1280])
def test_every_page_fits_the_screen(browser_page: Any, live_server: Any, busy_shop: dict[str, Any], width: int) -> None:
    """On a 390 px phone (and a desktop) no page scrolls sideways and every link, button and field lies
    within the screen; no page runs inline script or asks for a file that is not there (the icon
    included), and every hx-get is a real page (a link's href goes to the same place)."""
    page = browser_page
    contact, segment, key = busy_shop["contact"], busy_shop["segment"], busy_shop["key"]
    # given a signed-in marketer on a phone (or a desktop)
    login(page, live_server, busy_shop["user"])
    page.set_viewport_size({**PHONE, "width": width})
    pages = [
        "/",
        "/contacts/",
        f"/contacts/{contact.pk}/",
        "/events/",
        "/events/?deleted=all",
        "/segments/",
        f"/segments/{segment.slug}/",
        f"/segments/{segment.slug}/?email={contact.email}",
        "/segments/new-segment/",
        f"/segments/{segment.slug}/edit/",
        f"/segments/{segment.slug}/delete/",
        "/settings/api-keys/",
        f"/settings/api-keys/{key.pk}/revoke/",
        "/rfm/",
        "/rfm/default/",
        "/rfm/default/?color=monetary&r=5&f=1",
        "/no-such-page/",
    ]
    not_found: list[str] = []
    page.on("response", lambda response: not_found.append(response.url) if response.status == 404 else None)
    for path in pages:
        # when
        response = page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        # then
        assert response is not None and response.status < 500
        assert_fits(page, path)
        assert page.evaluate(INLINE_SCRIPT) == [], f"{path}: inline script"
        for target in page.evaluate(HX_GETS):
            # and every hx-get is a real page too: a link goes there without JavaScript
            assert not target["link"] or target["href"] == target["url"], f"{path}: {target}"
            plain = page.request.get(target["url"])
            assert plain.status == 200 and "<html" in plain.text(), f"{path}: {target['url']}"
    # and nothing the pages load is missing (the icon included), only the page that does not exist
    assert not_found == [f"{live_server.url}/no-such-page/"]


def test_the_long_event_name_and_the_api_keys_table_fit_a_phone(
    browser_page: Any, live_server: Any, busy_shop: dict[str, Any]
) -> None:
    """The timeline's "Show" select stays inside the screen with a 100-character event name in it, and
    each API key's status and Revoke button are on screen."""
    page = browser_page
    login(page, live_server, busy_shop["user"])
    page.set_viewport_size(PHONE)
    # when
    page.goto(f"{live_server.url}/contacts/{busy_shop['contact'].pk}/")
    # then
    show = page.locator("#id_kind").bounding_box()
    assert show is not None and show["x"] >= 0 and show["x"] + show["width"] <= PHONE["width"]
    assert page.locator("#timeline-list").get_by_text(LONG_EVENT_NAME).count() >= 1
    save_screenshot(page, "contact_page_long_event_390")
    # when
    page.goto(f"{live_server.url}/settings/api-keys/")
    # then
    for name in ("CRM sync", "Shopify production integration for the EU storefront"):
        revoke = page.get_by_role("link", name=f"Revoke {name}")
        revoke.wait_for()
        box = revoke.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        status = page.locator("tr", has_text=name).get_by_text("active")
        assert status.is_visible()
        status_box = status.bounding_box()
        assert status_box is not None and status_box["x"] + status_box["width"] <= PHONE["width"]
    save_screenshot(page, "api_keys_390")


def test_choosing_a_workspace_switches_to_it(browser_page: Any, live_server: Any, busy_shop: dict[str, Any]) -> None:
    """The switcher submits on choosing (app.js, no inline handler) and the page shows the other workspace."""
    page = browser_page
    # given a marketer in two workspaces, looking at the (empty) contacts of the first by name
    other = workspace_create(workspace_id="outlet", name="Outlet")
    workspace_member_add(workspace=other, user=busy_shop["user"])
    login(page, live_server, busy_shop["user"], then="/contacts/")
    assert page.locator("#workspace-switch").input_value() == "outlet"
    assert page.locator(".contact-email").count() == 0
    # when
    with page.expect_navigation():
        page.select_option("#workspace-switch", "shop")
    # then
    assert page.url == f"{live_server.url}/contacts/"
    assert page.locator("#workspace-switch").input_value() == "shop"
    assert page.locator(".contact-email").count() == 1
