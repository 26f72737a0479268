"""Freshness (RFM §6): a full run on create, update and demand, the daily run's schedule, and the
re-score of a contact within its event's drain (a first purchase makes a new customer)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from contacts.models import Contact, TimelineEntry
from events_platform.workspaces.models import Workspace
from rfm import services
from rfm.models import RfmGroupChange, RfmModel, RfmRun, RfmScore
from rfm.tests.conftest import AfterCommit, buy

pytestmark = pytest.mark.django_db


def test_creating_a_model_runs_it_and_an_update_of_what_is_scored_runs_it_again(
    rfm_workspace: Workspace, after_commit: AfterCommit
) -> None:
    """The first run follows the create's commit; a config change bumps the version and re-runs;
    a name change does not."""
    # given
    with after_commit():
        for i in range(4):
            buy(rfm_workspace, f"b{i}@x.io", "20.00", days_ago=i * 30 + 1)
    # when
    with after_commit():
        model = services.rfm_model_create(workspace_id=rfm_workspace.id, slug="default", name="RFM")
    # then
    model.refresh_from_db()
    assert model.status == RfmModel.Status.ACTIVE and model.population == 4
    assert model.timezone == "Europe/Paris"  # the workspace's
    assert RfmScore.objects.filter(model=model).count() == 4
    # when
    with after_commit():
        services.rfm_model_update(model=model, name="Renamed")
    # then
    assert RfmRun.objects.filter(model=model).count() == 1
    # when
    with after_commit():
        services.rfm_model_update(model=model, settings={"preset": "klaviyo"})
    # then
    model.refresh_from_db()
    assert (model.version, model.scale, model.group_map) == (2, 3, "klaviyo6")
    assert RfmRun.objects.filter(model=model).count() == 2
    assert set(RfmScore.objects.filter(model=model).values_list("group", flat=True)) <= {
        "champions",
        "loyal",
        "recent",
        "needs_attention",
        "at_risk",
        "inactive",
    }
    # when
    with after_commit():
        services.rfm_model_recompute(model=model)
    # then
    assert RfmRun.objects.filter(model=model).count() == 3


def test_a_first_purchase_makes_a_new_customer_in_the_events_own_drain(
    rfm_workspace: Workspace, after_commit: AfterCommit
) -> None:
    """Between full runs, the refresh queue's drain re-scores the buyer against the stored cut
    points: better recency than everyone and a single order is new_customers (classic11), with
    the change from prospect logged and on the timeline."""
    # given
    with after_commit():
        for i in range(10):
            for k in range(i % 4 + 1):
                buy(rfm_workspace, f"old{i}@x.io", "30.00", days_ago=5 + i * 20 + k)
        model = services.rfm_model_create(workspace_id=rfm_workspace.id, slug="default", name="RFM")
    # when
    with after_commit():
        buy(rfm_workspace, "new@x.io", "15.00", days_ago=0)
    # then
    contact = Contact.objects.get(email="new@x.io")
    score = RfmScore.objects.get(model=model, contact=contact)
    assert (score.r, score.f, score.recency_days, score.frequency, score.monetary_cents) == (5, 1, 0, 1, 1500)
    assert (score.group, score.previous_group) == ("new_customers", "prospect")
    assert RfmGroupChange.objects.filter(model=model, contact=contact, run__isnull=True).values_list(
        "from_group", "to_group"
    ).get() == ("prospect", "new_customers")
    entry = TimelineEntry.objects.get(contact=contact, kind="rfm.group_changed")
    assert entry.changes["group"] == {"old": "prospect", "new": "new_customers"}
    # the full run's figures stay as of that run
    model.refresh_from_db()
    assert model.population == 10


def test_the_daily_run_is_due_at_five_past_midnight_model_time(
    rfm_workspace: Workspace, after_commit: AfterCommit
) -> None:
    """next_run_at is the next 00:05 in the model's timezone (DST included); the beat check
    returns models past it, and a run moves it to the next day."""
    # given
    paris_evening = dt.datetime(2026, 3, 28, 22, 0, tzinfo=dt.UTC)  # 23:00 in Paris, before DST starts
    # then
    assert services.next_daily_run(timezone_name="Europe/Paris", now=paris_evening) == dt.datetime(
        2026, 3, 28, 23, 5, tzinfo=dt.UTC
    )
    assert services.next_daily_run(
        timezone_name="Europe/Paris", now=dt.datetime(2026, 3, 28, 23, 5, tzinfo=dt.UTC)
    ) == dt.datetime(2026, 3, 29, 22, 5, tzinfo=dt.UTC)  # summer time: UTC+2
    # given
    with after_commit():
        model = services.rfm_model_create(workspace_id=rfm_workspace.id, slug="default", name="RFM")
    model.refresh_from_db()
    assert model.next_run_at is not None and model.next_run_at > timezone.now()
    assert services.rfm_models_due() == []
    # when
    due_at = model.next_run_at
    assert (model.pk, model.version) in services.rfm_models_due(now=due_at + dt.timedelta(seconds=1))
    run = services.rfm_model_compute(model_pk=model.pk, version=model.version, now=due_at + dt.timedelta(seconds=1))
    # then
    assert run is not None
    model.refresh_from_db()
    assert model.next_run_at is not None and model.next_run_at > due_at
