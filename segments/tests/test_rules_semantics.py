"""Pinned semantics at the edges: timeframe boundaries, ties, missing values, NULL-safe negation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from contacts.models import Contact
from events_platform.workspaces.models import Workspace
from segments.rules import TreeValidationError, validate_tree
from segments.selectors import segment_explain, segment_matching_contacts
from segments.services import segment_create
from segments.tests.conftest import store_history
from segments.tests.trees import all_of, contact_leaf, contact_row, event_leaf, event_row, goal_leaf

NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)
UTC = dt.UTC


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _contact(key: Any) -> dict[str, Any]:
    return contact_row(key, created_at=_at("2025-01-01T00:00:00+00:00"))


def _matching_keys(workspace: Workspace, contacts: list[dict[str, Any]], tree: dict[str, Any], tz: str) -> set[Any]:
    ids = set(
        segment_matching_contacts(workspace_id=workspace.pk, tree=tree, timezone_name=tz, now=NOW).values_list(
            "pk", flat=True
        )
    )
    return {contact["key"] for contact in contacts if contact["id"] in ids}


def _did_order(timeframe_operator: str, values: list[str]) -> dict[str, Any]:
    return event_leaf("order", timeframe=timeframe_operator, values=values)


# Europe/Paris is UTC+1 in February and March 2026 (before the switch to summer time on 29 March).
TIMEFRAME_CASES = [
    (
        "after_date",
        ["2026-02-14"],
        {
            "2026-02-14T11:00:00+00:00": False,  # during the day itself
            "2026-02-14T22:59:59+00:00": False,  # last second of 14 February in Paris
            "2026-02-14T23:00:00+00:00": True,  # 00:00 on 15 February in Paris
        },
    ),
    (
        "before_date",
        ["2026-02-14"],
        {
            "2026-02-13T22:59:59+00:00": True,
            "2026-02-13T23:00:00+00:00": False,  # 00:00 on 14 February in Paris
            "2026-02-14T11:00:00+00:00": False,
        },
    ),
    (
        "in_date_range",
        ["2026-02-14", "2026-02-14"],
        {
            "2026-02-13T22:59:59+00:00": False,
            "2026-02-13T23:00:00+00:00": True,
            "2026-02-14T22:59:59+00:00": True,  # the end date includes its whole day
            "2026-02-14T23:00:00+00:00": False,
        },
    ),
    (
        "in_date_range",
        ["2026-02-01T12:00:00Z", "2026-03-10T08:30:00-05:00"],
        {
            "2026-02-01T11:59:59+00:00": False,
            "2026-02-01T12:00:00+00:00": True,  # instants are inclusive at both ends
            "2026-03-10T13:30:00+00:00": True,
            "2026-03-10T13:30:01+00:00": False,
        },
    ),
    (
        "after_date",
        ["2026-02-01T12:00:00Z"],
        {"2026-02-01T12:00:00+00:00": False, "2026-02-01T12:00:01+00:00": True},  # strictly after
    ),
    (
        "before_date",
        ["2026-02-01T12:00:00Z"],
        {"2026-02-01T11:59:59+00:00": True, "2026-02-01T12:00:00+00:00": False},  # strictly before
    ),
    (
        "in_the_last_days",
        ["30"],
        {"2026-02-13T11:59:59+00:00": False, "2026-02-13T12:00:00+00:00": True, "2026-04-01T00:00:00+00:00": True},
    ),
    (
        "more_than_days_ago",
        ["30"],
        {"2026-02-13T11:59:59+00:00": True, "2026-02-13T12:00:00+00:00": False},
    ),
]


@pytest.mark.parametrize(("operator", "values", "expected_by_instant"), TIMEFRAME_CASES)
def test_timeframe_edges(
    segments_workspace: Workspace, operator: str, values: list[str], expected_by_instant: dict[str, bool]
) -> None:
    """Each timeframe cuts exactly where the rules docstring says, with date-only values in the segment's timezone."""
    # given: one contact per instant, each with one order then
    contacts = [_contact(instant) for instant in expected_by_instant]
    events = [event_row(instant, _at(instant)) for instant in expected_by_instant]
    store_history(workspace=segments_workspace, contacts=contacts, events=events)

    # when
    matched = _matching_keys(segments_workspace, contacts, _did_order(operator, values), "Europe/Paris")

    # then
    assert matched == {instant for instant, expected in expected_by_instant.items() if expected}


