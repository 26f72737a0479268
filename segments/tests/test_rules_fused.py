"""Fused goal groups: same-base goal conditions are evaluated in one grouped scan of the events,
and still mean exactly what each condition means alone (contacts without events included)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from events_platform.workspaces.models import Workspace
from segments.rules import TEMPLATES, compile_tree
from segments.selectors import segment_match_count, segment_matching_contacts
from segments.tests.conftest import store_history
from segments.tests.oracle import matching_contact_ids
from segments.tests.trees import all_of, any_of, contact_leaf, contact_row, goal_leaf, negated, purchase_row

NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)


def _contact(key: str) -> dict[str, Any]:
    return contact_row(key, created_at=NOW - dt.timedelta(days=400))


def _purchase(key: str, amount: str, days_ago: int) -> dict[str, Any]:
    return purchase_row(key, amount, NOW - dt.timedelta(days=days_ago))


def _sql(workspace: Workspace, tree: dict, contact_ids: list[int] | None = None) -> str:
    matching = segment_matching_contacts(
        workspace_id=workspace.pk, tree=tree, timezone_name="UTC", now=NOW, contact_ids=contact_ids
    )
    return str(matching.values("id").query)


@pytest.mark.parametrize("slug", ["vip", "at_risk_high_value"])
def test_aggregate_templates_compile_to_one_grouped_scan(segments_workspace: Workspace, slug: str) -> None:
    """VIP and At-Risk: every condition is evaluated in ONE GROUP BY over the purchases, joined
    to the contacts as a semi-join (no correlated subquery per contact)."""
    # when
    sql = _sql(segments_workspace, TEMPLATES[slug]["tree"])
    # then
    assert sql.count("SELECT") == 2
    assert sql.count("GROUP BY") == 1
    assert '"contacts_contact"."id" IN (SELECT U0."contact_id"' in sql


def test_first_purchase_template_groups_the_counts_and_keeps_first_correlated(segments_workspace: Workspace) -> None:
    """New High-Potential: both counts in one GROUP BY; the first purchase's value (earliest, ties
    by id) stays one ordered subquery, the only correlated one."""
    # when
    sql = _sql(segments_workspace, TEMPLATES["new_high_potential"]["tree"])
    # then
    assert sql.count("GROUP BY") == 1
    # The query, the group and the first purchase; the correlated one names its workspace as a
    # parameter the planner cannot estimate, "(SELECT ws)" (events_platform/workspaces/planning.py).
    assert sql.count("SELECT") - sql.count(f"= (SELECT {segments_workspace.pk})") == 3
    assert sql.count(f"= (SELECT {segments_workspace.pk})") == 1
    assert "LIMIT 1" in sql


def test_a_few_contacts_are_evaluated_with_one_correlated_group_each(segments_workspace: Workspace) -> None:
    """On-event refreshes evaluate a few contacts: no scan over the whole workspace's events,
    one grouped EXISTS per contact instead."""
    # when
    sql = _sql(segments_workspace, TEMPLATES["vip"]["tree"], contact_ids=[101, 202])
    # then
    assert sql.count("GROUP BY") == 1
    assert 'IN (SELECT U0."contact_id"' not in sql
    assert 'EXISTS(SELECT 1 AS "a" FROM "contacts_customevent" U0' in sql


def test_conditions_that_hold_without_events_are_grouped_as_not_exists(segments_workspace: Workspace) -> None:
    """ "No purchase in 90 days and total at most 0" holds for contacts without purchases: it is
    evaluated as NOT EXISTS of the groups failing it, never as a semi-join that would drop them."""
    # given
    tree = all_of(goal_leaf("count", "eq", 0, "in_the_last_days", 90), goal_leaf("sum", "lte", 0))
    # when
    q = compile_tree(tree, workspace_id="w", now=NOW, timezone_name="UTC", segment_pks={}, semi_join=True)
    # then
    assert "Exists" in repr(q)
    assert "pk__in" not in repr(q)


def test_a_fused_group_is_correlated_where_a_semi_join_would_be_wrong(segments_workspace: Workspace) -> None:
    """Under a NOT or an OR (or when the caller does not use the condition as its WHERE) a group
    is one correlated EXISTS, never an IN over all groups."""
    # given
    vip = TEMPLATES["vip"]["tree"]
    email = contact_leaf("email", "is_set")
    trees = [negated(vip), any_of(vip, email)]
    for tree in trees:
        # when
        q = compile_tree(tree, workspace_id="w", now=NOW, timezone_name="UTC", segment_pks={}, semi_join=True)
        # then
        assert "pk__in" not in repr(q)
        assert "Exists" in repr(q)
    assert "pk__in" not in repr(compile_tree(vip, workspace_id="w", now=NOW, timezone_name="UTC", segment_pks={}))


# Contacts: none has no event at all; "old" bought long ago; "recent" bought lately; "big" both.
HISTORY = [
    _purchase("old", "600", 200),
    _purchase("recent", "50", 10),
    _purchase("recent", "60", 5),
    _purchase("big", "700", 300),
    _purchase("big", "400", 20),
    # Two purchases at the same instant: "first" is the one with the smaller id (stored first).
    _purchase("tie", "300", 15),
    _purchase("tie", "100", 15),
    _purchase("refund", "600", 200),
    _purchase("refund", "-200", 100),
]
CONTACTS = ["none", "old", "recent", "big", "tie", "refund"]

CASES = [
    # At-Risk: only contacts with purchases can spend 500; "none" is out.
    (all_of(goal_leaf("sum", "gte", 500), goal_leaf("count", "eq", 0, "in_the_last_days", 90)), {"old"}),
    # Its exact complement, contacts without any event included.
    (
        all_of(
            goal_leaf("sum", "gte", 500),
            goal_leaf("count", "eq", 0, "in_the_last_days", 90),
            negate=True,
        ),
        {"none", "recent", "big", "tie", "refund"},
    ),
    # A NOT inside the group: not (count in 30 days >= 1), with a total of at least 100.
    (
        all_of(negated(goal_leaf("count", "gte", 1, "in_the_last_days", 30)), goal_leaf("sum", "gte", 100)),
        {"old", "refund"},
    ),
    # Holds without events: no purchase in 30 days and total at most 600.
    (
        all_of(goal_leaf("count", "eq", 0, "in_the_last_days", 30), goal_leaf("sum", "lte", 600)),
        {"none", "old", "refund"},
    ),
    # OR of conditions false without events, with a nested same-base AND.
    (
        any_of(
            goal_leaf("max", "gte", 700),
            all_of(goal_leaf("avg", "lt", 100), goal_leaf("count", "gte", 2)),
        ),
        {"big", "recent"},
    ),
    # first beside grouped counts: the group only needs contacts that have a purchase.
    (
        all_of(
            goal_leaf("first", "eq", 300),
            goal_leaf("count", "eq", 0, "more_than_days_ago", 30),
            goal_leaf("count", "gte", 1, "in_the_last_days", 30),
        ),
        {"tie"},
    ),
    # first beside a group that holds without events (count eq 0): still only contacts with purchases.
    (
        all_of(
            goal_leaf("last", "gt", 0),
            goal_leaf("count", "eq", 0, "in_the_last_days", 60),
            goal_leaf("sum", "lte", 600),
        ),
        {"old"},
    ),
]


@pytest.mark.parametrize(("tree", "expected"), CASES)
def test_fused_groups_keep_each_conditions_meaning(
    segments_workspace: Workspace, tree: dict, expected: set[str]
) -> None:
    """Fused or not, a tree matches the same contacts: checked against hand-worked answers, the
    oracle, the count and the subset mode."""
    # given
    contacts = [_contact(key) for key in CONTACTS]
    events = [dict(event) for event in HISTORY]
    store_history(workspace=segments_workspace, contacts=contacts, events=events)
    ids = {contact["key"]: contact["id"] for contact in contacts}
    # when
    matched = set(
        segment_matching_contacts(
            workspace_id=segments_workspace.pk, tree=tree, timezone_name="UTC", now=NOW
        ).values_list("pk", flat=True)
    )
    subset = [ids["none"], ids["old"], ids["tie"]]
    matched_subset = set(
        segment_matching_contacts(
            workspace_id=segments_workspace.pk, tree=tree, timezone_name="UTC", now=NOW, contact_ids=subset
        ).values_list("pk", flat=True)
    )
    # then
    assert {key for key, pk in ids.items() if pk in matched} == expected
    oracle = matching_contact_ids(tree, contacts=contacts, events=events, now=NOW, timezone_name="UTC")
    assert matched == oracle
    assert matched_subset == matched & set(subset)
    count = segment_match_count(workspace_id=segments_workspace.pk, tree=tree, timezone_name="UTC", now=NOW)
    assert count == len(expected)
