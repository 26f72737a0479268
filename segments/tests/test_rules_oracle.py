"""Property tests: the compiled SQL matches exactly the contacts the pure-Python oracle matches."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events_platform.workspaces.models import Workspace
from segments.rules import validate_tree
from segments.selectors import segment_match_count, segment_matching_contacts, segment_preview
from segments.tests.conftest import store_history
from segments.tests.oracle import matching_contact_ids

NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)
TIMEZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]
# Small pools, so that events often sit exactly on the edges the rules cut at.
DATES = ["2026-02-14", "2026-03-14"]
INSTANTS = ["2026-02-01T12:00:00Z", "2026-03-10T08:30:00-05:00"]
DAYS = [1, 30]
AMOUNTS = ["-100", "-0.01", "0", "0.01", "10", "99.99", "100", "200", "200.01", "500", "1000"]
GOAL_TYPES = [None, "purchase", "subscription", "lead", "other"]
EVENT_NAMES = ["order", "view"]
SCALARS: list[Any] = ["USD", "usd", "EUR", "", 5, 2.5, "5", True, None]
SEGMENT_SLUGS = ["s1", "s2"]
CONTACT_FIELDS = [
    "email",
    "first_name",
    "external_id",
    "created_at",
    "properties.plan",
    "properties.age",
    "properties.since",
]

# Each example rolls back its rows, so they never meet.
EXAMPLE_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class _Rollback(Exception):
    pass


def _utc_start(text: str) -> dt.datetime:
    if len(text) == 10:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@st.composite
def timeframes(draw: st.DrawFn) -> dict[str, Any]:
    operator = draw(
        st.sampled_from(
            ["anytime", "in_the_last_days", "more_than_days_ago", "before_date", "after_date", "in_date_range"]
        )
    )
    if operator == "anytime":
        values: list[str] = []
    elif operator in ("in_the_last_days", "more_than_days_ago"):
        values = [str(draw(st.sampled_from(DAYS)))]
    elif operator in ("before_date", "after_date"):
        values = [draw(st.sampled_from(DATES + INSTANTS))]
    else:
        moments = sorted(DATES + INSTANTS, key=_utc_start)
        start = draw(st.integers(0, len(moments) - 1))
        end = draw(st.integers(start, len(moments) - 1))
        values = [moments[start], moments[end]]
    return {"timeframe_operator": operator, "timeframe_values": values}


@st.composite
def goal_leaves(draw: st.DrawFn, base: dict[str, str] | None = None) -> dict[str, Any]:
    """A goal leaf; with ``base`` (goal_type and maybe goal_name / event_name) over exactly those events."""
    aggregate = draw(st.sampled_from(["sum", "count", "avg", "min", "max", "first", "last"]))
    operator = draw(st.sampled_from(["gte", "lte", "eq", "between", "gt", "lt", "neq"]))
    if aggregate == "count":
        value: Any = draw(st.integers(0, 4))
        value_2: Any = value + draw(st.integers(0, 3))
    else:
        low, high = sorted(Decimal(a) for a in draw(st.lists(st.sampled_from(AMOUNTS), min_size=2, max_size=2)))
        value, value_2 = float(low), float(high)
    body: dict[str, Any] = {
        "goal_type": draw(st.sampled_from(["*", "purchase", "subscription", "lead", "other"])),
        "aggregate_operator": aggregate,
        "operator": operator,
        "value": value,
        **draw(timeframes()),
    }
    if operator == "between":
        body["value_2"] = value_2
    if base is not None:
        return {"source": "custom_events_goals", "custom_events_goal": body | base}
    if draw(st.booleans()) and draw(st.booleans()):
        body["goal_name"] = draw(st.sampled_from(["a", "b"]))
    if draw(st.booleans()) and draw(st.booleans()):
        body["event_name"] = draw(st.sampled_from(EVENT_NAMES))
    return {"source": "custom_events_goals", "custom_events_goal": body}


@st.composite
def goal_bases(draw: st.DrawFn) -> dict[str, str]:
    base = {"goal_type": draw(st.sampled_from(["*", "purchase", "purchase", "lead"]))}
    if draw(st.integers(0, 3)) == 0:
        base["goal_name"] = draw(st.sampled_from(["a", "b"]))
    if draw(st.integers(0, 3)) == 0:
        base["event_name"] = draw(st.sampled_from(EVENT_NAMES))
    return base


@st.composite
def fused_groups(draw: st.DrawFn, others: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A branch whose goal leaves share their events (the fused path): two to four of them, some
    in a nested same-base branch, negated or not, maybe beside other conditions, in any order."""
    base = draw(goal_bases())
    same_base = leaf_nodes(goal_leaves(base))
    members = draw(st.lists(same_base | branch_nodes(same_base), min_size=2, max_size=4))
    children = draw(st.permutations(members + draw(st.lists(others, max_size=2))))
    operator = draw(st.sampled_from(["and", "and", "or"]))
    return _node(draw, {"kind": "branch", "branch": {"operator": operator, "leaves": children}})


