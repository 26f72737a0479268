"""Marketer pages of the segments app: dashboard, segments list, builder with live preview, segment page."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from contacts import refresh
from contacts.activity import bucket_ceiling
from contacts.models import CustomEvent
from contacts.services import EventInput, event_set_deleted, events_upsert
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.services import workspace_create
from segments import rules, selectors, services
from segments.models import Segment, SegmentMembershipChange
from segments.tests.api_helpers import CaptureOnCommit
from segments.tests.trees import all_of, any_of, contact_leaf, event_leaf, goal_leaf, segment_leaf

# Fixed maxima, checked with few and many rows: the point is that they do not grow.
# session, user, workspaces, segments, activity by day (days, 30 days, all-time revenue in one),
# part bucket, contacts (tally), RFM models, their group sizes (tally); on PostgreSQL the activity,
# the part bucket and the contacts are one statement (7 in all)
DASHBOARD_MAX_QUERIES = 9
LIST_MAX_QUERIES = 4  # session, user, workspaces, segments
BUILDER_MAX_QUERIES = 6  # session, user, workspaces, (segment), segment choices, RFM models (templates)
PREVIEW_MAX_QUERIES = 6  # session, user, workspaces, segment choices, counts aggregate, sample
DETAIL_MAX_QUERIES = 7  # session, user, workspaces, segment, members, changes, size by day
EXPLAIN_MAX_QUERIES = 7  # session, user, workspaces, segment, contact, explain statement, membership
NOW = timezone.now()
BUYERS = all_of(goal_leaf("count", "gte", 1))
BuyersSegment = Callable[[int], Segment]


@pytest.fixture
def other_workspace(db: None) -> Workspace:
    return workspace_create(workspace_id="globex", name="Globex")


def purchase(email: str, value: str, *, days_ago: float = 1, external_id: str | None = None) -> EventInput:
    return EventInput(
        email=email,
        event_name="order.completed",
        external_id=external_id or f"{email}-{value}-{days_ago}",
        occurred_at=NOW - timedelta(days=days_ago),
        properties={"currency": "EUR"},
        goal={"goal_type": "purchase", "goal_value": Decimal(value)},
    )


def buyers(workspace: Workspace, count: int, *, prefix: str = "buyer") -> None:
    events = [purchase(f"{prefix}{i:03}@example.com", "10.00") for i in range(count)]
    for start in range(0, len(events), 50):
        events_upsert(workspace_id=workspace.id, events=events[start : start + 50])


def built_segment(
    capture: CaptureOnCommit, workspace: Workspace, slug: str = "buyers", tree: dict[str, Any] | None = None
) -> Segment:
    """A segment created through the service, its build run (tasks are eager in tests)."""
    with capture(execute=True):
        segment = services.segment_create(workspace_id=workspace.id, slug=slug, name=slug.title(), tree=tree or BUYERS)
    segment.refresh_from_db()
    return segment


@pytest.fixture
def buyers_segment(workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit) -> BuyersSegment:
    """``buyers_segment(count)``: ``count`` buyers, then segment "buyers" (every buyer) built."""

    def make(count: int) -> Segment:
        buyers(workspace, count)
        return built_segment(django_capture_on_commit_callbacks, workspace)

    return make


def controls(tree: dict[str, Any], **meta: str) -> dict[str, str]:
    """The builder form's controls for ``tree``, as a browser would post them."""
    data: dict[str, str] = {"name": "Buyers", "slug": "", "color": "#4f46e5", "timezone": "UTC", **meta}

    def emit(node: dict[str, Any], path: str) -> None:
        data[f"{path}.kind"] = node["kind"]
        if node.get("negate"):
            data[f"{path}.negate"] = "1"
        if node["kind"] == "branch":
            data[f"{path}.operator"] = node["branch"]["operator"]
            for index, child in enumerate(node["branch"]["leaves"]):
                emit(child, f"{path}.{index}")
            return
        source = node["leaf"]["source"]
        data[f"{path}.source"] = source
        for key, value in node["leaf"][rules.SOURCE_KEYS[source]].items():
            if key == "timeframe_values":
                for index, item in enumerate(value):
                    data[f"{path}.timeframe_value_{index}"] = str(item)
            else:
                data[f"{path}.{key}"] = str(value)

    emit(tree, "n")
    return data


