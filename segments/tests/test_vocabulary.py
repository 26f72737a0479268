"""The rule vocabulary: one set of words, used by every concern and every page that shows a condition."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import pytest
from django.template.loader import get_template
from django.test import Client
from django.utils.text import capfirst

from contacts.services import events_upsert
from events_platform.workspaces.models import Workspace
from segments import builder, explain, rules, services
from segments.api import schema
from segments.rules import compile as compilation
from segments.rules import validation, vocabulary
from segments.tests.api_helpers import CaptureOnCommit, purchase
from segments.tests.trees import all_of, any_of, contact_leaf, event_leaf, goal_leaf, segment_leaf


def test_every_concern_handles_every_source() -> None:
    """Adding a source to the vocabulary fails here until validation, compilation, words, builder
    controls and template, explain and the OpenAPI schema all handle it."""
    # given
    sources = set(vocabulary.SOURCES)
    # when
    tables: dict[str, Iterable[str]] = {
        "validation": validation.VALIDATORS,
        "compile": compilation.COMPILERS,
        "describe": vocabulary.LEAF_PHRASES,
        "builder": builder.LEAF_CONTROLS,
        "explain": explain.PROBES,
        "schema": schema.CONDITIONS,
    }
    # then
    assert {name: set(table) for name, table in tables.items()} == dict.fromkeys(tables, sources)
    for source in sources:
        assert get_template(f"segments/_leaf_{source}.html")


def test_every_operator_a_field_takes_has_words() -> None:
    """Each contact field's operators are known words, and the builder offers exactly the vocabulary's choices."""
    # given / when / then
    for field in vocabulary.CONTACT_FIELDS.values():
        assert set(field.operators) <= set(vocabulary.CONTACT_OPERATORS_BY_NAME)
    assert [name for name, _ in builder.COMPARISON_CHOICES] == list(rules.COMPARISON_OPERATORS)
    assert dict(builder.TIMEFRAME_CHOICES)["in_the_last_days"] == vocabulary.TIMEFRAMES["in_the_last_days"].label
    assert dict(builder.AGGREGATE_CHOICES)["sum"] == "Total value"


@pytest.mark.parametrize(
    ("node", "words"),
    [
        (goal_leaf("sum", "gte", 1000), "total value of purchase events is at least 1,000.00"),
        (goal_leaf("count", "gte", 1000), "number of purchase events is at least 1,000"),
        (
            goal_leaf("avg", "between", 9.5, value_2=1234567, timeframe="in_the_last_days", days=1),
            "average value of purchase events in the last 1 day is between 9.50 and 1,234,567.00",
        ),
        (
            goal_leaf("max", "lt", -20, goal_type="*", goal_name="Order", event_name="order.completed"),
            "largest value of goal events (goal name “Order”, event order.completed) is less than -20.00",
        ),
        (
            goal_leaf("first", "neq", 5, timeframe="in_date_range", timeframe_values=["2026-01-01", "2026-01-31"]),
            "first value of purchase events between 2026-01-01 and 2026-01-31 is not 5.00",
        ),
        (
            event_leaf("page.viewed", "at_least", 2500, timeframe="more_than_days_ago", values=["30"]),
            "did page.viewed at least 2,500 times more than 30 days ago",
        ),
        (
            event_leaf(
                "order.completed",
                "exactly",
                1,
                properties=[
                    {"key": "currency", "operator": "equals", "value": "5"},
                    {"key": "qty", "operator": "not_equals", "value": 5},
                ],
            ),
            "did order.completed (where currency is “5” and qty is not 5) exactly once",
        ),
        (contact_leaf("email", "contains", "@shop.io"), "contact email contains “@shop.io”"),
        (contact_leaf("first_name", "is_not_set"), "contact first name is not set"),
        (contact_leaf("created_at", "in_the_last_days", 7), "contact creation date is in the last 7 days"),
        (contact_leaf("properties.age", "gte", 18000), "contact property age is at least 18,000"),
        (
            contact_leaf("properties.trial_ends", "before", "2026-04-01"),
            "contact property trial_ends is before 2026-04-01",
        ),
        (segment_leaf("vip", "not_in_segment"), "not in segment “VIP customers”"),
        (segment_leaf("gone"), "in segment gone"),
        (
            any_of(contact_leaf("email", "is_set"), goal_leaf("count", "eq", 0), negate=True),
            "not: any of (contact email is set; number of purchase events is exactly 0)",
        ),
    ],
)
def test_describe_says_a_condition_in_plain_words(node: dict[str, Any], words: str) -> None:
    """Short comparisons, thousands separators, money with cents, texts in quotes, segments by name
    when known (by slug otherwise), groups and negation spelled out."""
    # given
    valid = rules.validate_tree(node)
    # when
    said = rules.describe(valid, segment_names={"vip": "VIP customers"})
    # then
    assert said == words


def test_the_schema_lists_the_vocabulary(db: None) -> None:
    """The OpenAPI schema documents a rule tree with the vocabulary's enums, referenced by every tree field."""
    # when
    document = Client().get("/api/schema/", {"format": "json"}).json()
    # then
    components = document["components"]["schemas"]

    def enum(component: str, field: str) -> list[str]:
        prop = components[component]["properties"][field]
        if "enum" not in prop:
            prop = components[(prop.get("$ref") or prop["allOf"][0]["$ref"]).rsplit("/", 1)[1]]
        return prop["enum"]

    assert enum("RuleGoalCondition", "operator") == list(rules.COMPARISON_OPERATORS)
    assert enum("RuleGoalCondition", "aggregate_operator") == list(rules.AGGREGATE_OPERATORS)
    assert enum("RuleGoalCondition", "timeframe_operator") == list(rules.TIMEFRAME_OPERATORS)
    assert enum("RuleGoalCondition", "goal_type") == list(vocabulary.GOAL_TYPES)
    assert enum("RuleEventCondition", "count_operator") == list(rules.COUNT_OPERATORS)
    assert enum("RuleContactCondition", "operator") == list(rules.CONTACT_OPERATORS)
    assert enum("RuleSegmentCondition", "operator") == list(rules.SEGMENT_OPERATORS)
    assert enum("RuleLeaf", "source") == list(vocabulary.SOURCES)
    assert (
        "`in_date_range`: 2 (date)" in components["RuleGoalCondition"]["properties"]["timeframe_values"]["description"]
    )
    for serializer in ("SegmentCreateInputRequest", "SegmentPreviewInputRequest", "SegmentOutput"):
        assert components[serializer]["properties"]["tree"] == {"$ref": "#/components/schemas/RuleNode"}


