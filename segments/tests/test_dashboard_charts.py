"""The dashboard's charts: events and net revenue per day over the last 90 days, drawn as SVG."""

from __future__ import annotations

import random
import zoneinfo
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from contacts.models import CustomEvent
from contacts.services import EventInput, event_set_deleted, events_upsert
from events_platform.charts import DailyBars
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.services import workspace_create
from segments import selectors

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 30, 22, 30, tzinfo=PARIS)  # 21:30 UTC, half an hour before midnight in Paris


def event(index: int, at: datetime, kind: str, cents: int) -> EventInput:
    goals: dict[str, dict[str, Any]] = {
        "purchase": {"goal_type": "purchase", "goal_value": Decimal(cents).scaleb(-2)},
        "refund": {"goal_type": "purchase", "goal_value": -Decimal(cents).scaleb(-2)},
        "subscription": {"goal_type": "subscription", "goal_value": Decimal(cents).scaleb(-2)},
        "plain": {},
    }
    return EventInput(
        email=f"c{index % 7}@example.com",
        event_name=f"{kind}.event",
        external_id=f"e{index}",
        occurred_at=at,
        goal=goals[kind],
    )


def test_dashboard_days_equal_a_python_count_per_local_day(db: None) -> None:
    """Over random events, some deleted, some just either side of a Paris midnight, of the window's
    first day and of tomorrow, each day's events and net revenue (purchases minus refunds, other
    goals excluded) equal a count per Paris calendar day; another workspace counts nowhere."""
    # given
    workspace = workspace_create(workspace_id="paris", name="Paris", timezone_name="Europe/Paris")
    other = workspace_create(workspace_id="other", name="Other")
    rng = random.Random(20261201)
    first_day = date(2026, 9, 2)  # 90 days up to 2026-11-30 in Paris
    boundaries = [
        datetime(2026, 11, 30, 0, 0, tzinfo=PARIS) - timedelta(seconds=1),
        datetime(2026, 11, 30, 0, 0, tzinfo=PARIS),
        datetime(2026, 9, 2, 0, 0, tzinfo=PARIS) - timedelta(seconds=1),  # the day before the window
        datetime(2026, 9, 2, 0, 0, tzinfo=PARIS),
        datetime(2026, 12, 1, 0, 0, tzinfo=PARIS),  # tomorrow in Paris (future-dated)
    ]
    moments = [NOW - timedelta(days=rng.uniform(0, 100)) for _ in range(150)] + boundaries
    kinds = ["purchase", "purchase", "refund", "subscription", "plain"]
    events = [event(i, at, rng.choice(kinds), rng.randint(1, 50_000)) for i, at in enumerate(moments)]
    events_upsert(workspace_id=workspace.id, events=events)
    events_upsert(workspace_id=other.id, events=[event(0, NOW - timedelta(hours=1), "purchase", 99_900)])
    deleted = set(rng.sample(range(len(events)), 25))
    for index in deleted:
        event_set_deleted(event=CustomEvent.objects.get(workspace=workspace, external_id=f"e{index}"), deleted=True)

    # when
    series = selectors.dashboard_figures(workspace_id=workspace.id, timezone_name="Europe/Paris", now=NOW).days

    # then
    live = [e for i, e in enumerate(events) if i not in deleted]
    counts: Counter[date] = Counter(e.occurred_at.astimezone(PARIS).date() for e in live)
    revenue: Counter[date] = Counter()
    for e in live:
        if e.goal.get("goal_type") == "purchase":
            revenue[e.occurred_at.astimezone(PARIS).date()] += e.goal["goal_value"]
    expected_days = [first_day + timedelta(days=n) for n in range(90)]
    assert [point.day for point in series] == expected_days
    assert [point.events for point in series] == [counts[day] for day in expected_days]
    assert [point.revenue for point in series] == [Decimal(revenue[day]) for day in expected_days]
    assert sum(point.events for point in series) < len(live)  # the older, and tomorrow's, are outside


def test_bars_stand_on_the_zero_line_and_go_below_it_for_a_refund_day() -> None:
    """Bars rise from the zero line in proportion to their value; a negative day hangs below it;
    an all-zero series draws no bar but still a frame."""
    # given
    days = [date(2026, 11, 1) + timedelta(days=n) for n in range(4)]

    # when
    chart = DailyBars.of(list(zip(days, [Decimal("300"), Decimal("0"), Decimal("-100"), Decimal("150")], strict=True)))
    empty = DailyBars.of([(day, 0) for day in days])

    # then
    tall, _, negative, half = chart.bars
    assert tall.y + tall.height == pytest.approx(chart.zero_y)
    assert tall.height == pytest.approx(2 * half.height, abs=0.2)
    assert negative.y == pytest.approx(chart.zero_y) and negative.height == pytest.approx(tall.height / 3, abs=0.2)
    assert negative.negative and not tall.negative
    assert tall.x < half.x and tall.width > 0
    assert chart.total == Decimal("350") and chart.high == Decimal("300") and chart.low == Decimal("-100")
    assert empty.empty and all(bar.height == 0 for bar in empty.bars)


def test_dashboard_draws_both_charts_with_a_title_per_day(member_client: Client, workspace: Workspace) -> None:
    """The dashboard shows the two charts as inline SVG: a bar per day with events, its title
    giving the day and the value, a refund day drawn as a negative bar."""
    # given today's two purchases and yesterday's refund (the workspace is in UTC)
    now = datetime.now(tz=zoneinfo.ZoneInfo("UTC"))
    events_upsert(
        workspace_id=workspace.id,
        events=[
            event(1, now - timedelta(minutes=5), "purchase", 12_050),
            event(2, now - timedelta(minutes=4), "purchase", 1_000),
            event(3, now - timedelta(days=1), "refund", 4_000),
        ],
    )

    # when
    response = member_client.get("/")

    # then
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="events-chart"' in page and 'data-testid="revenue-chart"' in page
    today, yesterday = now.date(), now.date() - timedelta(days=1)
    assert f"{today:%a} {today.day} {today:%b %Y}: 2 events</title>" in page
    assert f"{today:%a} {today.day} {today:%b %Y}: 130.50 net revenue</title>" in page
    assert f"{yesterday:%a} {yesterday.day} {yesterday:%b %Y}: -40.00 net revenue</title>" in page
    assert page.count('class="bar bar-negative"') == 1
    assert len(response.context["events_chart"].bars) == 90


def test_bar_titles_read_as_the_template_filters_would_write_them() -> None:
    """A bar's day and value labels (formatted in Python, once per bar) equal what the date,
    intcomma and floatformat:"2g" filters write, for counts, money, negatives and every weekday
    and month."""
    from django.contrib.humanize.templatetags.humanize import intcomma
    from django.template.defaultfilters import date as date_filter
    from django.template.defaultfilters import floatformat

    rng = random.Random(14)
    first = date(2026, 1, 1)
    counts = DailyBars.of(
        [(first + timedelta(days=n), rng.choice([1, 7, 999, 1000, 123456, 10**7])) for n in range(400)]
    )
    money = DailyBars.of(
        [(first + timedelta(days=n), Decimal(rng.randint(-(10**8), 10**8)) / 100) for n in range(400)]
        + [(first + timedelta(days=400), Decimal("0.05")), (first + timedelta(days=401), Decimal("-1000"))]
    )
    for bar in counts.bars:
        assert bar.day_label == date_filter(bar.day, "D j M Y")
        assert bar.value_label == intcomma(bar.value)
    for bar in money.bars:
        assert bar.value_label == floatformat(bar.value, "2g")