def _goal_leaf(aggregate: str, operator: str, value: Any, **fields: Any) -> dict[str, Any]:
    """A goal leaf over any goal type."""
    return goal_leaf(aggregate, operator, value, goal_type="*", **fields)


def test_first_and_last_break_ties_by_id(segments_workspace: Workspace) -> None:
    """Two purchases at the same instant: the earlier-stored one is first, the later-stored one is last."""
    # given
    moment = _at("2026-03-01T10:00:00+00:00")
    contacts = [_contact("tie")]
    events = [
        event_row("tie", moment, goal_type="purchase", goal_value=Decimal("10.00")),
        event_row("tie", moment, goal_type="purchase", goal_value=Decimal("20.00")),
    ]
    store_history(workspace=segments_workspace, contacts=contacts, events=events)
    assert events[0]["id"] < events[1]["id"]

    # when
    first_is_10 = _matching_keys(segments_workspace, contacts, _goal_leaf("first", "eq", 10), "UTC")
    last_is_20 = _matching_keys(segments_workspace, contacts, _goal_leaf("last", "eq", 20), "UTC")

    # then
    assert first_is_10 == {"tie"}
    assert last_is_20 == {"tie"}


def test_contacts_without_events_and_negation(segments_workspace: Workspace) -> None:
    """With no qualifying events, sum and count are 0 but max has no value; NOT is the exact complement."""
    # given: one buyer, one contact with nothing
    contacts = [_contact("buyer"), _contact("idle")]
    events = [event_row("buyer", NOW - dt.timedelta(days=1), goal_type="purchase", goal_value=Decimal("5.00"))]
    store_history(workspace=segments_workspace, contacts=contacts, events=events)

    # when / then
    assert _matching_keys(segments_workspace, contacts, _goal_leaf("count", "eq", 0), "UTC") == {"idle"}
    assert _matching_keys(segments_workspace, contacts, _goal_leaf("sum", "lt", 1), "UTC") == {"idle"}
    assert _matching_keys(segments_workspace, contacts, _goal_leaf("max", "lt", 100), "UTC") == {"buyer"}
    assert _matching_keys(segments_workspace, contacts, _goal_leaf("max", "lt", 100, negate=True), "UTC") == {"idle"}
    assert _matching_keys(segments_workspace, contacts, _goal_leaf("avg", "neq", 1, negate=True), "UTC") == {"idle"}


def test_goal_without_value_counts_as_zero(segments_workspace: Workspace) -> None:
    """A lead without a value is an event worth 0: it counts, and it pulls the average down."""
    # given
    contacts = [_contact("lead")]
    events = [
        event_row("lead", NOW - dt.timedelta(days=2), goal_type="lead"),
        event_row("lead", NOW - dt.timedelta(days=1), goal_type="lead", goal_value=Decimal("10.00")),
    ]
    store_history(workspace=segments_workspace, contacts=contacts, events=events)

    # when / then
    assert _matching_keys(segments_workspace, contacts, _goal_leaf("count", "eq", 2), "UTC") == {"lead"}
    assert _matching_keys(segments_workspace, contacts, _goal_leaf("avg", "eq", 5), "UTC") == {"lead"}
    assert _matching_keys(segments_workspace, contacts, _goal_leaf("min", "eq", 0), "UTC") == {"lead"}


EXACT_CASES = [
    # An average of 10/3 is above 3.33 and below 3.34, with no rounding in between.
    pytest.param(
        "thirds",
        ("3.33", "3.33", "3.34"),
        [("avg", "gt", 3.33), ("avg", "lt", 3.34), ("sum", "eq", 10)],
        id="avg_is_compared_exactly",
    ),
    # 0.10 + 0.20 equals 0.30 exactly on every database (SQLite stores decimals as floats).
    pytest.param("cents", ("0.10", "0.20"), [("sum", "eq", 0.3)], id="decimal_sums_are_exact"),
]