@st.composite
def custom_event_leaves(draw: st.DrawFn) -> dict[str, Any]:
    filters = []
    for _ in range(draw(st.integers(0, 2))):
        operator = draw(st.sampled_from(["equals", "not_equals", "exists"]))
        item: dict[str, Any] = {"key": draw(st.sampled_from(["currency", "n"])), "operator": operator}
        if operator != "exists":
            item["value"] = draw(st.sampled_from(["USD", "EUR", 5, 2.5, "5"]))
        filters.append(item)
    body: dict[str, Any] = {
        "event_name": draw(st.sampled_from(EVENT_NAMES)),
        "count_operator": draw(st.sampled_from(["at_least", "at_most", "exactly"])),
        "count_value": draw(st.integers(0, 3)),
        **draw(timeframes()),
    }
    if filters:
        body["properties"] = filters
    return {"source": "custom_events", "custom_event": body}


@st.composite
def contact_leaves(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from(CONTACT_FIELDS))
    if field == "created_at" or (field == "properties.since" and draw(st.integers(0, 5)) > 0):
        operator = draw(st.sampled_from(["before", "after", "in_the_last_days"]))
        value: Any = (
            draw(st.sampled_from(DAYS)) if operator == "in_the_last_days" else draw(st.sampled_from(DATES + INSTANTS))
        )
    elif field.startswith("properties."):
        operator = draw(
            st.sampled_from(
                ["equals", "not_equals", "contains", "not_contains", "is_set", "is_not_set", "gt", "gte", "lt", "lte"]
            )
        )
        if operator in ("gt", "gte", "lt", "lte"):
            value = draw(st.sampled_from([0, 5, 2.5, 30, 30.5]))
        elif operator in ("contains", "not_contains"):
            value = draw(st.sampled_from(["pro", "PRO", "e", "x"]))
        else:
            value = draw(st.sampled_from(["pro", "Pro", "free", "", 30, 30.5, "30"]))
    else:
        operator = draw(st.sampled_from(["equals", "not_equals", "contains", "not_contains", "is_set", "is_not_set"]))
        value = draw(st.sampled_from(["ann", "Ann", "x1", "c0@example.test", "C1@Example.test", "", "n"]))
        if operator in ("contains", "not_contains") and value == "":
            value = "a"
    body: dict[str, Any] = {"field": field, "operator": operator}
    if operator not in ("is_set", "is_not_set"):
        body["value"] = value
    return {"source": "contacts", "contact": body}


@st.composite
def property_date_leaves(draw: st.DrawFn) -> dict[str, Any]:
    """before / after / in_the_last_days on the ``since`` property, values at the pools' edges."""
    operator = draw(st.sampled_from(["before", "after", "in_the_last_days"]))
    value = draw(st.sampled_from(DAYS)) if operator == "in_the_last_days" else draw(st.sampled_from(DATES + INSTANTS))
    return {"source": "contacts", "contact": {"field": "properties.since", "operator": operator, "value": value}}


@st.composite
def segment_leaves(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "source": "segment",
        "segment": {
            "segment_id": draw(st.sampled_from(SEGMENT_SLUGS)),
            "operator": draw(st.sampled_from(["in_segment", "not_in_segment"])),
        },
    }


