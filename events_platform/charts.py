"""Charts drawn on the server as SVG: the geometry, computed here, written out by templates.

No JavaScript and no inline style (the Content-Security-Policy forbids both): a chart is an
``<svg viewBox>`` whose shapes carry presentation attributes, and each bar a ``<title>`` that the
browser shows on hover. Every chart shares one frame (640 x 160 user units, 28 of padding) and is
stretched to the card's width by CSS, so it fits a 390 px phone as well as a desktop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

WIDTH, HEIGHT, PAD = 640, 160, 28
INNER_WIDTH, INNER_HEIGHT = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
BAR_GAP = 0.2  # share of a day's slot left empty between two bars
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def x_of(offset: float, span: float) -> float:
    """The x of ``offset`` along a span of ``span`` (days, slots) across the frame's inner width."""
    return round(PAD + INNER_WIDTH * offset / max(span, 1), 1)


def y_of(value: float, low: float, high: float) -> float:
    """The y of ``value`` on a vertical scale from ``low`` (the bottom) to ``high`` (the top)."""
    return round(PAD + INNER_HEIGHT * (high - value) / max(high - low, 1e-9), 1)


@dataclass(frozen=True)
class Bar:
    day: date
    value: int | Decimal
    x: float
    y: float
    width: float
    height: float

    @property
    def negative(self) -> bool:
        return self.value < 0

    @property
    def day_label(self) -> str:
        """``Tue 1 Dec 2026``: what the ``date:"D j M Y"`` filter writes in this English-only app."""
        return f"{DAY_NAMES[self.day.weekday()]} {self.day.day} {MONTH_NAMES[self.day.month - 1]} {self.day.year}"

    @property
    def value_label(self) -> str:
        """``1,234`` for a count, ``-1,234.50`` for money: what ``intcomma`` and
        ``floatformat:"2g"`` write for them. A chart has 90 bars and a page two charts: the
        template filters (locale lookups and translations on every call) cost more than the
        rest of the dashboard's rendering together."""
        return f"{self.value:,.2f}" if isinstance(self.value, Decimal) else f"{self.value:,}"


@dataclass(frozen=True)
class DailyBars:
    """One bar per day, up from the zero line (down for a negative value, a refund-heavy day)."""

    bars: list[Bar]
    first_day: date
    last_day: date
    high: int | Decimal
    low: int | Decimal
    total: int | Decimal
    zero_y: float
    width: int = WIDTH
    height: int = HEIGHT
    pad: int = PAD

    @property
    def top_y(self) -> int:
        return PAD

    @property
    def right_x(self) -> int:
        return WIDTH - PAD

    @property
    def empty(self) -> bool:
        return not any(bar.value for bar in self.bars)

    @classmethod
    def of(cls, series: Sequence[tuple[date, int | Decimal]]) -> DailyBars:
        """``series``: consecutive days with their values, oldest first (at least one day)."""
        values = [value for _, value in series]
        high, low = max([*values, 0]), min([*values, 0])
        if high == low:  # nothing at all: draw the empty frame on a 0..1 scale
            high = 1
        slot = INNER_WIDTH / len(series)
        zero_y = y_of(float(0), float(low), float(high))
        bars = []
        for index, (day, value) in enumerate(series):
            y = y_of(float(value), float(low), float(high))
            bars.append(
                Bar(
                    day=day,
                    value=value,
                    x=round(x_of(index, len(series)) + slot * BAR_GAP / 2, 1),
                    y=min(y, zero_y),
                    width=round(slot * (1 - BAR_GAP), 1),
                    height=round(abs(zero_y - y), 1),
                )
            )
        return cls(
            bars=bars,
            first_day=series[0][0],
            last_day=series[-1][0],
            high=max(values),
            low=min(values),
            total=sum(values, type(values[0])(0)),
            zero_y=zero_y,
        )