@pytest.mark.parametrize(("key", "values", "conditions"), EXACT_CASES)
def test_aggregates_are_exact(
    segments_workspace: Workspace, key: str, values: tuple[str, ...], conditions: list[tuple[str, str, float]]
) -> None:
    """One contact's purchases worth ``values`` (a day ago, two days ago, ...): each of the
    conditions holds for it, with no rounding in between."""
    # given
    contacts = [_contact(key)]
    events = [
        event_row(key, NOW - dt.timedelta(days=d), goal_type="purchase", goal_value=Decimal(v))
        for d, v in enumerate(values, start=1)
    ]
    store_history(workspace=segments_workspace, contacts=contacts, events=events)

    # when / then
    for aggregate, operator, value in conditions:
        leaf = _goal_leaf(aggregate, operator, value)
        assert _matching_keys(segments_workspace, contacts, leaf, "UTC") == {key}, (aggregate, operator, value)


PROPERTY_VALUES: dict[str, Any] = {
    "text_pro": "Pro plan",
    "text_five": "5",
    "number_five": 5,
    "float_five": 5.0,
    "number_half": 2.5,
    "true": True,
    "json_null": None,
    "empty_text": "",
}

PROPERTY_CASES = [
    ("is_set", None, {"text_pro", "text_five", "number_five", "float_five", "number_half", "true", "empty_text"}),
    ("is_not_set", None, {"json_null", "missing"}),
    ("equals", 5, {"number_five", "float_five"}),
    ("equals", "5", {"text_five"}),
    ("equals", 1, set()),  # JSON true is not the number 1
    ("not_equals", 5, set(PROPERTY_VALUES) - {"number_five", "float_five"} | {"missing"}),
    ("contains", "PRO", {"text_pro"}),
    ("not_contains", "pro", set(PROPERTY_VALUES) - {"text_pro"} | {"missing"}),
    ("gt", 2.5, {"number_five", "float_five"}),
    ("gte", 2.5, {"number_five", "float_five", "number_half"}),
    ("lt", 5, {"number_half"}),
    ("lte", 1, set()),  # neither JSON true nor the text "5" is a number
]


@pytest.mark.parametrize(("operator", "value", "expected"), PROPERTY_CASES)
def test_contact_property_conditions(
    segments_workspace: Workspace, operator: str, value: Any, expected: set[str]
) -> None:
    """Contact properties compare by JSON type: strings with strings, numbers with numbers, null is unset."""
    # given: one contact per kind of stored value, and one without the key
    contacts = [_contact(key) | {"properties": {"plan": stored}} for key, stored in PROPERTY_VALUES.items()]
    contacts.append(_contact("missing"))
    store_history(workspace=segments_workspace, contacts=contacts, events=[])

    # when
    matched = _matching_keys(segments_workspace, contacts, contact_leaf("properties.plan", operator, value), "UTC")

    # then
    assert matched == expected


def test_event_property_filters(segments_workspace: Workspace) -> None:
    """Event property filters: equals is typed, exists ignores JSON null, not_equals includes a missing key."""
    # given
    when = NOW - dt.timedelta(days=1)
    contacts = [_contact(key) for key in ("usd", "five_text", "null", "none")]
    events = [
        event_row("usd", when, properties={"currency": "USD"}),
        event_row("five_text", when, properties={"currency": "5"}),
        event_row("null", when, properties={"currency": None}),
        event_row("none", when, properties={}),
    ]
    store_history(workspace=segments_workspace, contacts=contacts, events=events)

    def ordered_with(*filters: dict[str, Any]) -> set[Any]:
        tree = _did_order("anytime", [])
        tree["leaf"]["custom_event"]["properties"] = list(filters)
        return _matching_keys(segments_workspace, contacts, tree, "UTC")

    # when / then
    assert ordered_with({"key": "currency", "operator": "equals", "value": "USD"}) == {"usd"}
    assert ordered_with({"key": "currency", "operator": "equals", "value": 5}) == set()
    assert ordered_with({"key": "currency", "operator": "exists"}) == {"usd", "five_text"}
    assert ordered_with({"key": "currency", "operator": "not_equals", "value": "USD"}) == {"five_text", "null", "none"}


