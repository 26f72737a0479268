"""The RFM pages: a model's page (heatmap, cells, tiles, transitions, medians, cut points,
warnings, status) and the contact page's RFM card, with their query counts pinned."""

from __future__ import annotations

import datetime as dt
import html
import random
import re
import statistics
from collections import Counter
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from contacts.models import Contact
from events_platform.workspaces.models import Workspace
from rfm import groups, services
from rfm.models import RfmModel, RfmScore
from rfm.tests.conftest import purchase, store_contacts, store_events

pytestmark = pytest.mark.django_db

NOW = timezone.now()
FIRST_RUN = NOW - dt.timedelta(days=40)
SECOND_RUN = NOW - dt.timedelta(days=1)
PAGE_MAX_QUERIES = 13  # session, user, workspaces, model, run dates, cells, transitions x2, unscored, groups, F mode
CELL_MAX_QUERIES = 5  # session, user, workspaces, model, the cell's contacts
CONTACT_PAGE_QUERIES = 11  # contacts' 9 (contacts/tests/test_views.py) + the RFM card: scores with models, changes
DASHBOARD_QUERIES = 9  # segments/tests/test_views.py: the same 9 (RFM models and their group tallies included)


@pytest.fixture
def workspace(db: None) -> Workspace:
    from events_platform.workspaces.services import workspace_create

    return workspace_create(workspace_id="acme", name="Acme", timezone_name="Europe/Paris")


def shop(workspace: Workspace, customers: int, *, seed: int = 7) -> tuple[RfmModel, dict[int, str]]:
    """``customers`` buyers and 3 contacts who never bought; a klaviyo model computed at
    FIRST_RUN, then more purchases and a second run at SECOND_RUN. Returns the model and every
    contact's group after the first run."""
    rng = random.Random(seed)
    ids = store_contacts(workspace, customers + 3)
    store_events(
        workspace,
        [
            purchase(
                ids[i], FIRST_RUN - dt.timedelta(days=rng.choice([1, 5, 30, 200, 400])), f"{rng.randint(5, 900)}.00"
            )
            for i in range(customers)
            for _ in range(rng.choice([1, 1, 2, 3, 6]))
        ],
    )
    model = services.rfm_model_create(
        workspace_id=workspace.id, slug="default", name="Purchases", settings={"preset": "klaviyo"}
    )
    services.rfm_model_compute(model_pk=model.pk, now=FIRST_RUN)
    before = dict(RfmScore.objects.filter(model=model).values_list("contact_id", "group"))
    store_events(
        workspace,
        [purchase(ids[i], SECOND_RUN - dt.timedelta(days=2), "120.00") for i in rng.sample(range(customers + 3), 12)],
    )
    services.rfm_model_compute(model_pk=model.pk, now=SECOND_RUN)
    model.refresh_from_db()
    return model, before


def test_model_page_shows_what_the_stored_scores_say(
    member_client: Client, workspace: Workspace, django_assert_max_num_queries: Any
) -> None:
    """The heatmap's cells, the tiles' sizes, shares and change against 30 days ago, the medians and
    the transition matrix equal the same figures computed in Python from the stored scores."""
    # given
    model, before = shop(workspace, 60)
    scores = list(RfmScore.objects.filter(model=model))
    customers = [s for s in scores if s.r is not None]

    # when
    with django_assert_max_num_queries(PAGE_MAX_QUERIES):
        response = member_client.get(f"/rfm/{model.slug}/")

    # then the heatmap
    assert response.status_code == 200
    cells = Counter((s.r, s.f) for s in customers)
    shown = {(c.r, c.f): c.count for _, row in response.context["heatmap"].rows for c in row}
    assert shown == {(r, f): cells.get((r, f), 0) for r in range(1, 4) for f in range(1, 4)}
    # the tiles
    now_counts = Counter(s.group for s in scores)
    revenue = sum(int(s.monetary_cents or 0) for s in customers)
    tiles = {tile.group: tile for tile in response.context["tiles"]}
    assert list(tiles) == [*groups.KLAVIYO6_GROUPS, "prospect", "lapsed"]
    for group, tile in tiles.items():
        assert tile.count == now_counts.get(group, 0), group
        assert tile.change == now_counts.get(group, 0) - Counter(before.values()).get(group, 0), group
        if group in groups.KLAVIYO6_GROUPS:
            members = [s for s in customers if s.group == group]
            assert tile.share_customers == round(100 * len(members) / len(customers), 1)
            assert tile.share_revenue == round(100 * sum(int(s.monetary_cents or 0) for s in members) / revenue, 1)
            if members:
                assert tile.median_recency_days == statistics.median(int(s.recency_days or 0) for s in members)
                assert tile.median_frequency == statistics.median(int(s.frequency or 0) for s in members)
    # the transitions from the day of the first run to now
    moves = Counter((before[s.contact_id], s.group) for s in scores if before[s.contact_id] != s.group)
    matrix = response.context["matrix"]
    assert matrix.moved == sum(moves.values()) > 0 and matrix.total == len(scores)
    assert {(a, b): n for a, b, n in matrix.flows} == {
        (groups.display_name(a), groups.display_name(b)): n for (a, b), n in moves.items()
    }
    page = response.content.decode()
    assert "Cut points" in page and 'data-testid="heatmap"' in page
    assert 'data-testid="rfm-warning"' in page  # 60 customers: fewer than 200


