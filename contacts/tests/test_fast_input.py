"""The ingest fast path never accepts what the serializer refuses, and reads what it accepts identically."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import dataset
from contacts.api import fast_input
from contacts.api import serializers as s
from contacts.services import EventInput

# Values near every rule's edge: whitespace, case, length limits, NUL, non-ASCII, wrong types.
TEXTS = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "a",
            " o-1 ",
            "o\x00",
            "é",
            "x" * 255,
            "x" * 256,
            "order.completed",
            "Order.Completed",
            "order completed",
            "order.completed\n",
            "api",
            "shopify_app",
            "Shop",
        ]
    ),
    st.text(max_size=12),
)
EMAILS = st.one_of(
    st.sampled_from(
        [
            "a@x.io",
            " A@X.IO ",
            "a.b+c@shop.example",
            "a..b@x.io",
            "a@x",
            "a@-x.io",
            "a@x.i",
            "a@localhost",
            "ü@x.io",
            "a@" + "x" * 250 + ".io",
            "",
        ]
    ),
    st.emails(),
    st.integers(),
)
DATES = st.one_of(
    st.sampled_from(
        [
            "2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05.123456+02:00",
            "2026-01-02T03:04:05",
            "2026-01-02",
            "2026-02-30T00:00:00Z",
            "2999-01-01T00:00:00Z",
            "yesterday",
            "",
        ]
    ),
    st.none(),
    st.integers(),
)
VALUES = st.one_of(
    st.sampled_from(["19.99", "-5", "1e3", "NaN", "Infinity", "", " 7 ", "0.001", "123456789012.34", "1234567890123"]),
    st.integers(min_value=-(10**14), max_value=10**14),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
PROPERTIES = st.one_of(
    st.dictionaries(st.text(max_size=6), st.recursive(JSON_LEAVES, lambda c: st.lists(c, max_size=3), max_leaves=5)),
    st.lists(st.integers(), max_size=2),
    st.none(),
    st.text(max_size=3),
)
FIELDS = {
    "email": EMAILS,
    "event_name": TEXTS,
    "external_id": st.one_of(TEXTS, st.integers()),
    "properties": PROPERTIES,
    "occurred_at": DATES,
    "deleted_at": DATES,
    "source": st.one_of(TEXTS, st.none()),
    "integration_id": st.one_of(TEXTS, st.none(), st.integers()),
    "goal_type": st.one_of(st.sampled_from(["purchase", "subscription", "lead", "other", "Purchase", ""]), st.none()),
    "goal_name": st.one_of(TEXTS, st.none()),
    "goal_value": VALUES,
    "unknown_field": st.integers(),
}
# Mostly-valid events, so both outcomes are common.
VALID_BASE = {"email": "a@x.io", "event_name": "order.completed", "external_id": "o1"}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = dict(VALID_BASE) if draw(st.booleans()) else {}
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=6, unique=True)):
        event[name] = draw(FIELDS[name])
    return event


def serializer_import(body: dict[str, Any]) -> list[EventInput] | None:
    serializer = s.EventImportInputSerializer(data=body)
    if not serializer.is_valid():
        return None
    converter = s.EventInputSerializer()
    return [converter.to_event_input(attrs) for attrs in serializer.validated_data["events"]]


def comparable(event: EventInput, sent: dict[str, Any]) -> dict[str, Any]:
    fields = dataclasses.asdict(event)
    if sent.get("occurred_at") is None:
        fields.pop("occurred_at")  # "now", read at slightly different instants by the two paths
    # Compare JSON texts too: equal values of different types (1 vs 1.0 vs True) must not pass.
    fields["properties"] = json.dumps(fields["properties"], sort_keys=True)
    return fields


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=3))
def test_whatever_the_fast_path_accepts_the_serializer_reads_the_same(items: list[dict[str, Any]]) -> None:
    # given
    body = {"workspace_id": "acme", "events": items}
    # when
    fast = fast_input.import_inputs(json.loads(json.dumps(body)))
    slow = serializer_import(json.loads(json.dumps(body)))
    # then
    if fast is not None:
        assert slow is not None, "the fast path accepted a batch the serializer refuses"
        assert [comparable(e, i) for e, i in zip(fast, items, strict=True)] == [
            comparable(e, i) for e, i in zip(slow, items, strict=True)
        ]


@settings(max_examples=300, deadline=None)
@given(events())
def test_a_single_upsert_reads_like_the_serializer_too(item: dict[str, Any]) -> None:
    # given
    body = {"workspace_id": "acme", **item}
    # when
    fast = fast_input.upsert_input(json.loads(json.dumps(body)))
    serializer = s.EventUpsertInputSerializer(data=json.loads(json.dumps(body)))
    valid = serializer.is_valid()
    # then
    if fast is not None:
        assert valid, f"the fast path accepted an upsert the serializer refuses: {serializer.errors}"
        assert comparable(fast, item) == comparable(serializer.to_event_input(serializer.validated_data), item)


def test_ordinary_batches_take_the_fast_path() -> None:
    """The bench's realistic events (orders, refunds, subscriptions, leads, no-goal events) all qualify."""
    # given
    payloads = list(dataset.ingest_payloads(tag="fast", count=200, emails=50))
    # when
    accepted = [fast_input.import_inputs({"workspace_id": "acme", "events": b}) for b in dataset.batched(payloads, 50)]
    # then
    assert all(batch is not None for batch in accepted)
    assert sum(len(b or []) for b in accepted) == 200
    assert accepted[0] == serializer_import({"workspace_id": "acme", "events": payloads[:50]})


def test_refusals_fall_back_to_the_serializer_for_unusual_but_valid_input() -> None:
    """A naive datetime and a numeric external id are valid; the fast path leaves them to the serializer."""
    # given
    body = {"workspace_id": "acme", "events": [{**VALID_BASE, "external_id": 42, "occurred_at": "2026-01-02T03:04:05"}]}
    # when
    fast = fast_input.import_inputs(body)
    slow = serializer_import(body)
    # then
    assert fast is None
    assert slow is not None and slow[0].external_id == "42"
