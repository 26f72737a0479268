"""validate_tree: every problem is reported at the full dotted path of the offending field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from segments.rules import (
    MAX_DEPTH,
    MAX_LEAVES,
    TEMPLATES,
    TreeValidationError,
    has_relative_timeframe,
    referenced_segments,
    validate_tree,
)
from segments.tests.trees import branch, leaf


def goal(**overrides: Any) -> dict[str, Any]:
    body = {
        "goal_type": "purchase",
        "aggregate_operator": "sum",
        "operator": "gte",
        "value": 100,
        "timeframe_operator": "anytime",
        "timeframe_values": [],
    } | overrides
    return leaf("custom_events_goals", "custom_events_goal", body)


def event(**overrides: Any) -> dict[str, Any]:
    body = {"event_name": "order.completed", "count_operator": "at_least", "count_value": 1} | overrides
    return leaf("custom_events", "custom_event", body)


def contact(**overrides: Any) -> dict[str, Any]:
    body = {"field": "email", "operator": "contains", "value": "@acme.com"} | overrides
    return leaf("contacts", "contact", body)


def segment(**overrides: Any) -> dict[str, Any]:
    body = {"segment_id": "vip", "operator": "in_segment"} | overrides
    return leaf("segment", "segment", body)


def both(*nodes: Any, operator: str = "and") -> dict[str, Any]:  # Any: some tests pass a bad node
    return branch(operator, *nodes)


def errors_of(tree: Any) -> dict[str, list[str]]:
    with pytest.raises(TreeValidationError) as caught:
        validate_tree(tree)
    return caught.value.errors


GOAL = "tree.branch.leaves[1].leaf.custom_events_goal"
INVALID_TREES = [
    (both(goal(), goal(operator="between", value=100, value_2=50)), f"{GOAL}.value_2"),
    (both(goal(), goal(operator="between", value=100)), f"{GOAL}.value_2"),
    (both(goal(), goal(goal_type="refund")), f"{GOAL}.goal_type"),
    (both(goal(), goal(aggregate_operator="median")), f"{GOAL}.aggregate_operator"),
    (both(goal(), goal(operator="like")), f"{GOAL}.operator"),
    (both(goal(), goal(value="lots")), f"{GOAL}.value"),
    (both(goal(), goal(value=10.001)), f"{GOAL}.value"),
    (both(goal(), goal(value=True)), f"{GOAL}.value"),
    (both(goal(), goal(aggregate_operator="count", value=1.5)), f"{GOAL}.value"),
    (both(goal(), goal(event_name="Not Valid")), f"{GOAL}.event_name"),
    (both(goal(), goal(goal_name="")), f"{GOAL}.goal_name"),
    (both(goal(), goal(colour="red")), f"{GOAL}.colour"),
    (both(goal(), goal(timeframe_operator="yesterday")), f"{GOAL}.timeframe_operator"),
    (
        both(goal(), goal(timeframe_operator="in_the_last_days", timeframe_values=["0"])),
        f"{GOAL}.timeframe_values[0]",
    ),
    (
        both(goal(), goal(timeframe_operator="in_the_last_days", timeframe_values=["soon"])),
        f"{GOAL}.timeframe_values[0]",
    ),
    (both(goal(), goal(timeframe_operator="in_the_last_days", timeframe_values=[])), f"{GOAL}.timeframe_values"),
    (
        both(goal(), goal(timeframe_operator="in_date_range", timeframe_values=["2026-03-31", "2026-01-01"])),
        f"{GOAL}.timeframe_values[1]",
    ),
    (
        both(goal(), goal(timeframe_operator="before_date", timeframe_values=["2026-02-30"])),
        f"{GOAL}.timeframe_values[0]",
    ),
    (
        both(goal(), goal(timeframe_operator="after_date", timeframe_values=["2026-01-01T10:00:00"])),
        f"{GOAL}.timeframe_values[0]",
    ),
    (both(goal(), event(event_name="")), "tree.branch.leaves[1].leaf.custom_event.event_name"),
    (both(goal(), event(count_value=-1)), "tree.branch.leaves[1].leaf.custom_event.count_value"),
    (both(goal(), event(count_operator="some")), "tree.branch.leaves[1].leaf.custom_event.count_operator"),
    (
        both(goal(), event(properties=[{"key": "currency", "operator": "equals", "value": "USD"}, {"key": "1x"}])),
        "tree.branch.leaves[1].leaf.custom_event.properties[1].key",
    ),
    (
        event(properties=[{"key": "currency", "operator": "equals"}]),
        "tree.leaf.custom_event.properties[0].value",
    ),
    (
        event(properties=[{"key": "currency", "operator": "equals", "value": {"a": 1}}]),
        "tree.leaf.custom_event.properties[0].value",
    ),
    (contact(field="phone"), "tree.leaf.contact.field"),
    (contact(field="properties.a.b"), "tree.leaf.contact.field"),
    (contact(field="created_at", operator="contains"), "tree.leaf.contact.operator"),
    (contact(field="email", operator="gt", value=3), "tree.leaf.contact.operator"),
    (contact(field="created_at", operator="before", value="last week"), "tree.leaf.contact.value"),
    (contact(field="properties.age", operator="gt", value="old"), "tree.leaf.contact.value"),
    (contact(field="properties.trial_ends_at", operator="before", value="next week"), "tree.leaf.contact.value"),
    (contact(field="properties.trial_ends_at", operator="after", value="2026-02-30"), "tree.leaf.contact.value"),
    (contact(field="properties.trial_ends_at", operator="after", value=20260301), "tree.leaf.contact.value"),
    (contact(field="properties.signed_up_on", operator="in_the_last_days", value=0), "tree.leaf.contact.value"),
    (contact(field="properties.signed_up_on", operator="in_the_last_days", value=2.5), "tree.leaf.contact.value"),
    (contact(field="properties.signed_up_on", operator="in_the_last_days"), "tree.leaf.contact.value"),
    (contact(operator="equals", value=None), "tree.leaf.contact.value"),
    (segment(segment_id="Not-A-Slug"), "tree.leaf.segment.segment_id"),
    (segment(operator="maybe"), "tree.leaf.segment.operator"),
    ({"kind": "leaf", "leaf": {"source": "orders"}}, "tree.leaf.source"),
    ({"kind": "leaf", "leaf": {"source": "segment"}}, "tree.leaf.segment"),
    ({"kind": "leaf"}, "tree.leaf"),
    ({"kind": "twig"}, "tree.kind"),
    ({"kind": "branch", "branch": {"operator": "xor", "leaves": [goal()]}}, "tree.branch.operator"),
    ({"kind": "branch", "branch": {"operator": "and", "leaves": []}}, "tree.branch.leaves"),
    (both(goal(), "leaf"), "tree.branch.leaves[1]"),
    ({**goal(), "negate": "yes"}, "tree.negate"),
    ("not a tree", "tree"),
    (
        both(both(goal(), both(goal(), goal(value=-1.234)))),
        "tree.branch.leaves[0].branch.leaves[1].branch.leaves[1].leaf.custom_events_goal.value",
    ),
]


@pytest.mark.parametrize(("tree", "path"), INVALID_TREES)
def test_invalid_input_is_reported_at_its_full_path(tree: Any, path: str) -> None:
    """Each invalid field is named by its full dotted path from ``tree``, with a message."""
    # given / when
    errors = errors_of(tree)

    # then
    assert path in errors, errors
    assert all(errors[path])


def test_all_errors_are_collected() -> None:
    """Several mistakes in different leaves are all reported in one go."""
    # given
    tree = both(goal(value="x"), event(count_value=-1), contact(field="phone"), operator="or")

    # when
    errors = errors_of(tree)

    # then
    assert set(errors) == {
        "tree.branch.leaves[0].leaf.custom_events_goal.value",
        "tree.branch.leaves[1].leaf.custom_event.count_value",
        "tree.branch.leaves[2].leaf.contact.field",
    }


def test_depth_and_size_are_capped() -> None:
    """Trees deeper than MAX_DEPTH or with more than MAX_LEAVES conditions are refused with a clear message."""
    # given
    deep = goal()
    for _ in range(MAX_DEPTH):
        deep = both(deep)
    wide = both(*[goal() for _ in range(MAX_LEAVES + 1)])

    # when
    deep_errors = errors_of(deep)
    wide_errors = errors_of(wide)

    # then
    assert any("Too deeply nested" in m for messages in deep_errors.values() for m in messages)
    assert "Too many conditions" in wide_errors["tree"][0]


def test_valid_tree_is_normalised() -> None:
    """Days become strings, stray value_2 and null members are dropped, emails are lower-cased."""
    # given
    tree = {
        "kind": "branch",
        "leaf": None,
        "negate": False,
        "branch": {
            "operator": "and",
            "leaves": [
                goal(value="100.50", value_2=7, timeframe_operator="in_the_last_days", timeframe_values=[30]),
                contact(field="email", operator="equals", value=" Ann@Example.COM "),
            ],
        },
    }

    # when
    normalised = validate_tree(tree)

    # then
    assert normalised == {
        "kind": "branch",
        "branch": {
            "operator": "and",
            "leaves": [
                goal(value=100.5, timeframe_operator="in_the_last_days", timeframe_values=["30"]),
                contact(field="email", operator="equals", value="ann@example.com"),
            ],
        },
    }
    assert validate_tree(copy.deepcopy(normalised)) == normalised


def test_tree_facts() -> None:
    """Referenced segments and relative timeframes are read from anywhere in the tree."""
    # given
    tree = validate_tree(
        both(segment(segment_id="vip"), both(segment(segment_id="churned", operator="not_in_segment"), goal()))
    )
    rolling = validate_tree(both(goal(), contact(field="created_at", operator="in_the_last_days", value=7)))

    # when / then
    assert referenced_segments(tree) == {"vip", "churned"}
    assert has_relative_timeframe(tree) is False
    assert has_relative_timeframe(rolling) is True
    assert [has_relative_timeframe(validate_tree(t["tree"])) for t in TEMPLATES.values()] == [True, True, True]


def test_contact_property_date_operators_validate_like_created_at() -> None:
    """A property's before/after take a date or an RFC 3339 instant and in_the_last_days whole days;
    a rolling window on a property makes the segment time-dependent, like one on created_at."""
    # given
    tree = both(
        contact(field="properties.trial_ends_at", operator="before", value=" 2026-03-01 "),
        contact(field="properties.trial_ends_at", operator="after", value="2026-03-01T10:00:00+02:00"),
        contact(field="properties.signed_up_on", operator="in_the_last_days", value="30"),
    )

    # when
    normalised = validate_tree(tree)

    # then
    assert [leaf["leaf"]["contact"]["value"] for leaf in normalised["branch"]["leaves"]] == [
        "2026-03-01",
        "2026-03-01T10:00:00+02:00",
        30,
    ]
    assert has_relative_timeframe(normalised) is True
    assert has_relative_timeframe(validate_tree(both(*normalised["branch"]["leaves"][:2]))) is False


def test_error_is_a_django_validation_error() -> None:
    """The error's message_dict is the path map, so the API's error handler shows it as details."""
    # given / when
    with pytest.raises(TreeValidationError) as caught:
        validate_tree(both(goal(operator="between", value=2, value_2=1)))

    # then
    assert caught.value.message_dict == {
        "tree.branch.leaves[0].leaf.custom_events_goal.value_2": ["Must be greater than or equal to value."]
    }