def test_transitions_between_two_dates_and_bad_dates(member_client: Client, workspace: Workspace) -> None:
    """Two dates both before the second run show no move; a date before the first run says where
    the history starts (no 500) and falls back to it."""
    # given
    model, _ = shop(workspace, 30)
    first_day = FIRST_RUN.astimezone(dt.timezone(dt.timedelta(hours=1))).date()

    # when
    quiet = member_client.get(
        f"/rfm/{model.slug}/",
        {
            "since": (first_day + dt.timedelta(days=1)).isoformat(),
            "until": (first_day + dt.timedelta(days=5)).isoformat(),
        },
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="transitions",
    )
    too_early = member_client.get(f"/rfm/{model.slug}/", {"since": "2001-01-01", "until": "not a date"})

    # then
    fragment = quiet.content.decode()
    assert quiet.status_code == 200 and "<html" not in fragment and 'id="transitions"' in fragment
    assert f"0 of {RfmScore.objects.filter(model=model).count()} contacts changed group" in fragment
    assert too_early.status_code == 200
    assert "The history starts with the first full run" in too_early.content.decode()
    assert too_early.context["matrix"].moved > 0


def test_a_cell_lists_its_customers_and_offers_a_segment(
    member_client: Client, workspace: Workspace, django_assert_max_num_queries: Any
) -> None:
    """A click on a cell (htmx) lists that cell's customers, most valuable first, and a form that
    opens the builder with the cell as rfm conditions; a cell outside the scale is ignored."""
    # given
    model, _ = shop(workspace, 40)
    scored = RfmScore.objects.filter(model=model, r__isnull=False)
    cell = Counter((int(s.r or 0), int(s.f or 0)) for s in scored).most_common(1)[0][0]

    # when
    with django_assert_max_num_queries(CELL_MAX_QUERIES):
        response = member_client.get(
            f"/rfm/{model.slug}/", {"r": cell[0], "f": cell[1]}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="cell"
        )
    outside = member_client.get(f"/rfm/{model.slug}/", {"r": 9, "f": 1}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="cell")

    # then
    expected = list(
        RfmScore.objects.filter(model=model, r=cell[0], f=cell[1])
        .order_by("-monetary_cents", "contact_id")
        .values_list("contact__email", flat=True)
    )
    page = response.content.decode()
    assert response.status_code == 200 and "<html" not in page
    assert [e for e in expected if e in page] == expected[:25]
    assert page.count('data-testid="cell-contact"') == min(len(expected), 25)
    assert 'name="op" value="load_json"' in page and "&quot;source&quot;: &quot;rfm&quot;" in page
    assert outside.status_code == 200 and "its customers" not in outside.content.decode()
    # and the form opens the builder on those conditions
    tree = re.search(r'name="tree" value="([^"]+)"', page)
    assert tree is not None
    builder = member_client.post(
        "/segments/new-segment/", {"op": "load_json", "name": "Cell", "tree": html.unescape(tree.group(1))}
    )
    assert builder.status_code == 200, builder.content.decode()[:2000]