# --------------------------------------------------------------------------- dashboard


def test_dashboard_shows_net_revenue_with_refunds_and_without_deleted_events(
    member_client: Client, workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """Net revenue is the sum of live purchase values, refunds (negative) included, deleted events excluded."""
    # given a purchase, its partial refund, an old purchase and a deleted purchase, their
    # contacts' stored totals refreshed after the commit (as the drain does in production)
    with django_capture_on_commit_callbacks(execute=True):
        events_upsert(
            workspace_id=workspace.id,
            events=[
                purchase("a@example.com", "100.00", external_id="o1"),
                purchase("a@example.com", "-30.00", external_id="r1"),
                purchase("b@example.com", "500.00", days_ago=90, external_id="o2"),
                purchase("b@example.com", "999.00", external_id="o3"),
            ],
        )
    with django_capture_on_commit_callbacks(execute=True):
        event_set_deleted(event=CustomEvent.objects.get(external_id="o3"), deleted=True)

    # when the dashboard is shown
    response = member_client.get("/")

    # then 30 days = 70.00, all time = 570.00, two contacts, three live events in 30 days
    assert response.status_code == 200
    figures = response.context["figures"]
    assert figures.contacts == 2
    assert figures.events_30d == 2
    assert Decimal(figures.revenue_30d) == Decimal("70.00")
    assert Decimal(figures.revenue_all_time) == Decimal("570.00")
    assert b"570.00" in response.content


def _segment_cards(response: Any) -> int:
    return int(response.content.count(b'class="card segment-card"'))


def _segment_rows(response: Any) -> int:
    return len(response.context["rows"])


@pytest.mark.parametrize("segments", [1, 12])
@pytest.mark.parametrize(
    ("url", "max_queries", "shown"),
    [
        ("/", DASHBOARD_MAX_QUERIES, _segment_cards),
        ("/segments/", LIST_MAX_QUERIES, _segment_rows),
        ("/segments/new-segment/", BUILDER_MAX_QUERIES, None),
        ("/segments/s00/edit/", BUILDER_MAX_QUERIES, None),
    ],
)
def test_page_query_counts_do_not_grow_with_segments(
    member_client: Client,
    workspace: Workspace,
    segments: int,
    url: str,
    max_queries: int,
    shown: Callable[[Any], int] | None,
    django_assert_max_num_queries: Any,
    django_capture_on_commit_callbacks: CaptureOnCommit,
) -> None:
    """The dashboard (figures and segment cards), the segments list and the builder (new and edit)
    each cost a fixed number of queries, with one segment or twelve."""
    # given some buyers and 1 or 12 segments
    buyers(workspace, 5)
    for index in range(segments):
        built_segment(django_capture_on_commit_callbacks, workspace, slug=f"s{index:02}")

    # when / then
    with django_assert_max_num_queries(max_queries):
        response = member_client.get(url)
    assert response.status_code == 200
    if shown is not None:
        assert shown(response) == segments


# --------------------------------------------------------------------------- segments list


def test_list_warns_about_stale_and_failed_segments(
    member_client: Client, workspace: Workspace, settings: Any, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """A rolling segment not rebuilt for 2x the refresh interval is stale; a failed one shows its error."""
    # given a rolling segment last built long ago, and a failed one
    settings.SEGMENT_REFRESH_INTERVAL = 60
    rolling = built_segment(
        django_capture_on_commit_callbacks,
        workspace,
        "recent",
        all_of(goal_leaf("count", "gte", 1, timeframe="in_the_last_days", days=30)),
    )
    Segment.objects.filter(pk=rolling.pk).update(last_built_at=timezone.now() - timedelta(seconds=121))
    failed = built_segment(django_capture_on_commit_callbacks, workspace, "broken")
    Segment.objects.filter(pk=failed.pk).update(status=Segment.Status.FAILED, last_error="statement timeout")
    fresh = built_segment(django_capture_on_commit_callbacks, workspace, "fresh")

    # when
    response = member_client.get("/segments/")

    # then
    page = response.content.decode()
    assert response.status_code == 200
    assert "Stale" in page and "statement timeout" in page
    rows = dict((segment.slug, freshness.badge) for segment, freshness in response.context["rows"])
    assert rows == {"recent": "warn", "broken": "bad", fresh.slug: "ok"}
    # rebuild and delete are forms / links per row, rebuild with a CSRF token
    assert page.count('action="/segments/fresh/rebuild/"') == 1
    assert 'href="/segments/fresh/delete/"' in page
    assert "csrfmiddlewaretoken" in page


def test_rebuild_and_delete(
    member_client: Client,
    workspace: Workspace,
    django_capture_on_commit_callbacks: CaptureOnCommit,
    buyers_segment: BuyersSegment,
) -> None:
    """Rebuild recomputes and comes back active; delete asks first (GET) and deletes on POST."""
    # given a built segment with two buyers
    segment = buyers_segment(2)

    # when rebuilt
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(f"/segments/{segment.slug}/rebuild/", {"next": "/segments/"})

    # then
    assert response.status_code == 302 and response["Location"] == "/segments/"
    segment.refresh_from_db()
    assert segment.status == Segment.Status.ACTIVE and segment.member_count == 2 and segment.version == 2

    # when deletion is asked, then confirmed
    confirm = member_client.get(f"/segments/{segment.slug}/delete/")
    deleted = member_client.post(f"/segments/{segment.slug}/delete/")

    # then
    assert confirm.status_code == 200 and b"Delete segment" in confirm.content
    assert deleted.status_code == 302
    assert selectors.segment_get(workspace_id=workspace.id, slug=segment.slug) is None
    assert member_client.get(f"/segments/{segment.slug}/").status_code == 404


def test_delete_refused_while_another_segment_uses_it(
    member_client: Client, workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """A segment used by another one is not deleted; the page says why."""
    built_segment(django_capture_on_commit_callbacks, workspace, "base")
    dependant = segment_leaf("base")
    built_segment(django_capture_on_commit_callbacks, workspace, "derived", dependant)

    response = member_client.post("/segments/base/delete/")

    assert response.status_code == 400
    assert "Used by other segments: derived" in response.content.decode()


# --------------------------------------------------------------------------- isolation and CSRF


def test_other_workspaces_segments_are_not_found(
    member_client: Client,
    other_workspace: Workspace,
    django_capture_on_commit_callbacks: CaptureOnCommit,
) -> None:
    """Every page of a segment of a workspace the user does not belong to is a 404, and lists leave it out."""
    # given a segment in a workspace the user is not a member of
    foreign = built_segment(django_capture_on_commit_callbacks, other_workspace, "secret_vips")

    # when / then
    for url in ("", "edit/", "delete/", "export.csv"):
        assert member_client.get(f"/segments/{foreign.slug}/{url}").status_code == 404, url
    assert member_client.post(f"/segments/{foreign.slug}/rebuild/").status_code == 404
    assert member_client.post(f"/segments/{foreign.slug}/delete/").status_code == 404
    assert b"secret_vips" not in member_client.get("/segments/").content
    assert b"Secret_Vips" not in member_client.get("/").content
    foreign.refresh_from_db()
    assert foreign.status == Segment.Status.ACTIVE and foreign.version == 1


def test_preview_and_builder_do_not_read_other_workspaces(
    member_client: Client,
    workspace: Workspace,
    other_workspace: Workspace,
    django_capture_on_commit_callbacks: CaptureOnCommit,
) -> None:
    """The preview counts only the user's workspace, and a segment condition cannot name a foreign segment."""
    # given buyers in both workspaces and a segment only in the other one
    buyers(workspace, 2)
    buyers(other_workspace, 5, prefix="foreign")
    built_segment(django_capture_on_commit_callbacks, other_workspace, "theirs")

    # when previewing "bought once" and saving a tree that refers to the foreign segment
    preview = member_client.post("/segments/live-preview/", controls(BUYERS))
    foreign_ref = segment_leaf("theirs")
    saved = member_client.post("/segments/new-segment/", controls(all_of(foreign_ref), name="Sneaky"))

    # then
    assert preview.context["preview"].total == 2
    assert saved.status_code == 400
    assert "Unknown segment(s) referenced: theirs." in saved.content.decode()
    assert not Segment.objects.filter(workspace=workspace).exists()


def test_forms_require_csrf(member: User, workspace: Workspace) -> None:
    """Every state-changing form is protected by CSRF."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    for url in ("/segments/new-segment/", "/segments/live-preview/", "/segments/x/rebuild/", "/segments/x/delete/"):
        assert client.post(url, controls(BUYERS)).status_code == 403, url


def test_pages_require_login(client: Client, db: None) -> None:
    """Anonymous visitors are sent to the login page."""
    for url in ("/", "/segments/", "/segments/new-segment/", "/segments/x/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


# --------------------------------------------------------------------------- builder


def test_builder_saves_a_valid_tree_and_starts_the_build(
    member_client: Client, workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """Saving creates the segment (slug from the name), builds it and lands on its page."""
    # given two buyers, one of them above 100
    events_upsert(
        workspace_id=workspace.id, events=[purchase("a@example.com", "150.00"), purchase("b@example.com", "20.00")]
    )
    tree = all_of(goal_leaf("sum", "gte", 100), goal_leaf("count", "gte", 1, timeframe="in_the_last_days", days=60))

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(
            "/segments/new-segment/", controls(tree, name="Big spenders", timezone="Europe/Paris")
        )

    # then
    assert response.status_code == 302 and response["Location"] == "/segments/big_spenders/"
    segment = Segment.objects.get(workspace=workspace, slug="big_spenders")
    assert segment.tree == rules.validate_tree(tree)
    assert segment.timezone == "Europe/Paris"
    assert segment.status == Segment.Status.ACTIVE and segment.member_count == 1


def test_builder_shows_errors_at_their_fields_and_keeps_the_input(member_client: Client, workspace: Workspace) -> None:
    """An invalid tree is not saved; each message sits next to its control, and what was typed stays."""
    # given a tree whose second condition has no value and a "between" with its bounds reversed
    tree = all_of(goal_leaf("sum", "gte", 100), goal_leaf("sum", "between", 50, value_2=10))
    data = controls(tree, name="Almost")
    data["n.0.value"] = ""

    # when
    response = member_client.post("/segments/new-segment/", data)

    # then
    page = response.content.decode()
    assert response.status_code == 400
    assert not Segment.objects.exists()
    assert re.search(r'id="n-0-value-error">This field is required\.', page)
    assert re.search(r'id="n-1-value_2-error">Must be greater than or equal to value\.', page)
    assert 'aria-invalid="true" aria-describedby="n-0-value-error"' in page
    assert 'value="Almost"' in page and 'name="n.1.value" value="50"' in page


def test_builder_reports_a_taken_id_on_the_id_field(
    member_client: Client, workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """A slug already used in the workspace is an error on the Id field, not a crash."""
    built_segment(django_capture_on_commit_callbacks, workspace, "buyers")
    response = member_client.post("/segments/new-segment/", controls(BUYERS, name="Buyers again", slug="buyers"))
    assert response.status_code == 400
    assert "already exists" in str(response.context["form"].errors["slug"])


def test_structural_edits_are_served_as_the_form_fragment_to_htmx(member_client: Client, workspace: Workspace) -> None:
    """Add/remove buttons and templates re-render only the form for htmx; nothing is saved."""
    # given a one-condition form
    data = controls(all_of(goal_leaf("sum", "gte", 100)))

    # when adding a group to the root, then a condition to that group, via htmx
    added = member_client.post("/segments/new-segment/", {**data, "op": "add_group:n"}, headers={"HX-Request": "true"})

    # then the fragment is the form alone, with a nested group holding a new condition
    page = added.content.decode()
    assert page.lstrip().startswith('<form id="segment-form"')
    assert 'name="n.1.kind" value="branch"' in page and 'name="n.1.0.kind" value="leaf"' in page
    assert not Segment.objects.exists()

    # when removing the first condition without JavaScript (a full page)
    removed = member_client.post("/segments/new-segment/", {**data, "op": "remove:n.0"})
    assert "<html" in removed.content.decode()
    assert 'name="n.0.kind"' not in removed.content.decode()


def test_editing_keeps_the_slug_and_rebuilds(
    member_client: Client, django_capture_on_commit_callbacks: CaptureOnCommit, buyers_segment: BuyersSegment
) -> None:
    """Editing changes the rules and rebuilds; the id cannot be changed from the form."""
    segment = buyers_segment(3)
    data = controls(all_of(goal_leaf("count", "gte", 2)), name="Repeat buyers", slug="hijack")
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(f"/segments/{segment.slug}/edit/", data)
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.slug == "buyers" and segment.name == "Repeat buyers"
    assert segment.version == 2 and segment.member_count == 0


def test_builder_round_trips_every_source_nested_and_negated(
    member_client: Client, workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """Every leaf source, NOT on a group and a leaf, and nesting survive edit -> save unchanged."""
    # given an existing segment and a tree using all four sources
    built_segment(django_capture_on_commit_callbacks, workspace, "base")
    tree = any_of(
        all_of(
            event_leaf(
                "page.viewed",
                "at_least",
                2,
                timeframe="in_date_range",
                values=["2026-01-01", "2026-03-31"],
                properties=[{"key": "path", "operator": "equals", "value": "/pricing"}],
            ),
            contact_leaf("properties.country", "equals", "FR", negate=True),
            negate=True,
        ),
        segment_leaf("base", "not_in_segment"),
        contact_leaf("created_at", "in_the_last_days", 7),
    )
    data = controls(tree, name="Everything")
    # the controls of a contact property and a property filter are named as the page names them
    data.pop("n.0.1.field"), data.pop("n.0.0.properties")
    data |= {"n.0.1.field": "properties", "n.0.1.property_key": "country"}
    data |= {"n.0.0.prop_key_0": "path", "n.0.0.prop_operator_0": "equals", "n.0.0.prop_value_0": "/pricing"}

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post("/segments/new-segment/", data)

    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Segment.objects.get(slug="everything").tree == rules.validate_tree(tree)

    # and the edit page shows it back with the same controls
    edit = member_client.get("/segments/everything/edit/").content.decode()
    assert 'name="n.0.negate" value="1" checked' in edit and 'name="n.0.1.negate" value="1" checked' in edit
    assert 'name="n.0.1.property_key" value="country"' in edit
    assert "Not: contact property country is “FR”" in edit


def test_template_button_fills_the_vip_tree_and_name(member_client: Client, workspace: Workspace) -> None:
    """One click on VIP loads its three conditions (labelled in plain language), its name and colour."""
    response = member_client.post(
        "/segments/new-segment/", {**controls(BUYERS, name=""), "op": "template:vip"}, headers={"HX-Request": "true"}
    )
    page = response.content.decode()
    assert 'value="VIP"' in page and 'value="vip"' in page
    assert "Total value of purchase events is at least 1,000.00" in page
    assert "Number of purchase events in the last 60 days is at least 1" in page


# --------------------------------------------------------------------------- live preview


def test_preview_matches_the_engine_and_counts_each_top_level_condition(
    member_client: Client, workspace: Workspace, django_assert_max_num_queries: Any
) -> None:
    """The preview fragment shows the same total as segments.preview, each condition alone, and samples."""
    # given three contacts: a big recent spender, a small one, and an old big one
    events_upsert(
        workspace_id=workspace.id,
        events=[
            purchase("big@example.com", "1200.00"),
            purchase("small@example.com", "20.00"),
            purchase("old@example.com", "1500.00", days_ago=200),
        ],
    )
    tree = all_of(goal_leaf("sum", "gte", 1000), goal_leaf("count", "gte", 1, timeframe="in_the_last_days", days=60))

    # when
    with django_assert_max_num_queries(PREVIEW_MAX_QUERIES):
        response = member_client.post("/segments/live-preview/", controls(tree), headers={"HX-Request": "true"})

    # then
    expected = selectors.segment_preview(workspace_id=workspace.id, tree=tree, timezone_name="UTC")
    page = response.content.decode()
    assert response.context["preview"].total == expected.total == 1
    assert [c.count for c in response.context["conditions"]] == expected.condition_counts == [2, 2]
    assert 'data-testid="preview-total">1<' in page
    assert "big@example.com" in page and "small@example.com" not in page
    # labels follow the typing: each condition's label comes back out of band
    assert 'id="n-0-label" hx-swap-oob="true"' in page
    assert "Total value of purchase events is at least 1,000.00" in page


def test_preview_of_an_incomplete_tree_says_what_is_missing(member_client: Client, workspace: Workspace) -> None:
    """An incomplete tree gives no count but names the field to fill."""
    data = controls(all_of(goal_leaf("sum", "gte", 100)))
    data["n.0.value"] = ""
    response = member_client.post("/segments/live-preview/", data, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Complete the conditions" in page and "Condition 1, value: This field is required." in page


# --------------------------------------------------------------------------- segment page


@pytest.mark.parametrize("members", [2, 40])
def test_segment_page_query_count_does_not_grow_with_members(
    member_client: Client, members: int, django_assert_max_num_queries: Any, buyers_segment: BuyersSegment
) -> None:
    """Members, log and chart each cost one query, however many members there are."""
    segment = buyers_segment(members)
    with django_assert_max_num_queries(DETAIL_MAX_QUERIES):
        response = member_client.get(f"/segments/{segment.slug}/")
    assert response.status_code == 200
    assert len(response.context["members"]) == min(members, 25)
    assert response.context["chart"].last_size == members


def test_members_are_searchable_and_keyset_paginated(member_client: Client, buyers_segment: BuyersSegment) -> None:
    """Members page by 25 with a cursor link that works with and without htmx; search filters by email."""
    segment = buyers_segment(30)

    first = member_client.get(f"/segments/{segment.slug}/")
    next_url = first.context["members_next"]
    second = member_client.get(
        f"/segments/{segment.slug}/{next_url}", headers={"HX-Request": "true", "HX-Target": "members"}
    )
    searched = member_client.get(
        f"/segments/{segment.slug}/?q=buyer007", headers={"HX-Request": "true", "HX-Target": "members"}
    )

    def emails(response: Any) -> set[str]:
        return set(re.findall(r'class="contact-email"[^>]*>([^<]+)<', response.content.decode()))

    # then the two pages hold all 30, the second page being only the members fragment
    assert len(emails(first)) == 25 and len(emails(first) | emails(second)) == 30
    assert second.content.decode().lstrip().startswith('<section id="members"')
    assert emails(searched) == {"buyer007@example.com"}
    assert f'href="{next_url}"' in first.content.decode() and f'hx-get="{next_url}"' in first.content.decode()


def test_entered_and_exited_log_and_size_chart(
    member_client: Client, workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """A refund that drops a contact out appears in the log as exited, and the chart ends at the current size."""
    # given two big buyers in a "spent 100+" segment, then one refunds
    events_upsert(
        workspace_id=workspace.id, events=[purchase("a@example.com", "150.00"), purchase("b@example.com", "150.00")]
    )
    segment = built_segment(
        django_capture_on_commit_callbacks, workspace, "spenders", all_of(goal_leaf("sum", "gte", 100))
    )
    with django_capture_on_commit_callbacks(execute=True):
        events_upsert(workspace_id=workspace.id, events=[purchase("a@example.com", "-100.00", external_id="refund")])
    with django_capture_on_commit_callbacks(execute=True):
        refresh.contacts_refresh_pending(workspace_id=workspace.id)

    # when
    response = member_client.get(f"/segments/{segment.slug}/")

    # then
    changes = [(c.change, c.contact.email) for c in response.context["changes"]]
    assert changes[0] == ("exited", "a@example.com")
    assert SegmentMembershipChange.objects.filter(segment=segment).count() == 3
    # the chart is by day: today two entered and one left, so the day ends at 1
    (today,) = selectors.segment_size_by_day(segment=segment, timezone_name="UTC")
    assert (today.entered, today.exited, today.size) == (2, 1, 1)
    assert response.context["chart"].last_size == 1
    assert "<polyline" in response.content.decode()


def test_status_fragment_polls_while_building_and_stops_when_active(
    member_client: Client, workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """While building, the status fragment asks to be polled every second; once active it stops
    and tells the members list to reload."""
    segment = built_segment(django_capture_on_commit_callbacks, workspace)
    Segment.objects.filter(pk=segment.pk).update(status=Segment.Status.BUILDING)
    headers = {"HX-Request": "true", "HX-Target": "segment-status"}

    building = member_client.get(f"/segments/{segment.slug}/", headers=headers)
    Segment.objects.filter(pk=segment.pk).update(status=Segment.Status.ACTIVE)
    active = member_client.get(f"/segments/{segment.slug}/", headers=headers)

    assert 'hx-trigger="every 1s"' in building.content.decode() and "HX-Trigger" not in building
    assert "every 1s" not in active.content.decode() and active["HX-Trigger"] == "segment-built"
    assert active.content.decode().lstrip().startswith('<section id="segment-status"')


def test_explain_fragment_shows_each_condition_actual_and_needed(
    member_client: Client,
    workspace: Workspace,
    django_assert_max_num_queries: Any,
    django_capture_on_commit_callbacks: CaptureOnCommit,
) -> None:
    """Explaining a contact lists each condition with its actual value and whether it held."""
    events_upsert(workspace_id=workspace.id, events=[purchase("a@example.com", "740.50")])
    segment = built_segment(
        django_capture_on_commit_callbacks, workspace, "vipish", all_of(goal_leaf("sum", "gte", 1000))
    )

    with django_assert_max_num_queries(EXPLAIN_MAX_QUERIES):
        response = member_client.get(
            f"/segments/{segment.slug}/?email=A@example.com", headers={"HX-Request": "true", "HX-Target": "explain"}
        )
    missing = member_client.get(
        f"/segments/{segment.slug}/?email=nobody@example.com", headers={"HX-Request": "true", "HX-Target": "explain"}
    )
    full_page = member_client.get(f"/segments/{segment.slug}/?email=a@example.com")

    page = response.content.decode()
    assert page.lstrip().startswith('<div id="explain"')
    assert "does not match" in page and "sum = 740.50" in page and "not held" in page
    assert "No contact with the email nobody@example.com" in missing.content.decode()
    assert "sum = 740.50" in full_page.content.decode()


def test_csv_export_streams_the_members(member_client: Client, buyers_segment: BuyersSegment) -> None:
    """The export is a streamed CSV of the members, session-authenticated under the page's URL."""
    segment = buyers_segment(3)
    response = member_client.get(f"/segments/{segment.slug}/export.csv")
    lines = response.getvalue().decode().splitlines()
    assert response["Content-Type"].startswith("text/csv")
    assert lines[0] == "email,external_id,first_name,last_name,entered_at"
    assert [line.split(",")[0] for line in lines[1:]] == [f"buyer{i:03}@example.com" for i in range(3)]


@pytest.mark.parametrize("slug", ["new", "preview", "new_segment"])
def test_a_segment_named_like_a_builder_page_has_its_own_page(
    member_client: Client, workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit, slug: str
) -> None:
    """Segment ids cannot contain a hyphen, so the builder's pages never shadow a segment's page."""
    # given
    segment = built_segment(django_capture_on_commit_callbacks, workspace, slug)
    # when
    page = member_client.get(f"/segments/{slug}/")
    edit = member_client.get(f"/segments/{slug}/edit/")
    # then
    assert page.status_code == 200
    assert f"/segments/{slug}/export.csv" in page.content.decode()
    assert edit.status_code == 200
    assert f'value="{segment.name}"' in edit.content.decode()


def test_dashboard_figures_equal_an_independent_computation_over_random_events(
    workspace: Workspace, other_workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """Over random purchases, refunds, other goals and plain events, some deleted, some older than
    30 days (two within a minute of the boundary) and several contacts, the figures equal the
    same sums done in Python; another workspace's events count nowhere."""
    # given random events of eight contacts, their stored totals refreshed after each commit
    rng = random.Random(20261130)
    since = NOW - timedelta(days=30)

    def random_event(index: int, days_ago: float) -> EventInput:
        kind = rng.choice(["purchase", "refund", "subscription", "lead", "plain"])
        cents = rng.randint(1, 100_000)
        goals: dict[str, dict[str, Any]] = {
            "purchase": {"goal_type": "purchase", "goal_value": Decimal(cents).scaleb(-2)},
            "refund": {"goal_type": "purchase", "goal_value": -Decimal(cents).scaleb(-2)},
            "subscription": {"goal_type": "subscription", "goal_value": Decimal(cents).scaleb(-2)},
            "lead": {"goal_type": "lead"},
            "plain": {},
        }
        goal = goals[kind]
        return EventInput(
            email=f"c{rng.randrange(8)}@example.com",
            event_name=f"{kind}.event",
            external_id=f"e{index}",
            occurred_at=NOW - timedelta(days=days_ago),
            goal=goal,
        )

    # and two purchases in the 15 minutes that start the 30 days (read from the events, not the
    # activity rows), the second of them deleted
    edge = bucket_ceiling(since)
    inside = 30 - (edge - since).total_seconds() / 2 / 86400 if edge > since else 30 - 1 / 1440
    ages = [rng.uniform(0, 120) for _ in range(80)] + [30 - 1 / 1440, 30 + 1 / 1440, inside, inside]
    events = [random_event(index, days_ago) for index, days_ago in enumerate(ages)]
    for index in (len(events) - 2, len(events) - 1):
        events[index] = replace(events[index], goal={"goal_type": "purchase", "goal_value": Decimal("12.34")})
    with django_capture_on_commit_callbacks(execute=True):
        events_upsert(workspace_id=workspace.id, events=events)
        events_upsert(workspace_id=other_workspace.id, events=[purchase("c0@example.com", "1000.00", days_ago=2)])
    deleted = set(rng.sample(range(len(events) - 2), 20)) | {len(events) - 1}
    with django_capture_on_commit_callbacks(execute=True):
        for index in sorted(deleted):
            event_set_deleted(event=CustomEvent.objects.get(workspace=workspace, external_id=f"e{index}"), deleted=True)

    # when
    figures = selectors.dashboard_figures(workspace_id=workspace.id, now=NOW)

    # then
    live = [event for index, event in enumerate(events) if index not in deleted]
    recent = [event for event in live if event.occurred_at >= since]

    def net_revenue(rows: list[EventInput]) -> Decimal:
        return sum((e.goal["goal_value"] for e in rows if e.goal.get("goal_type") == "purchase"), Decimal("0"))

    assert figures.contacts == len({event.email for event in events})
    assert figures.events_30d == len(recent)
    assert Decimal(figures.revenue_30d) == net_revenue(recent)
    assert Decimal(figures.revenue_all_time) == net_revenue(live)
    assert any(e.goal.get("goal_value", 0) < 0 for e in recent) and len(recent) < len(live)


def test_dashboard_all_time_revenue_is_exact_at_the_commit(workspace: Workspace) -> None:
    """The 30-day and the all-time revenue both count a purchase as soon as it is committed (the
    activity deltas are written in the purchase's own transaction), refunds net."""
    # given
    events_upsert(workspace_id=workspace.id, events=[purchase("a@example.com", "100.00", external_id="o1")])
    # when a second purchase and a refund are committed (no drain has run)
    events_upsert(
        workspace_id=workspace.id,
        events=[
            purchase("a@example.com", "25.00", external_id="o2"),
            purchase("b@example.com", "-10.00", external_id="r1"),
        ],
    )
    figures = selectors.dashboard_figures(workspace_id=workspace.id, now=NOW)
    # then
    assert Decimal(figures.revenue_30d) == Decimal("115.00")
    assert Decimal(figures.revenue_all_time) == Decimal("115.00")


def test_builder_round_trips_date_conditions_on_a_contact_property(
    member_client: Client, workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """A contact property offers the date comparisons created_at has; before/after a date and in the
    last N days on a property survive edit -> save unchanged, shown in plain words."""

    # given
    def on_property(key: str, operator: str, value: Any) -> dict[str, Any]:
        return contact_leaf(f"properties.{key}", operator, value)

    tree = all_of(
        on_property("trial_ends_at", "before", "2026-04-01"),
        on_property("trial_ends_at", "after", "2026-03-01"),
        on_property("signed_up_on", "in_the_last_days", 30),
    )
    data = controls(tree, name="Trial ending")
    for index, key in enumerate(("trial_ends_at", "trial_ends_at", "signed_up_on")):
        data |= {f"n.{index}.field": "properties", f"n.{index}.property_key": key}

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post("/segments/new-segment/", data)

    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    segment = Segment.objects.get(slug="trial_ending")
    assert segment.tree == rules.validate_tree(tree)
    assert rules.has_relative_timeframe(segment.tree) is True

    # and the edit page shows them back: the date comparisons offered, a date input, plain labels
    edit = member_client.get("/segments/trial_ending/edit/").content.decode()
    assert '<option value="before" selected>is before</option>' in edit
    assert '<option value="in_the_last_days" selected>is in the last … days</option>' in edit
    assert re.search(r'type="date"[^>]*name="n\.0\.value"|name="n\.0\.value"[^>]*type="date"', edit)
    assert "Contact property trial_ends_at is before 2026-04-01" in edit
    assert "Contact property trial_ends_at is after 2026-03-01" in edit
    assert "Contact property signed_up_on is in the last 30 days" in edit
