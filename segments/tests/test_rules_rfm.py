"""The ``rfm`` leaf (RFM §7) against the oracle: random stored scores (prospect and lapsed rows with
no values, contacts without a row, a deleted model), random rfm leaves alone, negated and combined;
explained with cut points; and segments that use RFM follow a purchase and a full run."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts.models import Contact
from events_platform.workspaces.models import Workspace
from rfm import services as rfm_services
from rfm.models import RfmModel, RfmScore
from rfm.tests.conftest import buy
from segments import selectors, services
from segments.models import SegmentMembership
from segments.rules import validate_tree
from segments.tests.oracle import matching_contact_ids

NOW = dt.datetime(2026, 5, 31, 22, 30, tzinfo=dt.UTC)
GROUPS = ["champions", "loyal", "at_risk", "prospect", "lapsed"]
SCORED = ["champions", "loyal", "at_risk"]


class _Rollback(Exception):
    pass


def _leaf(body: dict[str, Any], negate: bool = False) -> dict[str, Any]:
    node: dict[str, Any] = {"kind": "leaf", "leaf": {"source": "rfm", "rfm": body}}
    if negate:
        node["negate"] = True
    return node


@st.composite
def rfm_bodies(draw: st.DrawFn) -> dict[str, Any]:
    model = draw(st.sampled_from(["main", "main", "gone", "missing"]))
    field = draw(
        st.sampled_from(
            ["group", "previous_group", "r", "f", "m", "recency_days", "frequency", "monetary", "group_changed_at"]
        )
    )
    body: dict[str, Any] = {"model": model, "field": field}
    if field in ("group", "previous_group"):
        return body | {
            "operator": draw(st.sampled_from(["in", "not_in"])),
            "values": draw(st.lists(st.sampled_from(GROUPS), min_size=1, max_size=3, unique=True)),
        }
    if field == "group_changed_at":
        operator = draw(
            st.sampled_from(["anytime", "in_the_last_days", "more_than_days_ago", "before_date", "after_date"])
        )
        values = {"anytime": [], "in_the_last_days": ["7"], "more_than_days_ago": ["7"]}.get(operator, ["2026-05-25"])
        return body | {"timeframe_operator": operator, "timeframe_values": values}
    operators = (
        ["eq", "gte", "lte", "between"]
        if field in ("r", "f", "m")
        else ["eq", "gte", "lte", "between", "gt", "lt", "neq"]
    )
    operator = draw(st.sampled_from(operators))
    value: float
    second: float
    if field in ("r", "f", "m"):
        value = draw(st.integers(1, 5))
        second = draw(st.integers(value, 5))
    elif field == "monetary":
        value = draw(st.sampled_from([-5, 0, 10, 10.5, 99.99]))
        second = value + draw(st.sampled_from([0, 20]))
    else:
        value = draw(st.integers(0, 30))
        second = value + draw(st.integers(0, 10))
    body |= {"operator": operator, "value": value}
    if operator == "between":
        body["value_2"] = second
    return body


@st.composite
def rfm_trees(draw: st.DrawFn) -> dict[str, Any]:
    leaves = [_leaf(draw(rfm_bodies()), draw(st.booleans())) for _ in range(draw(st.integers(1, 3)))]
    if len(leaves) == 1:
        return leaves[0]
    return {
        "kind": "branch",
        "branch": {"operator": draw(st.sampled_from(["and", "or"])), "leaves": leaves},
        "negate": draw(st.booleans()),
    }


@st.composite
def score_rows(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.integers(0, 4)) == 0:
        return None  # no row: prospect
    group = draw(st.sampled_from(GROUPS))
    changed = draw(
        st.sampled_from(
            [None, NOW - dt.timedelta(days=3), NOW - dt.timedelta(days=7, seconds=-1), NOW - dt.timedelta(days=30)]
        )
    )
    row: dict[str, Any] = {
        "group": group,
        "previous_group": draw(st.sampled_from(["", *GROUPS])) if changed else "",
        "group_changed_at": changed,
        "r": None,
        "f": None,
        "m": None,
        "recency_days": None,
        "frequency": None,
        "monetary_cents": None,
    }
    if group in SCORED:
        row |= {
            "r": draw(st.integers(1, 5)),
            "f": draw(st.integers(1, 5)),
            "m": draw(st.integers(1, 5)),
            "recency_days": draw(st.integers(0, 40)),
            "frequency": draw(st.integers(1, 12)),
            "monetary_cents": draw(st.sampled_from([-500, 0, 1000, 1050, 9999, 2000])),
        }
    return row


def _model(workspace: Workspace, slug: str, status: str) -> RfmModel:
    return RfmModel.objects.create(
        workspace=workspace,
        slug=slug,
        name=slug,
        goal_types=["purchase"],
        scale=5,
        status=status,
        recency={"mode": "quantile"},
        frequency={"mode": "quantile"},
        monetary={"mode": "quantile"},
        group_map="classic11",
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), tree=rfm_trees())
def test_rfm_leaves_match_the_oracle(workspace: Workspace, data: st.DataObject, tree: dict[str, Any]) -> None:
    """Every rfm leaf, alone, negated and combined, selects exactly the oracle's contacts; a
    deleted model's rows and contacts without a row count as prospect."""
    normalised = validate_tree(tree)
    try:
        with transaction.atomic():
            # given
            contacts = Contact.objects.bulk_create([Contact(workspace=workspace, email=f"r{i}@x.io") for i in range(6)])
            models = {"main": _model(workspace, "main", "active"), "gone": _model(workspace, "gone", "deleted")}
            stored: dict[str, dict[int, dict[str, Any]]] = {"main": {}}
            rows = []
            for slug, model in models.items():
                for contact in contacts:
                    row = data.draw(score_rows(), label=f"{slug} {contact.pk}")
                    if row is None:
                        continue
                    if slug == "main":
                        stored["main"][contact.pk] = row
                    rows.append(RfmScore(model=model, contact=contact, computed_at=NOW, **row))
            RfmScore.objects.bulk_create(rows)
            # when
            matched = set(
                selectors.segment_matching_contacts(
                    workspace_id=workspace.pk, tree=normalised, timezone_name="Europe/Paris", now=NOW
                ).values_list("pk", flat=True)
            )
            # then
            expected = matching_contact_ids(
                normalised,
                contacts=[{"id": c.pk} for c in contacts],
                events=[],
                now=NOW,
                timezone_name="Europe/Paris",
                rfm_scores=stored,
            )
            assert matched == expected, f"{connection.vendor}: sql={sorted(matched)} oracle={sorted(expected)}"
            raise _Rollback
    except _Rollback:
        pass


