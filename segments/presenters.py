"""How segments read on the pages: freshness badges, the size chart's geometry, the CSV of members.

Shaped here from what the selectors return, written out by the templates; nothing here queries
beyond the selector it is handed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.http import StreamingHttpResponse

from events_platform import charts
from events_platform.pages import csv_response

from . import selectors
from .models import Segment

CHART_MIN_DAYS = 30
MEMBER_CSV_HEADER = ("email", "external_id", "first_name", "last_name", "entered_at")


@dataclass(frozen=True)
class Freshness:
    """How current a segment's membership is, for a badge and a sentence."""

    badge: str  # ok | warn | bad | building
    label: str
    warning: str

    @classmethod
    def of(cls, segment: Segment, now: datetime) -> Freshness:
        if segment.status == Segment.Status.FAILED:
            return cls("bad", "Failed", segment.last_error or "The last build failed.")
        if segment.status == Segment.Status.BUILDING:
            return cls("building", "Building", "")
        stale_after = timedelta(seconds=2 * settings.SEGMENT_REFRESH_INTERVAL)
        if segment.has_relative_timeframe and (
            segment.last_built_at is None or segment.last_built_at < now - stale_after
        ):
            return cls(
                "warn",
                "Stale",
                "Its rolling timeframe has not been re-evaluated on schedule: is the scheduler running?",
            )
        return cls("ok", "Active", "")


def with_freshness(segments: list[Segment], now: datetime) -> list[tuple[Segment, Freshness]]:
    """Each segment beside its freshness, for the dashboard and the segments list."""
    return [(segment, Freshness.of(segment, now)) for segment in segments]


@dataclass(frozen=True)
class SizeChart:
    """A step line of the segment's size per day, drawn as SVG on the server."""

    points: str
    area: str
    max_size: int
    first_day: date
    last_day: date
    last_size: int
    days: int
    width: int = charts.WIDTH
    height: int = charts.HEIGHT
    pad: int = charts.PAD

    @classmethod
    def of(cls, history: list[selectors.SizePoint], today: date) -> SizeChart | None:
        if not history:
            return None
        # At least the last 30 days, so a young segment still reads as a line, not a dot.
        first, last = min(history[0].day, today - timedelta(days=CHART_MIN_DAYS)), max(history[-1].day, today)
        span = max((last - first).days, 1)
        top = max(max(point.size for point in history), 1)

        def xy(day: date, size: int) -> tuple[float, float]:
            return charts.x_of((day - first).days, span), charts.y_of(size, 0, top)

        coords: list[tuple[float, float]] = [xy(first, 0)] if first < history[0].day else []
        previous = 0
        for point in history:
            x, y = xy(point.day, point.size)
            if coords:
                coords.append((x, xy(point.day, previous)[1]))  # step: hold the size until the change
            coords.append((x, y))
            previous = point.size
        coords.append(xy(last, previous))
        line = " ".join(f"{x},{y}" for x, y in coords)
        base = charts.PAD + charts.INNER_HEIGHT
        area = f"{coords[0][0]},{base} {line} {coords[-1][0]},{base}"
        return cls(line, area, max_size=top, first_day=first, last_day=last, last_size=previous, days=span)


@dataclass(frozen=True)
class PreviewCondition:
    """A top-level condition of the live preview and how many contacts it alone matches."""

    label: str
    count: int


def problem_location(node_path: str, control: str) -> str:
    """``n.1.0``, ``value`` -> ``Condition 2.1, value``: where a problem is, as the page shows it."""
    position = ".".join(str(int(part) + 1) for part in node_path.split(".")[1:])
    where = f"Condition {position}" if position else "Conditions"
    return f"{where}, {control.replace('_', ' ')}" if control else where


def members_csv(segment: Segment) -> StreamingHttpResponse:
    """The members as a CSV download, streamed from a server-side cursor (constant memory)."""
    return csv_response(
        filename=f"segment-{segment.slug}.csv",
        header=MEMBER_CSV_HEADER,
        rows=selectors.segment_member_rows(segment=segment),
    )