TEXT_CASES = [
    ("first_name", "is_set", None, {"ann"}),
    ("first_name", "is_not_set", None, {"blank"}),
    ("first_name", "equals", "Ann", {"ann"}),
    ("first_name", "equals", "ann", set()),
    ("first_name", "not_equals", "Ann", {"blank"}),
    ("first_name", "contains", "NN", {"ann"}),
    ("first_name", "not_contains", "nn", {"blank"}),
    ("email", "equals", " ANN@example.test", {"ann"}),
]


@pytest.mark.parametrize(("field", "operator", "value", "expected"), TEXT_CASES)
def test_contact_text_conditions(
    segments_workspace: Workspace, field: str, operator: str, value: Any, expected: set[str]
) -> None:
    """Text fields: set means non-empty, equals is exact (emails lower-cased first), contains ignores case."""
    # given
    contacts = [_contact("ann") | {"first_name": "Ann"}, _contact("blank")]
    store_history(workspace=segments_workspace, contacts=contacts, events=[])

    # when
    matched = _matching_keys(segments_workspace, contacts, contact_leaf(field, operator, value), "UTC")

    # then
    assert matched == expected


def test_contact_created_at_conditions(segments_workspace: Workspace) -> None:
    """created_at takes before/after (whole days in the segment's timezone) and in_the_last_days."""
    # given: created at 00:30 on 14 February in Paris, and 10 days before NOW
    contacts = [
        _contact("valentine") | {"created_at": _at("2026-02-13T23:30:00+00:00")},
        _contact("recent") | {"created_at": NOW - dt.timedelta(days=10)},
    ]
    store_history(workspace=segments_workspace, contacts=contacts, events=[])

    def matched(operator: str, value: Any, tz: str) -> set[Any]:
        return _matching_keys(segments_workspace, contacts, contact_leaf("created_at", operator, value), tz)

    # when / then
    assert matched("before", "2026-02-14", "Europe/Paris") == set()
    assert matched("before", "2026-02-14", "UTC") == {"valentine"}
    assert matched("after", "2026-02-13", "Europe/Paris") == {"valentine", "recent"}
    assert matched("after", "2026-02-13", "UTC") == {"recent"}
    assert matched("in_the_last_days", 20, "UTC") == {"recent"}


# One contact per stored ``since`` value; the instant each holds, if any.
INSTANT_PROPERTY_VALUES: dict[str, Any] = {
    "date": "2026-03-14",  # midnight UTC
    "minutes_at_noon": "2026-03-14T12:00",
    "z_at_noon": "2026-03-14T12:00:00Z",
    "micro_before_noon": "2026-03-14T11:59:59.999999+00:00",
    "tenth_after_noon": "2026-03-14T12:00:00.1",
    "leap_day": "2024-02-29",
    "paris_offset": "2026-03-14T13:00:00+01:00",
    "impossible_day": "2026-02-30",
    "not_a_leap_year": "2026-02-29T00:00:00Z",
    "hour_24": "2026-03-14T24:00:00Z",
    "lower_case": "2026-03-14t11:00:00z",
    "space": "2026-03-14 11:00:00",
    "date_with_z": "2026-03-14Z",
    "newline": "2026-03-14\n",
    "arabic_digits": "\u0662\u0660\u0662\u0666-03-14",  # digits to Python's \d, not to [0-9]
    "number": 20260314,
    "true": True,
    "json_null": None,
}
NOT_INSTANTS = {
    "paris_offset",
    "impossible_day",
    "not_a_leap_year",
    "hour_24",
    "lower_case",
    "space",
    "date_with_z",
    "newline",
    "arabic_digits",
    "number",
    "true",
    "json_null",
    "missing",
}
INSTANTS_BEFORE_NOON = {"date", "micro_before_noon", "leap_day"}
INSTANTS_AT_NOON = {"minutes_at_noon", "z_at_noon"}