def test_builder_segment_page_and_explain_say_each_condition_the_same_way(
    member_client: Client, workspace: Workspace, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """The same condition reads the same on the builder, the segment page and the explanation."""
    # given a segment with a condition of every source, one of them negated
    events_upsert(workspace_id=workspace.id, events=[purchase("ann@example.com", "o1", "1250.50")])
    conditions = [
        goal_leaf("sum", "gte", 1000, timeframe="in_the_last_days", days=60),
        event_leaf(
            "order.completed", "at_least", 2, properties=[{"key": "currency", "operator": "equals", "value": "USD"}]
        ),
        contact_leaf("properties.country", "equals", "FR", negate=True),
        segment_leaf("base"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        services.segment_create(workspace_id=workspace.id, slug="base", name="Big spenders", tree=all_of(conditions[0]))
        services.segment_create(workspace_id=workspace.id, slug="mixed", name="Mixed", tree=all_of(*conditions))
    words = [
        capfirst(rules.describe(rules.validate_tree(c), segment_names={"base": "Big spenders"})) for c in conditions
    ]

    # when
    edit = html.unescape(member_client.get("/segments/mixed/edit/").content.decode())
    page = html.unescape(member_client.get("/segments/mixed/").content.decode())
    explained = html.unescape(
        member_client.get(
            "/segments/mixed/?email=ann@example.com", headers={"HX-Request": "true", "HX-Target": "explain"}
        ).content.decode()
    )

    # then
    assert words[0] == "Total value of purchase events in the last 60 days is at least 1,000.00"
    assert words[2] == "Not: contact property country is “FR”"
    assert words[3] == "In segment “Big spenders”"
    for said in words:
        assert said in edit and said in page and said in explained, said