def _node(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    if draw(st.integers(0, 3)) == 0:
        body["negate"] = True
    return body


@st.composite
def leaf_nodes(draw: st.DrawFn, sources: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    return _node(draw, {"kind": "leaf", "leaf": draw(sources)})


@st.composite
def branch_nodes(draw: st.DrawFn, children: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    leaves = draw(st.lists(children, min_size=1, max_size=3))
    return _node(
        draw, {"kind": "branch", "branch": {"operator": draw(st.sampled_from(["and", "or"])), "leaves": leaves}}
    )


def trees(sources: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(leaf_nodes(sources), branch_nodes, max_leaves=5)


@st.composite
def moments(draw: st.DrawFn, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """Instants spread over four months, plus the exact edges timeframes cut at."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        day = dt.date.fromisoformat(draw(st.sampled_from(DATES))) + dt.timedelta(days=draw(st.integers(0, 1)))
        edge = dt.datetime(day.year, day.month, day.day, tzinfo=tz)
    elif kind == 1:
        edge = NOW - dt.timedelta(days=draw(st.sampled_from(DAYS)))
    elif kind == 2:
        edge = _utc_start(draw(st.sampled_from(INSTANTS)))
    elif kind == 3:
        # Noon of a pool date: inside that whole day in every timezone used here.
        day = dt.date.fromisoformat(draw(st.sampled_from(DATES)))
        edge = dt.datetime(day.year, day.month, day.day, 12, tzinfo=tz)
    else:
        minutes = draw(st.integers(0, 140 * 24 * 2)) * 30
        return (dt.datetime(2025, 11, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=minutes)).astimezone(dt.UTC)
    shift = dt.timedelta(seconds=draw(st.sampled_from([-1, 0, 0, 1])))
    return (edge + shift).astimezone(dt.UTC)


# Property values the date operators must refuse: other offsets, impossible or malformed dates,
# other JSON types (a missing key is drawn separately).
NOT_INSTANTS: list[Any] = [
    "2026-03-14T12:00:00+01:00",
    "2026-03-14T07:00:00-05:00",
    "2026-02-30",
    "2026-02-29T00:00:00Z",
    "2026-13-01",
    "0000-03-01",
    "2026-03-14T24:00:00Z",
    "2026-03-14T12:00:60Z",
    "2026-3-14",
    "2026-03-14 12:00:00",
    "2026-03-14t12:00z",
    "2026-03-14Z",
    "2026-03-14T12:00:00.Z",
    "2026-03-14T12:00:00.1234567Z",
    "2026-03-14\n",
    "",
    20260314,
    1.5,
    True,
    None,
]


def _instant_edges(tz: zoneinfo.ZoneInfo) -> list[dt.datetime]:
    """Every instant a date rule on a property cuts at, for the pools above."""
    edges = [NOW - dt.timedelta(days=days) for days in DAYS] + [_utc_start(text) for text in INSTANTS]
    for text in DATES:
        day = dt.date.fromisoformat(text)
        edges += [dt.datetime(day.year, day.month, day.day, tzinfo=tz) + dt.timedelta(days=n) for n in (0, 1)]
    return edges


@st.composite
def instant_properties(draw: st.DrawFn, tz: zoneinfo.ZoneInfo) -> Any:
    """A ``since`` property: on or next to the rules' edges, written in each accepted form, or not an instant."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.sampled_from([*NOT_INSTANTS, "2024-02-29", "2024-02-29T23:59:59.999999Z"]))
    if kind == 1:
        moment = draw(moments(tz))
    else:
        moment = draw(st.sampled_from(_instant_edges(tz)))
        moment += dt.timedelta(microseconds=draw(st.sampled_from([0, 0, 0, 0, 0, 1, -1, 1_000_000, -1_000_000])))
    naive = moment.astimezone(dt.UTC).replace(tzinfo=None)
    form = draw(st.sampled_from(["date", "minutes", "seconds", "fraction", "micro"]))
    if form == "date":
        return naive.date().isoformat()
    text = naive.isoformat(timespec="minutes" if form == "minutes" else "microseconds")
    if form == "seconds":
        text = text[:19]
    elif form == "fraction":
        text = text[:21]  # one fraction digit
    return text + draw(st.sampled_from(["", "Z", "+00:00"]))


@st.composite
def histories(
    draw: st.DrawFn, tz_name: str, max_contacts: int = 3
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, list[int]]]:
    tz = zoneinfo.ZoneInfo(tz_name)
    contact_count = draw(st.integers(1, max_contacts))
    contacts = []
    for key in range(contact_count):
        properties: dict[str, Any] = {}
        if draw(st.booleans()):
            properties["plan"] = draw(st.sampled_from(["pro", "Pro", "free", "", None, 30]))
        if draw(st.booleans()):
            properties["age"] = draw(st.sampled_from([30, 30.5, 5, "30", None, True]))
        if draw(st.integers(0, 4)) > 0:
            properties["since"] = draw(instant_properties(tz))
        contacts.append(
            {
                "key": key,
                "email": f"c{key}@example.test",
                "external_id": draw(st.sampled_from(["", "x1", "X1"])),
                "first_name": draw(st.sampled_from(["", "Ann", "anna", "Bob"])),
                "last_name": "",
                "properties": properties,
                "created_at": draw(moments(tz)),
            }
        )
    events: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 10))):
        goal_type = draw(st.sampled_from(GOAL_TYPES))
        goal_value = None
        if goal_type is not None and (goal_type in ("purchase", "subscription") or draw(st.booleans())):
            goal_value = Decimal(draw(st.sampled_from(AMOUNTS)))
        properties = {}
        if draw(st.booleans()):
            properties["currency"] = draw(st.sampled_from(SCALARS))
        if draw(st.booleans()):
            properties["n"] = draw(st.sampled_from(SCALARS))
        events.append(
            {
                "contact_key": draw(st.integers(0, contact_count - 1)),
                "event_name": draw(st.sampled_from(EVENT_NAMES)),
                "properties": properties,
                # Sometimes at the same instant as an earlier event: first/last break ties by id.
                "occurred_at": (
                    events[-1]["occurred_at"] if events and draw(st.integers(0, 4)) == 0 else draw(moments(tz))
                ),
                "goal_type": goal_type,
                "goal_name": draw(st.sampled_from([None, "a", "b"])) if goal_type else None,
                "goal_value": goal_value,
                "deleted_at": NOW if draw(st.integers(0, 4)) == 0 else None,
            }
        )
    memberships = {slug: draw(st.lists(st.integers(0, contact_count - 1), unique=True)) for slug in SEGMENT_SLUGS}
    return contacts, events, memberships


def _assert_sql_matches_oracle(
    workspace: Workspace,
    data: st.DataObject,
    tree: dict[str, Any],
    *,
    max_contacts: int = 3,
    history: Callable[[str, int], st.SearchStrategy[tuple[Any, ...]]] = histories,
) -> None:
    """``history(timezone, max_contacts)`` draws (contacts, events, memberships[, timeline])."""
    tz_name = data.draw(st.sampled_from(TIMEZONES), label="timezone")
    contacts, events, memberships, *more = data.draw(history(tz_name, max_contacts), label="history")
    timeline = more[0] if more else []
    normalised = validate_tree(tree)
    try:
        with transaction.atomic():
            # given
            store_history(
                workspace=workspace, contacts=contacts, events=events, memberships=memberships, timeline=timeline
            )
            # when
            matched = set(
                segment_matching_contacts(
                    workspace_id=workspace.pk, tree=normalised, timezone_name=tz_name, now=NOW
                ).values_list("pk", flat=True)
            )
            count = segment_match_count(workspace_id=workspace.pk, tree=normalised, timezone_name=tz_name, now=NOW)
            # The on-event refresh asks about some contacts only (and ids that are not there).
            subset = [contact["id"] for contact in contacts if data.draw(st.booleans(), label="in subset")]
            asked = [*subset, max(contact["id"] for contact in contacts) + 1000]
            matched_subset = set(
                segment_matching_contacts(
                    workspace_id=workspace.pk, tree=normalised, timezone_name=tz_name, now=NOW, contact_ids=asked
                ).values_list("pk", flat=True)
            )
            count_subset = segment_match_count(
                workspace_id=workspace.pk, tree=normalised, timezone_name=tz_name, now=NOW, contact_ids=asked
            )
            preview = segment_preview(workspace_id=workspace.pk, tree=normalised, timezone_name=tz_name, now=NOW)
            # then
            by_key = {contact["key"]: contact["id"] for contact in contacts}

            def oracle(tree: dict[str, Any]) -> set[int]:
                return matching_contact_ids(
                    tree,
                    contacts=contacts,
                    events=events,
                    now=NOW,
                    timezone_name=tz_name,
                    memberships={slug: {by_key[key] for key in keys} for slug, keys in memberships.items()},
                    timeline=timeline,
                )

            expected = oracle(normalised)
            # The preview's one pass: the total, each top-level condition alone, the matches sampled.
            conditions = normalised["branch"]["leaves"] if normalised["kind"] == "branch" else [normalised]
            assert preview.total == len(expected), f"{connection.vendor}: preview total"
            assert preview.contacts_in_workspace == len(contacts)
            assert preview.condition_counts == [len(oracle(condition)) for condition in conditions]
            assert {contact.pk for contact in preview.sample} <= expected
            assert len(preview.sample) == min(len(expected), 10)
            assert matched == expected, f"{connection.vendor}: sql={sorted(matched)} oracle={sorted(expected)}"
            assert count == len(expected)
            assert matched_subset == expected & set(subset), f"{connection.vendor}: subset {sorted(subset)}"
            assert count_subset == len(expected & set(subset))
            raise _Rollback
    except _Rollback:
        pass


@EXAMPLE_SETTINGS
@given(data=st.data(), tree=leaf_nodes(goal_leaves() | custom_event_leaves() | contact_leaves()))
def test_single_rules_match_oracle(segments_workspace: Workspace, data: st.DataObject, tree: dict[str, Any]) -> None:
    """Each leaf alone, negated or not, selects exactly the oracle's contacts, edges of timeframes included."""
    _assert_sql_matches_oracle(segments_workspace, data, tree)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), tree=leaf_nodes(property_date_leaves()) | trees(property_date_leaves()))
