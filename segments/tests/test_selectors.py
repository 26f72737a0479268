"""segment_matching_contacts / segment_match_count: one statement, subsets, segment references."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from events_platform.workspaces.models import Workspace
from events_platform.workspaces.services import workspace_create
from segments.models import Segment
from segments.rules import TEMPLATES, TreeValidationError
from segments.selectors import segment_match_count, segment_matching_contacts
from segments.tests.conftest import store_history

NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)


def _contacts(*keys: str) -> list[dict[str, Any]]:
    return [
        {
            "key": key,
            "email": f"{key}@example.test",
            "external_id": "",
            "first_name": "",
            "last_name": "",
            "properties": {},
            "created_at": NOW - dt.timedelta(days=100),
        }
        for key in keys
    ]


def _purchase(key: str, amount: str, days_ago: int) -> dict[str, Any]:
    return {
        "contact_key": key,
        "event_name": "order.completed",
        "properties": {},
        "occurred_at": NOW - dt.timedelta(days=days_ago),
        "goal_type": "purchase",
        "goal_name": None,
        "goal_value": Decimal(amount),
        "deleted_at": None,
    }


def _in_segment(slug: str, operator: str = "in_segment") -> dict[str, Any]:
    return {"kind": "leaf", "leaf": {"source": "segment", "segment": {"segment_id": slug, "operator": operator}}}


def _everything() -> dict[str, Any]:
    """Every source and aggregate in one tree, to pin the statement count of the worst case."""
    leaves = [
        *TEMPLATES["vip"]["tree"]["branch"]["leaves"],
        *TEMPLATES["new_high_potential"]["tree"]["branch"]["leaves"],
        {
            "kind": "leaf",
            "negate": True,
            "leaf": {
                "source": "custom_events_goals",
                "custom_events_goal": {
                    "goal_type": "*",
                    "aggregate_operator": "avg",
                    "operator": "between",
                    "value": 1,
                    "value_2": 2,
                    "timeframe_operator": "in_date_range",
                    "timeframe_values": ["2026-01-01", "2026-03-01T00:00:00Z"],
                },
            },
        },
        {
            "kind": "leaf",
            "leaf": {
                "source": "custom_events",
                "custom_event": {
                    "event_name": "order.completed",
                    "properties": [{"key": "currency", "operator": "equals", "value": "USD"}],
                    "count_operator": "at_most",
                    "count_value": 3,
                },
            },
        },
        {
            "kind": "leaf",
            "leaf": {"source": "contacts", "contact": {"field": "properties.age", "operator": "gte", "value": 18}},
        },
        _in_segment("big", "not_in_segment"),
    ]
    return {"kind": "branch", "branch": {"operator": "or", "leaves": leaves}}


def test_matching_is_one_statement(segments_workspace: Workspace, django_assert_num_queries: Any) -> None:
    """With segment pks supplied, listing and counting matches each take exactly one query."""
    # given
    contacts = _contacts("a", "b")
    store_history(workspace=segments_workspace, contacts=contacts, events=[_purchase("a", "10", 1)])
    big = Segment.objects.create(workspace=segments_workspace, slug="big", name="Big", tree={})

    # when / then
    with django_assert_num_queries(1):
        list(
            segment_matching_contacts(
                workspace_id=segments_workspace.pk,
                tree=_everything(),
                timezone_name="Europe/Paris",
                now=NOW,
                segment_pks={"big": big.pk},
            )
        )
    with django_assert_num_queries(1):
        segment_match_count(
            workspace_id=segments_workspace.pk,
            tree=_everything(),
            timezone_name="Europe/Paris",
            now=NOW,
            segment_pks={"big": big.pk},
        )


def test_subset_of_contact_ids(segments_workspace: Workspace) -> None:
    """Given contact ids, only the matching ones among them are returned."""
    # given
    contacts = _contacts("a", "b", "c")
    events = [_purchase("a", "10", 1), _purchase("b", "10", 1)]
    store_history(workspace=segments_workspace, contacts=contacts, events=events)
    ids = {contact["key"]: contact["id"] for contact in contacts}
    bought = {
        "kind": "leaf",
        "leaf": {
            "source": "custom_events",
            "custom_event": {"event_name": "order.completed", "count_operator": "at_least", "count_value": 1},
        },
    }

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
    never_bought = {
        "kind": "leaf",
        "leaf": {
            "source": "custom_events",
            "custom_event": {"event_name": "order.completed", "count_operator": "exactly", "count_value": 0},
        },
    }

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
            workspace_id=segments_workspace.pk, tree=_in_segment("big"), timezone_name="UTC", now=NOW
        ).values_list("email", flat=True)
    )
    others = segment_match_count(
        workspace_id=segments_workspace.pk, tree=_in_segment("big", "not_in_segment"), timezone_name="UTC", now=NOW
    )

    # then
    assert members == {"a@example.test"}
    assert others == 1
    for slug in ("nope", "gone"):
        with pytest.raises(TreeValidationError):
            segment_match_count(workspace_id=segments_workspace.pk, tree=_in_segment(slug), timezone_name="UTC")
