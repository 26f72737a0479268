"""In a real browser: score a shop's customers from the RFM list, watch the run finish, read the
heatmap and the group tiles, open a cell's customers, switch the colour, all on a phone too."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.utils import timezone

from conftest import login, save_screenshot, workspace_with_marketer
from events_platform.workspaces.models import Workspace
from rfm import groups, services
from rfm.models import RfmModel, RfmScore
from rfm.tests.conftest import store_small_shop
from segments.models import Segment
from segments.tests.test_browser_layout import PHONE, assert_fits
from segments.tests.test_browser_segments import queued_builds  # noqa: F401 (a fixture: the tasks stay queued)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop(django_user_model: Any) -> tuple[Workspace, Any]:
    """24 customers with 1 to 4 orders from 2 to 500 days ago, and two contacts who never bought."""
    workspace, user = workspace_with_marketer(django_user_model, workspace_id="shop", name="Shop")
    store_small_shop(workspace, timezone.now())
    return workspace, user


@pytest.mark.usefixtures("queued_builds")
def test_score_customers_and_explore_the_rfm_page(
    browser_page: Any, live_server: Any, shop: tuple[Workspace, Any]
) -> None:
    """From "Score my customers" to the heatmap: the page says the run is in progress, reloads
    itself when the worker is done, shows each group's size as stored, lists a cell's customers
    without a reload, switches to average money, fits a 390 px phone, and saves a group tile as
    a segment through the builder."""
    page = browser_page
    workspace, user = shop

    # given a signed-in marketer on the RFM page of a workspace without a model
    login(page, live_server, user, then="/rfm/")
    page.get_by_role("link", name="RFM").first.wait_for()

    # when the Klaviyo preset is created
    page.click("text=Score my customers")
    page.wait_for_url(f"{live_server.url}/rfm/default/")

    # then the page says a run is in progress
    page.locator("[data-testid=rfm-status]").get_by_text("A full run is in progress").wait_for()

    # when the worker runs it, the page reloads by itself with the results
    model = RfmModel.objects.get(workspace=workspace, slug="default")
    assert services.rfm_model_compute(model_pk=model.pk, version=model.version) is not None
    page.wait_for_selector("[data-testid=heatmap]", timeout=15_000)

    # then every tile shows its group's stored size
    sizes = Counter(RfmScore.objects.filter(model=model).values_list("group", flat=True))
    for group in groups.groups_of("klaviyo6", 3):
        tile = page.locator(f"[data-testid=tile-{group}] .rfm-tile-count strong")
        assert int(tile.inner_text().replace(",", "")) == sizes.get(group, 0), group
    assert "warning" in (page.locator("[data-testid=rfm-warning]").first.get_attribute("class") or "")

    # when the fullest cell is clicked
    (r, f), count = Counter(RfmScore.objects.filter(model=model, r__isnull=False).values_list("r", "f")).most_common(1)[
        0
    ]
    cell = page.locator(f"[data-testid=cell-{r}-{f}]")
    assert cell.locator(".heat-value").inner_text() == str(count)
    url_before = page.url
    cell.click()

    # then its customers appear below the heatmap, without a page load
    page.locator("#cell h3").get_by_text(f"R{r} F{f}").wait_for()
    emails = set(RfmScore.objects.filter(model=model, r=r, f=f).values_list("contact__email", flat=True))
    shown = set(page.locator("[data-testid=cell-contact] .contact-email").all_inner_texts())
    assert shown == emails and page.url == url_before
    assert page.get_by_role("button", name="Save as segment").is_visible()

    # when the colour is switched to average money
    page.get_by_role("link", name="Average money").click()
    page.wait_for_selector("#heatmap a[aria-current=true]:has-text('Average money')")

    # then the cell shows its customers' average net money, and the address can be shared
    money = [int(s.monetary_cents or 0) for s in RfmScore.objects.filter(model=model, r=r, f=f)]
    assert cell.locator(".heat-value").inner_text() == f"{sum(money) / len(money) / 100:,.2f}"
    assert "color=monetary" in page.url
    save_screenshot(page, "rfm_page")

    # and on a phone the page fits, the heatmap included
    page.set_viewport_size(PHONE)
    page.reload()
    page.wait_for_selector("[data-testid=heatmap]")
    assert_fits(page, page.url)
    box = page.locator("[data-testid=heatmap]").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    save_screenshot(page, "rfm_page_390")

    # when the biggest group's tile is saved as a segment
    group = max(groups.groups_of("klaviyo6", 3), key=lambda g: sizes.get(g, 0))
    page.locator(f"[data-testid=tile-segment-{group}]").click()
    page.wait_for_url(f"{live_server.url}/segments/new-segment/")

    # then the builder holds the group's name and its condition, and saving makes the segment
    assert page.locator("input[name=name]").input_value() == groups.display_name(group)
    assert page.locator("input[name='n.0.values']").input_value() == group
    page.get_by_role("button", name="Save segment").click()
    page.wait_for_url(f"{live_server.url}/segments/default_{group}/")
    segment = Segment.objects.get(workspace=workspace, slug=f"default_{group}")
    assert segment.name == groups.display_name(group)
    assert segment.tree["branch"]["leaves"][0]["leaf"]["rfm"] == {
        "model": "default",
        "field": "group",
        "operator": "in",
        "values": [group],
    }