INSTANT_PROPERTY_CASES = [
    ("before", "2026-03-14T12:00:00Z", False, INSTANTS_BEFORE_NOON),
    ("before", "2026-03-14T13:00:00+01:00", False, INSTANTS_BEFORE_NOON),
    ("after", "2026-03-14T12:00:00Z", False, {"tenth_after_noon"}),
    ("after", "2026-03-14T11:59:59.999999Z", False, INSTANTS_AT_NOON | {"tenth_after_noon"}),
    # Negation is the exact complement: values that hold no instant are "not before".
    ("before", "2026-03-14T12:00:00Z", True, INSTANTS_AT_NOON | {"tenth_after_noon"} | NOT_INSTANTS),
    ("before", "2026-03-14", False, {"leap_day"}),
    ("after", "2026-03-13", False, {"date", "micro_before_noon", "tenth_after_noon"} | INSTANTS_AT_NOON),
    ("after", "2026-03-14", False, set()),
    # NOW - 1 day is 2026-03-14T12:00:00Z: inclusive, and no upper bound.
    ("in_the_last_days", 1, False, INSTANTS_AT_NOON | {"tenth_after_noon"}),
    ("in_the_last_days", 1, True, INSTANTS_BEFORE_NOON | NOT_INSTANTS),
]


@pytest.mark.parametrize(("operator", "value", "negate", "expected"), INSTANT_PROPERTY_CASES)
def test_contact_property_date_conditions(
    segments_workspace: Workspace, operator: str, value: Any, negate: bool, expected: set[str]
) -> None:
    """A property's before/after/in_the_last_days compare the UTC instant of a JSON string date or
    date-time (Z, +00:00 or no suffix) with the created_at boundaries, exactly at the edges; other
    offsets, malformed or impossible dates, other JSON types and a missing key never match."""
    # given
    contacts = [_contact(key) | {"properties": {"since": stored}} for key, stored in INSTANT_PROPERTY_VALUES.items()]
    contacts.append(_contact("missing"))
    store_history(workspace=segments_workspace, contacts=contacts, events=[])
    rule = contact_leaf("properties.since", operator, value) | ({"negate": True} if negate else {})

    # when
    matched = _matching_keys(segments_workspace, contacts, rule, "UTC")

    # then
    assert matched == expected


def test_contact_property_dates_read_rule_dates_in_the_segment_timezone(segments_workspace: Workspace) -> None:
    """A date-only rule value starts at midnight in the segment's timezone; the property's own date
    or date-time is UTC, whatever that timezone."""
    # given: 23:30 UTC on 13 February is 00:30 on the 14th in Paris; "2026-02-14" is midnight UTC
    contacts = [
        _contact("valentine") | {"properties": {"since": "2026-02-13T23:30:00Z"}},
        _contact("utc_midnight") | {"properties": {"since": "2026-02-14"}},
    ]
    store_history(workspace=segments_workspace, contacts=contacts, events=[])

    def matched(operator: str, value: Any, tz: str) -> set[Any]:
        return _matching_keys(segments_workspace, contacts, contact_leaf("properties.since", operator, value), tz)

    # when / then
    assert matched("before", "2026-02-14", "UTC") == {"valentine"}
    assert matched("before", "2026-02-14", "Europe/Paris") == set()
    assert matched("before", "2026-02-14", "America/New_York") == {"valentine", "utc_midnight"}
    assert matched("after", "2026-02-13", "UTC") == {"utc_midnight"}
    assert matched("after", "2026-02-13", "Europe/Paris") == {"valentine", "utc_midnight"}
    assert matched("after", "2026-02-13", "America/New_York") == set()


BAD_PROPERTY_DATA: list[Any] = [
    "9999-99-99",
    "2026-02-30T25:61:61Z",
    "0000-00-00",
    "0000-03-01",
    "2026-03-14T12:00:00+00:00Z",
    "\uff12\uff10\uff12\uff16-03-14",  # full-width digits
    "2026-03-14T12:00:00.",
    "-2026-03-14",
    "x" * 5000,
    "",
    {"date": "2026-03-14"},
    ["2026-03-14"],
    -1,
    1e300,
    False,
]


@pytest.mark.parametrize("operator", ["before", "after", "in_the_last_days"])
def test_contact_property_dates_never_fail_on_bad_data(segments_workspace: Workspace, operator: str) -> None:
    """Whatever a property holds, the date operators run without a database error (no cast of stored
    text): nothing matches, and the negated condition matches every contact."""
    # given
    contacts = [_contact(index) | {"properties": {"since": stored}} for index, stored in enumerate(BAD_PROPERTY_DATA)]
    store_history(workspace=segments_workspace, contacts=contacts, events=[])
    value = 30 if operator == "in_the_last_days" else "2026-03-14"
    rule = contact_leaf("properties.since", operator, value)

    # when
    matched = _matching_keys(segments_workspace, contacts, rule, "Asia/Kolkata")
    unmatched = _matching_keys(segments_workspace, contacts, rule | {"negate": True}, "Asia/Kolkata")

    # then
    assert matched == set()
    assert unmatched == set(range(len(BAD_PROPERTY_DATA)))