def test_validation_names_each_bad_rfm_field() -> None:
    """Unknown fields, operators a field does not take, scores outside 1-5, 3 money decimals,
    empty group lists and bad group ids are refused at their paths."""
    from segments.rules import TreeValidationError

    cases: list[tuple[dict[str, Any], str]] = [
        ({"model": "main", "field": "colour", "operator": "in", "values": ["a"]}, "field"),
        ({"model": "main", "field": "group", "operator": "gte", "values": ["a"]}, "operator"),
        ({"model": "main", "field": "r", "operator": "gt", "value": 3}, "operator"),
        ({"model": "main", "field": "r", "operator": "eq", "value": 6}, "value"),
        ({"model": "main", "field": "monetary", "operator": "gte", "value": 1.001}, "value"),
        ({"model": "main", "field": "group", "operator": "in", "values": []}, "values"),
        ({"model": "main", "field": "group", "operator": "in", "values": ["Champions!"]}, "values"),
        ({"model": "Main", "field": "group", "operator": "in", "values": ["loyal"]}, "model"),
        ({"model": "main", "field": "f", "operator": "between", "value": 4, "value_2": 2}, "value_2"),
        ({"model": "main", "field": "group_changed_at", "timeframe_operator": "in_the_last_days"}, "timeframe_values"),
    ]
    for body, field in cases:
        with pytest.raises(TreeValidationError) as caught:
            validate_tree(_leaf(body))
        assert f"tree.leaf.rfm.{field}" in caught.value.message_dict, (body, caught.value.message_dict)


@pytest.mark.django_db
def test_segments_using_rfm_follow_a_purchase_and_a_full_run(
    workspace: Workspace, django_capture_on_commit_callbacks: Any
) -> None:
    """A segment "group in [new_customers]" gains a first-time buyer in the purchase's own drain
    (RFM scores first, segments after), and is rebuilt after a full run; explain shows the
    contact's value with the cut points; creating one on an unknown model is refused."""
    # given
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(8):
            for k in range(i % 3 + 1):
                buy(workspace, f"old{i}@x.io", "40.00", days_ago=3 + 25 * i + k)
        model = rfm_services.rfm_model_create(workspace_id=workspace.id, slug="default", name="RFM")
        tree = _leaf({"model": "default", "field": "group", "operator": "in", "values": ["new_customers"]})
        segment = services.segment_create(workspace_id=workspace.id, slug="newbies", name="New", tree=tree)

    def members() -> set[int]:
        return set(SegmentMembership.objects.filter(segment=segment).values_list("contact_id", flat=True))

    def scored(group: str) -> set[int]:
        return set(RfmScore.objects.filter(model=model, group=group).values_list("contact_id", flat=True))

    before = members()
    assert before == scored("new_customers")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        buy(workspace, "fresh@x.io", "12.00", days_ago=0)
    # then
    fresh = Contact.objects.get(email="fresh@x.io")
    assert members() == before | {fresh.pk}
    explained = selectors.segment_explain(segment=services.Segment.objects.get(pk=segment.pk), contact=fresh)
    assert "group = new_customers" in str(explained)
    r_segment_tree = _leaf({"model": "default", "field": "r", "operator": "gte", "value": 4})
    explained_r = selectors.segment_explain(
        segment=services.segment_create(workspace_id=workspace.id, slug="recent", name="R", tree=r_segment_tree),
        contact=fresh,
    )
    assert "r = 5: 0 days; cut points " in str(explained_r)
    # when: a full run re-ranks everyone
    with django_capture_on_commit_callbacks(execute=True):
        rfm_services.rfm_model_recompute(model=model)
    # then: the segment equals the scores the run stored
    assert members() == scored("new_customers")
    # refused
    from segments.services import SegmentError

    with pytest.raises(SegmentError):
        services.segment_create(
            workspace_id=workspace.id,
            slug="bad",
            name="Bad",
            tree=_leaf({"model": "nope", "field": "group", "operator": "in", "values": ["loyal"]}),
        )