def test_contact_property_dates_match_oracle(
    segments_workspace: Workspace, data: st.DataObject, tree: dict[str, Any]
) -> None:
    """Date operators on a contact property (dates, UTC date-times in every accepted form, other
    offsets, impossible dates, other JSON types, missing keys, at the edges) select exactly the
    oracle's contacts, nested and negated."""
    _assert_sql_matches_oracle(segments_workspace, data, tree, max_contacts=8)


@EXAMPLE_SETTINGS
@given(data=st.data(), tree=trees(goal_leaves() | custom_event_leaves()))
def test_event_rules_match_oracle(segments_workspace: Workspace, data: st.DataObject, tree: dict[str, Any]) -> None:
    """Goal aggregates, event counts, timeframes, nesting and negation select exactly the oracle's contacts."""
    _assert_sql_matches_oracle(segments_workspace, data, tree)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), tree=trees(goal_leaves() | custom_event_leaves() | contact_leaves() | segment_leaves()))
def test_all_sources_match_oracle(segments_workspace: Workspace, data: st.DataObject, tree: dict[str, Any]) -> None:
    """Mixing contact fields, contact properties and segment membership with event rules still matches the oracle."""
    _assert_sql_matches_oracle(segments_workspace, data, tree)


@EXAMPLE_SETTINGS
@given(
    data=st.data(),
    tree=st.recursive(
        fused_groups(leaf_nodes(goal_leaves() | custom_event_leaves() | contact_leaves())),
        branch_nodes,
        max_leaves=3,
    ),
)
def test_fused_goal_groups_match_oracle(
    segments_workspace: Workspace, data: st.DataObject, tree: dict[str, Any]
) -> None:
    """Goal conditions over the same events, evaluated together in one grouped scan (zero-count
    conditions, timeframes, first/last beside them, negation above and below, nesting), select
    exactly the oracle's contacts, for the whole workspace and for a subset of contacts."""
    _assert_sql_matches_oracle(segments_workspace, data, tree)