def test_explain_shows_a_property_date_and_whether_it_held(segments_workspace: Workspace) -> None:
    """explain gives a date leaf on a property the stored value, the UTC instant it was read as (or
    why it holds none), and whether the leaf held."""
    # given
    stored = {
        "utc": "2026-03-14T09:30Z",
        "offset": "2026-03-14T09:30:00+02:00",
        "number": 5,
        "missing": ...,
    }
    contacts = [
        _contact(key) | ({"properties": {"trial_ends_at": value}} if value is not ... else {})
        for key, value in stored.items()
    ]
    store_history(workspace=segments_workspace, contacts=contacts, events=[])
    segment = segment_create(
        workspace_id=segments_workspace.pk,
        slug="trial_ending",
        name="Trial ending",
        tree=contact_leaf("properties.trial_ends_at", "after", "2026-03-13"),
        timezone_name="Europe/Paris",
    )

    # when
    explained = {
        contact["key"]: segment_explain(segment=segment, contact=Contact.objects.get(pk=contact["id"]), now=NOW)
        for contact in contacts
    }

    # then
    assert {key: (e["conditions"][0]["actual"], e["conditions"][0]["held"]) for key, e in explained.items()} == {
        "utc": ("properties.trial_ends_at = '2026-03-14T09:30Z' (2026-03-14 09:30:00.000000 UTC)", True),
        "offset": ("properties.trial_ends_at = '2026-03-14T09:30:00+02:00' (not a UTC date or date-time)", False),
        "number": ("properties.trial_ends_at is JSON number, not a date", False),
        "missing": ("properties.trial_ends_at is missing", False),
    }
    assert [e["matches"] for e in explained.values()] == [True, False, False, False]


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("after", "9998-12-31", {"last_day"}),
        ("before", "0002-01-01", {"first_day"}),
        ("after", "9998-12-31T23:59:59-01:00", {"last_day"}),
        ("before", "0002-01-01T00:30:00+01:00", {"first_day"}),
    ],
)
def test_contact_property_dates_at_the_ends_of_time(
    segments_workspace: Workspace, operator: str, value: str, expected: set[str]
) -> None:
    """Stored values at the very ends of time still compare against the extreme rule dates allowed."""
    # given
    contacts = [
        _contact("first_day") | {"properties": {"since": "0001-01-01"}},
        _contact("last_day") | {"properties": {"since": "9999-12-31T23:59:59.999999Z"}},
    ]
    store_history(workspace=segments_workspace, contacts=contacts, events=[])

    # when
    matched = _matching_keys(segments_workspace, contacts, contact_leaf("properties.since", operator, value), "UTC")

    # then
    assert matched == expected


@pytest.mark.parametrize("value", ["9999-12-31", "9999-12-31T23:59:59Z", "0001-01-01", "0001-01-01T00:30:00+01:00"])
@pytest.mark.parametrize("field", ["created_at", "properties.since"])
def test_rule_dates_beyond_what_boundaries_can_shift_are_refused_at_their_path(field: str, value: str) -> None:
    """A rule date in year 1 or 9999 would overflow when shifted a day or a timezone: a 400, never a 500."""
    # given
    tree = all_of(contact_leaf(field, "after", value))
    in_range = {"timeframe_operator": "in_date_range", "timeframe_values": ["2026-01-01", value]}
    goal_tree = all_of(_goal_leaf("count", "gte", 1, **in_range))
    # when
    with pytest.raises(TreeValidationError) as contact_error:
        validate_tree(tree)
    with pytest.raises(TreeValidationError) as goal_error:
        validate_tree(goal_tree)
    # then
    assert contact_error.value.errors == {
        "tree.branch.leaves[0].leaf.contact.value": ["Must be a date between the years 2 and 9998."]
    }
    assert "tree.branch.leaves[0].leaf.custom_events_goal.timeframe_values[1]" in goal_error.value.errors
