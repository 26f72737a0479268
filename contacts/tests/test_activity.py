"""The dashboard's activity read model (contacts/activity.py) against the events themselves.

The oracle is plain Python over the stored event rows: per local day, the live events and the sum
of live purchase values. After every kind of write (new events, back-dated imports, updates that
move an event's time or goal, soft deletes, restores, erasures, compactions at any point) the
dashboard's figures must equal it, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
import zoneinfo
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from contacts import activity
from contacts.models import CustomEvent, EventActivity
from contacts.services import EventInput, contact_delete, event_set_deleted, events_upsert
from events_platform.workspaces.models import Workspace
from segments.selectors import dashboard_figures

NOW = datetime(2026, 11, 20, 14, 7, 31, 250000, tzinfo=UTC)


def _oracle(workspace_id: str, zone_name: str, days: int = 90) -> dict[str, Any]:
    zone = zoneinfo.ZoneInfo(zone_name)
    today = NOW.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    since = NOW - timedelta(days=30)
    per_day: Counter[Any] = Counter()
    revenue: dict[Any, Decimal] = {}
    events_30d, revenue_30d = 0, Decimal(0)
    for event in CustomEvent.objects.filter(workspace_id=workspace_id, deleted_at__isnull=True):
        value = event.goal_value if event.goal_type == "purchase" and event.goal_value is not None else Decimal(0)
        day = event.occurred_at.astimezone(zone).date()
        if day >= first:
            per_day[day] += 1
            revenue[day] = revenue.get(day, Decimal(0)) + value
        if event.occurred_at >= since:
            events_30d += 1
            revenue_30d += value
    series = [
        (first + timedelta(days=n), per_day[first + timedelta(days=n)], revenue.get(first + timedelta(days=n), 0))
        for n in range(days)
    ]
    revenue_all_time = sum(
        (
            e.goal_value
            for e in CustomEvent.objects.filter(
                workspace_id=workspace_id, deleted_at__isnull=True, goal_type="purchase"
            )
            if e.goal_value is not None
        ),
        Decimal(0),
    )
    return {"days": series, "events_30d": events_30d, "revenue_30d": revenue_30d, "revenue_all_time": revenue_all_time}


def _figures(workspace_id: str, zone_name: str) -> dict[str, Any]:
    figures = dashboard_figures(workspace_id=workspace_id, now=NOW, timezone_name=zone_name, days=90)
    return {
        "days": [(d.day, d.events, d.revenue) for d in figures.days],
        "events_30d": figures.events_30d,
        "revenue_30d": figures.revenue_30d,
        "revenue_all_time": figures.revenue_all_time,
    }


def _random_event(rng: random.Random, n: int) -> EventInput:
    # Times around the window edges (90 days, 30 days), the quarter hours and midnight.
    edge = rng.choice([timedelta(days=30), timedelta(days=89, hours=14), timedelta(0), timedelta(days=200)])
    occurred_at = NOW - edge + timedelta(minutes=rng.randint(-90, 90), seconds=rng.choice([0, 1, 59]))
    goal: dict[str, Any] = {}
    if rng.random() < 0.6:
        goal = {"goal_type": "purchase", "goal_value": Decimal(rng.randint(-3000, 9000)) / 100}
    elif rng.random() < 0.3:
        goal = {"goal_type": "lead"}
    return EventInput(
        email=f"c{rng.randint(0, 6)}@example.com",
        event_name=rng.choice(["order", "visit"]),
        external_id=str(rng.randint(0, n)),  # repeats: updates of the same event
        occurred_at=occurred_at,
        goal=goal,
        deleted_at=NOW if rng.random() < 0.1 else None,
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.django_db(transaction=True)
def test_dashboard_figures_equal_the_events_after_any_writes(seed: int) -> None:
    rng = random.Random(seed)
    zone_name = rng.choice(["UTC", "Asia/Kathmandu", "America/St_Johns", "Europe/Paris"])
    Workspace.objects.create(id="acme", name="Acme", timezone=zone_name)
    Workspace.objects.create(id="other", name="Other")
    events_upsert(workspace_id="other", events=[_random_event(rng, 5) for _ in range(5)])
    for step in range(14):
        roll = rng.random()
        if roll < 0.6:
            events_upsert(workspace_id="acme", events=[_random_event(rng, 40) for _ in range(rng.randint(1, 12))])
        elif roll < 0.75:
            event = CustomEvent.objects.filter(workspace_id="acme").order_by("?").first()
            if event is not None:
                event_set_deleted(event=event, deleted=event.deleted_at is None)
        elif roll < 0.85:
            contact_delete(workspace_id="acme", email=f"c{rng.randint(0, 6)}@example.com")
        else:
            activity.activity_compact(now=NOW)
        assert _figures("acme", zone_name) == _oracle("acme", zone_name), f"after step {step}"
    activity.activity_compact(now=NOW)
    assert _figures("acme", zone_name) == _oracle("acme", zone_name)
    # then: compacted, a bucket is one row, and no row sums to nothing
    rows = EventActivity.objects.filter(workspace_id="acme")
    assert rows.count() == rows.values("bucket").distinct().count()
    assert not rows.filter(events=0, revenue=0).exists()
    # and buckets older than 120 days are folded into their month (the 200-day-old events')
    horizon = activity.bucket_of(NOW - timedelta(days=120))
    old = rows.filter(bucket__lt=horizon).values_list("bucket", flat=True)
    assert all((b.day, b.hour, b.minute) == (1, 0, 0) for b in old), list(old)
    expected_old = Counter(
        e.occurred_at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        for e in CustomEvent.objects.filter(workspace_id="acme", deleted_at__isnull=True, occurred_at__lt=horizon)
    )
    assert dict(rows.filter(bucket__lt=horizon, events__gt=0).values_list("bucket", "events")) == {
        month: n for month, n in expected_old.items() if n
    }
    # and (PostgreSQL) buckets older than 32 days, up to those months, are local days
    if connection.vendor == "postgresql":
        zone = zoneinfo.ZoneInfo(zone_name)
        days = rows.filter(bucket__gte=horizon, bucket__lt=activity.bucket_of(NOW - timedelta(days=32)))
        assert days.exists()
        assert all(b.astimezone(zone).time() == time(0) for b in days.values_list("bucket", flat=True))
    # and a rebuild from the events, compacted, gives the same rows
    compacted = set(rows.values_list("bucket", "events", "revenue"))
    activity.activity_rebuild(workspace_id="acme")
    activity.activity_compact(now=NOW)
    assert set(rows.values_list("bucket", "events", "revenue")) == compacted
    assert _figures("other", "UTC") == _oracle("other", "UTC")


def test_buckets_are_quarter_hours_of_utc_in_python_and_in_sql(db: None) -> None:
    """bucket_of and the SQL of bucket_sql floor to the same quarter hour, before 1970 too."""
    Workspace.objects.create(id="acme", name="Acme")
    instants = [
        datetime(2026, 11, 20, 14, 14, 59, 999999, tzinfo=UTC),
        datetime(2026, 11, 20, 14, 15, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 1, tzinfo=UTC),
    ]
    events_upsert(
        workspace_id="acme",
        events=[
            EventInput(email="a@example.com", event_name="e", external_id=str(n), occurred_at=i)
            for n, i in enumerate(instants)
        ],
    )
    activity.activity_rebuild(workspace_id="acme")
    assert sorted(EventActivity.objects.values_list("bucket", flat=True)) == sorted(
        {activity.bucket_of(i) for i in instants}
    )
    assert [activity.bucket_of(i).minute for i in instants] == [0, 15, 45]
    assert activity.bucket_ceiling(instants[1]) == instants[1]


def test_concurrent_compactions_never_count_a_delta_twice(db: None) -> None:
    """A compaction that finds nothing to fold changes nothing; one that folds keeps the sums."""
    Workspace.objects.create(id="acme", name="Acme")
    at = NOW - timedelta(days=1)
    for n in range(5):
        events_upsert(
            workspace_id="acme",
            events=[
                EventInput(
                    email="a@example.com",
                    event_name="order",
                    external_id=str(n),
                    occurred_at=at,
                    goal={"goal_type": "purchase", "goal_value": Decimal("1.10")},
                )
            ],
        )
    assert EventActivity.objects.count() == 5
    assert activity.activity_compact(now=NOW) == 4
    assert activity.activity_compact(now=NOW) == 0
    assert list(EventActivity.objects.values_list("events", "revenue")) == [(5, Decimal("5.50"))]


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_activity_from_the_stored_events() -> None:
    """0009 fills one row per bucket from the events stored before it (live ones only)."""
    executor = MigrationExecutor(connection)
    executor.migrate([("contacts", "0008_dashboard_index_and_denser_indexes")])
    try:
        old_apps = (
            MigrationExecutor(connection)
            .loader.project_state(("contacts", "0008_dashboard_index_and_denser_indexes"))
            .apps
        )
        workspace = old_apps.get_model("workspaces", "Workspace").objects.create(id="acme", name="Acme")
        contact = old_apps.get_model("contacts", "Contact").objects.create(workspace=workspace, email="a@example.com")
        event = old_apps.get_model("contacts", "CustomEvent")
        at = datetime(2026, 11, 19, 23, 50, 12, tzinfo=UTC)
        for n, (minutes, value, deleted) in enumerate(
            [(0, "2.50", None), (3, "-1.00", None), (20, "9.99", None), (1, "7.00", NOW)]
        ):
            event.objects.create(
                workspace=workspace,
                contact=contact,
                event_name="order",
                external_id=str(n),
                occurred_at=at + timedelta(minutes=minutes),
                goal_type="purchase",
                goal_value=Decimal(value),
                deleted_at=deleted,
            )
        # when
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
        # then
        rows = sorted(EventActivity.objects.values_list("bucket", "events", "revenue"))
        assert rows == [
            (datetime(2026, 11, 19, 23, 45, tzinfo=UTC), 2, Decimal("1.50")),
            (datetime(2026, 11, 20, 0, 0, tzinfo=UTC), 1, Decimal("9.99")),
        ]
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.parametrize("zones", [("Europe/Paris", "Asia/Kathmandu"), ("America/St_Johns", "UTC")])
def test_a_time_zone_changed_refolds_the_days_in_the_new_zone(
    db: None, zones: tuple[str, str], django_capture_on_commit_callbacks: Any
) -> None:
    """Old buckets are folded into the workspace's local days; changing its time zone rebuilds
    them, so the next compaction folds them into the new zone's days: the figures stay the
    events' in either zone."""
    before, after = zones
    workspace = Workspace.objects.create(id="acme", name="Acme", timezone=before)
    rng = random.Random(7)
    events_upsert(workspace_id="acme", events=[_random_event(rng, 200) for _ in range(40)])
    activity.activity_compact(now=NOW)
    assert _figures("acme", before) == _oracle("acme", before)
    # when
    with django_capture_on_commit_callbacks(execute=True):  # the rebuild, once the save commits
        workspace.timezone = after
        workspace.save()
    activity.activity_compact(now=NOW)
    # then
    assert _figures("acme", after) == _oracle("acme", after)