def test_each_group_tile_offers_its_group_as_a_segment(member_client: Client, workspace: Workspace) -> None:
    """Every group tile (the map's groups, prospect, lapsed) has a "Save as segment" button that
    opens the builder on that group's template: its name and the condition group in [g]."""
    # given
    model, _ = shop(workspace, 30)

    # when
    page = member_client.get(f"/rfm/{model.slug}/").content.decode()

    # then
    for group in groups.groups_of(model.group_map, model.scale):
        tile = re.search(rf'data-testid="tile-{group}".*?</li>', page, re.S)
        assert tile is not None, group
        assert 'action="/segments/new-segment/"' in tile.group(0)
        assert f'name="op" value="template:rfm:default:{group}"' in tile.group(0)
    # and the button opens the builder on that group
    builder = member_client.post("/segments/new-segment/", {"op": "template:rfm:default:at_risk"})
    opened = builder.content.decode()
    assert builder.status_code == 200
    assert 'value="At risk"' in opened and 'name="n.0.values" value="at_risk"' in opened


def test_status_while_a_run_is_in_progress(member_client: Client, workspace: Workspace) -> None:
    """A model being computed says so and polls its status; once done the poll asks for a reload."""
    # given
    model, _ = shop(workspace, 10)
    RfmModel.objects.filter(pk=model.pk).update(status=RfmModel.Status.COMPUTING)

    # when
    page = member_client.get(f"/rfm/{model.slug}/").content.decode()
    RfmModel.objects.filter(pk=model.pk).update(status=RfmModel.Status.ACTIVE)
    done = member_client.get(f"/rfm/{model.slug}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="rfm-status")

    # then
    assert "A full run is in progress" in page and 'hx-trigger="every 2s"' in page
    assert done["HX-Refresh"] == "true"


def test_another_workspace_model_is_not_found(member_client: Client, workspace: Workspace) -> None:
    from events_platform.workspaces.services import workspace_create

    other = workspace_create(workspace_id="other", name="Other")
    services.rfm_model_create(workspace_id=other.id, slug="theirs", name="Theirs")
    assert member_client.get("/rfm/theirs/").status_code == 404
    assert "Theirs" not in member_client.get("/rfm/").content.decode()


def test_list_creates_the_klaviyo_preset(
    member_client: Client, workspace: Workspace, django_capture_on_commit_callbacks: Any
) -> None:
    """With no model, one click creates (and computes) the Klaviyo preset."""
    # given
    store_events(workspace, [purchase(store_contacts(workspace, 1)[0], NOW - dt.timedelta(days=3), "10.00")])
    assert "Score my customers" in member_client.get("/rfm/").content.decode()

    # when (its first run is queued on commit)
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post("/rfm/new-model/")

    # then
    model = RfmModel.objects.get(workspace=workspace)
    assert response.status_code == 302 and response["Location"] == "/rfm/default/"
    assert model.scale == 3 and model.group_map == "klaviyo6" and model.population == 1


def test_contact_page_shows_current_and_previous_group_and_history(
    member_client: Client, workspace: Workspace, django_assert_max_num_queries: Any
) -> None:
    """The contact page's RFM card names the contact's group, the one before and its moves."""
    # given
    model, before = shop(workspace, 30)
    moved = RfmScore.objects.filter(model=model).exclude(previous_group="").first()
    assert moved is not None
    contact = Contact.objects.get(pk=moved.contact_id)

    # when
    with django_assert_max_num_queries(CONTACT_PAGE_QUERIES):
        response = member_client.get(f"/contacts/{contact.pk}/")

    # then
    page = response.content.decode()
    assert response.status_code == 200
    assert f'data-testid="rfm-group">{groups.display_name(moved.group)}<' in page
    assert f'data-testid="rfm-previous">{groups.display_name(moved.previous_group)}<' in page
    assert groups.display_name(before[contact.pk]) == groups.display_name(moved.previous_group)
    assert 'data-testid="rfm-history"' in page


def test_dashboard_shows_the_size_of_each_group(
    member_client: Client, workspace: Workspace, django_assert_max_num_queries: Any
) -> None:
    """The dashboard draws each computed model's groups, best first, with their live sizes."""
    # given
    model, _ = shop(workspace, 25)
    sizes = Counter(RfmScore.objects.filter(model=model).values_list("group", flat=True))

    # when
    with django_assert_max_num_queries(DASHBOARD_QUERIES):
        response = member_client.get("/")

    # then
    [(shown_model, bars)] = response.context["rfm_models"]
    assert shown_model == model
    assert [bar.group for bar in bars] == [*groups.KLAVIYO6_GROUPS, "prospect", "lapsed"]
    assert {bar.group: bar.count for bar in bars} == {bar.group: sizes.get(bar.group, 0) for bar in bars}
    assert max(bar.width for bar in bars) == 100
