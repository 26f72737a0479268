"""Full runs: RFM §4's worked example as a fixed regression, every contact grouped, transitions
recorded from the second run on, in the change log and on the contact's timeline."""

from __future__ import annotations

import datetime as dt

import pytest

from contacts.models import TimelineEntry
from events_platform.workspaces.models import Workspace
from rfm import services
from rfm.models import RfmGroupChange, RfmRun, RfmScore
from rfm.tests.conftest import purchase, store_contacts, store_events

T = dt.datetime(2026, 6, 15, 10, 0, tzinfo=dt.UTC)
ALL_QUANTILE_3 = {
    "scale": 3,
    "window_days": None,
    "recency": {"mode": "quantile"},
    "frequency": {"mode": "quantile"},
    "monetary": {"mode": "quantile"},
    "group_map": "klaviyo6",
}


def days_ago(days: int) -> dt.datetime:
    return T - dt.timedelta(days=days)


def _worked_example(workspace: Workspace) -> dict[str, int]:
    a, b, c, d, e, f, g = store_contacts(workspace, 7)
    events = [purchase(a, days_ago(3 + i * 10), "150.00") for i in range(6)]
    events += [purchase(b, days_ago(20), "75.00"), purchase(b, days_ago(60), "75.00")]
    events += [purchase(c, days_ago(20), "40.00")]
    events += [purchase(d, days_ago(200 + i), "150.00") for i in range(4)]
    events += [purchase(e, days_ago(400), "25.00")]
    events += [purchase(f, days_ago(90), "45.00"), purchase(f, days_ago(80), "-50.00")]
    store_events(workspace, events)
    return dict(zip("abcdefg", (a, b, c, d, e, f, g), strict=True))


def _scores(model_pk: int) -> dict[int, RfmScore]:
    return {s.contact_id: s for s in RfmScore.objects.filter(model_id=model_pk)}


@pytest.mark.django_db(transaction=False)
def test_worked_example_of_the_design_notes(rfm_workspace: Workspace) -> None:
    """RFM §4: six customers scored 1-3 on quantiles, ties equal (b and c), f's refund below e."""
    # given
    ids = _worked_example(rfm_workspace)
    model = services.rfm_model_create(
        workspace_id=rfm_workspace.id, slug="default", name="RFM", settings=ALL_QUANTILE_3
    )
    # when
    run = services.rfm_model_compute(model_pk=model.pk, now=T)
    # then
    assert run is not None
    scores = _scores(model.pk)
    got = {
        key: (s.recency_days, s.frequency, s.monetary_cents, f"{s.r}{s.f}{s.m}", s.group)
        for key, pk in ids.items()
        for s in [scores[pk]]
    }
    assert got == {
        "a": (3, 6, 90000, "333", "champions"),
        "b": (20, 2, 15000, "222", "recent"),
        "c": (20, 1, 4000, "212", "at_risk"),
        "d": (200, 4, 60000, "133", "needs_attention"),
        "e": (400, 1, 2500, "111", "inactive"),
        "f": (90, 1, -500, "211", "at_risk"),
        "g": (None, None, None, "NoneNoneNone", "prospect"),
    }
    assert run.population == 6
    assert run.group_counts == {
        "champions": 1,
        "recent": 1,
        "at_risk": 2,
        "needs_attention": 1,
        "inactive": 1,
        "prospect": 1,
    }
    assert {(c["r"], c["f"]): c["count"] for c in run.cells} == {(3, 3): 1, (2, 2): 1, (2, 1): 2, (1, 3): 1, (1, 1): 1}
    # the first run records no transitions
    assert not RfmGroupChange.objects.exists()
    assert all(s.previous_group == "" and s.group_changed_at is None for s in scores.values())
    assert not TimelineEntry.objects.filter(kind="rfm.group_changed").exists()


@pytest.mark.django_db(transaction=False)
def test_second_run_records_each_group_change_once(rfm_workspace: Workspace) -> None:
    """A later run stores the previous group and when it changed, logs the change and puts an
    rfm.group_changed entry on the contact's timeline; unchanged contacts keep both."""
    # given
    ids = _worked_example(rfm_workspace)
    model = services.rfm_model_create(
        workspace_id=rfm_workspace.id, slug="default", name="RFM", settings=ALL_QUANTILE_3
    )
    services.rfm_model_compute(model_pk=model.pk, now=T)
    store_events(rfm_workspace, [purchase(ids["g"], T + dt.timedelta(hours=1), "10.00")])
    later = T + dt.timedelta(hours=2)
    # when
    run = services.rfm_model_compute(model_pk=model.pk, now=later)
    # then
    assert run is not None
    changes = list(RfmGroupChange.objects.filter(model_id=model.pk).values_list("contact_id", "from_group", "to_group"))
    scores = _scores(model.pk)
    assert (ids["g"], "prospect", scores[ids["g"]].group) in changes
    assert len(changes) == run.changed == sum(1 for s in scores.values() if s.group_changed_at == later)
    for contact_id, from_group, to_group in changes:
        assert scores[contact_id].previous_group == from_group
        assert scores[contact_id].group == to_group
        entry = TimelineEntry.objects.get(contact_id=contact_id, kind="rfm.group_changed")
        assert entry.changes == {
            "rfm_model": {"id": "default", "name": "RFM"},
            "group": {"old": from_group, "new": to_group},
        }
        assert entry.created_at == later
    assert RfmRun.objects.filter(model_id=model.pk).count() == 2
