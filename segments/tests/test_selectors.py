"""segment_matching_contacts / segment_match_count / segment_preview: one statement, subsets, segment references."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from events_platform.workspaces.models import Workspace
from events_platform.workspaces.services import workspace_create
from segments.models import Segment
from segments.rules import TEMPLATES, TreeValidationError
from segments.selectors import segment_match_count, segment_matching_contacts, segment_preview
from segments.tests.conftest import store_history
from segments.tests.trees import (
    all_of,
    any_of,
    contact_leaf,
    contact_row,
    event_leaf,
    goal_leaf,
    purchase_row,
    segment_leaf,
)

NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)


def _contacts(*keys: str) -> list[dict[str, Any]]:
    return [contact_row(key, created_at=NOW - dt.timedelta(days=100)) for key in keys]


def _purchase(key: str, amount: str, days_ago: int) -> dict[str, Any]:
    return purchase_row(key, amount, NOW - dt.timedelta(days=days_ago), event_name="order.completed")


def _everything() -> dict[str, Any]:
    """Every source and aggregate in one tree, to pin the statement count of the worst case."""
    return any_of(
        *TEMPLATES["vip"]["tree"]["branch"]["leaves"],
        *TEMPLATES["new_high_potential"]["tree"]["branch"]["leaves"],
        goal_leaf(
            "avg",
            "between",
            1,
            "in_date_range",
            goal_type="*",
            value_2=2,
            timeframe_values=["2026-01-01", "2026-03-01T00:00:00Z"],
            negate=True,
        ),
        event_leaf(
            "order.completed", "at_most", 3, properties=[{"key": "currency", "operator": "equals", "value": "USD"}]
        ),
        contact_leaf("properties.age", "gte", 18),
        segment_leaf("big", "not_in_segment"),
    )


def test_matching_is_one_statement(segments_workspace: Workspace, django_assert_num_queries: Any) -> None:
    """With segment pks supplied, listing and counting matches each take exactly one query."""
    # given
    contacts = _contacts("a", "b")
    store_history(workspace=segments_workspace, contacts=contacts, events=[_purchase("a", "10", 1)])
    big = Segment.objects.create(workspace=segments_workspace, slug="big", name="Big", tree={})

    arguments: dict[str, Any] = {
        "workspace_id": segments_workspace.pk,
        "tree": _everything(),
        "timezone_name": "Europe/Paris",
        "now": NOW,
        "segment_pks": {"big": big.pk},
    }

    # when / then
    with django_assert_num_queries(1):
        list(segment_matching_contacts(**arguments))
    with django_assert_num_queries(1):
        segment_match_count(**arguments)


def test_subset_of_contact_ids(segments_workspace: Workspace) -> None:
    """Given contact ids, only the matching ones among them are returned."""
    # given
    contacts = _contacts("a", "b", "c")
    events = [_purchase("a", "10", 1), _purchase("b", "10", 1)]
    store_history(workspace=segments_workspace, contacts=contacts, events=events)
    ids = {contact["key"]: contact["id"] for contact in contacts}
    bought = event_leaf("order.completed")

    # when
    matched = segment_matching_contacts(
        workspace_id=segments_workspace.pk, tree=bought, timezone_name="UTC", now=NOW, contact_ids=[ids["b"], ids["c"]]
    )

    # then
    assert set(matched.values_list("pk", flat=True)) == {ids["b"]}


def test_other_workspaces_never_match(segments_workspace: Workspace) -> None:
    """A tree matching everything returns only the workspace's own contacts."""
    # given
    other = workspace_create(workspace_id="seg_other", name="Other")
    store_history(workspace=segments_workspace, contacts=_contacts("mine"), events=[])
    store_history(workspace=other, contacts=_contacts("theirs"), events=[])
    never_bought = event_leaf("order.completed", "exactly", 0)

    # when
    emails = set(
        segment_matching_contacts(
            workspace_id=segments_workspace.pk, tree=never_bought, timezone_name="UTC", now=NOW
        ).values_list("email", flat=True)
    )

    # then
    assert emails == {"mine@example.test"}


def test_segment_references_resolve_by_slug(segments_workspace: Workspace) -> None:
    """Without segment_pks the workspace's slugs are looked up; unknown or deleted segments are errors."""
    # given
    contacts = _contacts("a", "b")
    store_history(workspace=segments_workspace, contacts=contacts, events=[], memberships={"big": ["a"]})
    Segment.objects.create(
        workspace=segments_workspace, slug="gone", name="Gone", tree={}, status=Segment.Status.DELETED
    )

    # when
    members = set(
        segment_matching_contacts(
            workspace_id=segments_workspace.pk, tree=segment_leaf("big"), timezone_name="UTC", now=NOW
        ).values_list("email", flat=True)
    )
    others = segment_match_count(
        workspace_id=segments_workspace.pk, tree=segment_leaf("big", "not_in_segment"), timezone_name="UTC", now=NOW
    )

    # then
    assert members == {"a@example.test"}
    assert others == 1
    for slug in ("nope", "gone"):
        with pytest.raises(TreeValidationError):
            segment_match_count(workspace_id=segments_workspace.pk, tree=segment_leaf(slug), timezone_name="UTC")


def test_preview_is_one_statement_with_one_grouped_scan_per_goal_base(
    segments_workspace: Workspace, django_assert_num_queries: Any
) -> None:
    """The preview of every source at once (plus the slug lookup its segment leaf needs) is one
    statement, which reads the events of each goal base in one grouped scan, whatever the number
    of conditions over it, and counts the total and each condition from that one pass."""
    # given
    contacts = _contacts("a", "b", "c")
    events = [_purchase("a", "1200", 1), *(_purchase("a", "10", 70 + day) for day in range(5)), _purchase("b", "5", 1)]
    store_history(workspace=segments_workspace, contacts=contacts, events=events)
    Segment.objects.create(workspace=segments_workspace, slug="big", name="Big", tree={})
    arguments: dict[str, Any] = {"workspace_id": segments_workspace.pk, "timezone_name": "Europe/Paris", "now": NOW}

    # when
    with django_assert_num_queries(2) as everything:
        segment_preview(tree=_everything(), **arguments)
    with django_assert_num_queries(1) as vip:
        preview = segment_preview(tree=TEMPLATES["vip"]["tree"], **arguments)

    # then
    (statement,) = vip.captured_queries
    assert statement["sql"].count("GROUP BY") == 1
    # sum / count / count in 60 days over purchases: VIP (a), and a, a, a+b alone.
    assert (preview.total, preview.contacts_in_workspace, preview.condition_counts) == (1, 3, [1, 1, 2])
    assert [contact.email for contact in preview.sample] == ["a@example.test"]
    # The purchases of the VIP leaves and the avg over any goal: two bases, two grouped scans.
    assert everything.captured_queries[-1]["sql"].count("GROUP BY") == 2


def test_preview_of_an_empty_workspace_counts_zero(segments_workspace: Workspace) -> None:
    """Without contacts every count is zero and the sample is empty."""
    # when
    preview = segment_preview(
        workspace_id=segments_workspace.pk,
        tree=all_of(goal_leaf("count", "eq", 0), contact_leaf("email", "is_set")),
        timezone_name="UTC",
        now=NOW,
    )

    # then
    assert (preview.total, preview.contacts_in_workspace, preview.condition_counts, preview.sample) == (
        0,
        0,
        [0, 0],
        [],
    )
