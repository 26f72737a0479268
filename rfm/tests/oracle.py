"""An independent RFM oracle: RFM §2 and the issue's re-score rule, in plain Python over plain data.

It shares nothing with the SQL under test (no scoring module, no group-map resolver): group maps
are re-typed here from RFM §3, scores are counted customer by customer, money is exact cents.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

KLAVIYO6 = {
    "champions": ["333", "332", "323"],
    "loyal": ["321", "322", "331", "232", "233"],
    "recent": ["312", "313", "311", "222", "223"],
    "needs_attention": ["213", "221", "123", "132", "133"],
    "at_risk": ["231", "212", "122", "131", "211"],
    "inactive": ["111", "112", "113", "121"],
}
CLASSIC11_ROWS = {  # R -> groups by F = 1..5
    5: ["new_customers", "potential_loyalist", "potential_loyalist", "champions", "champions"],
    4: ["promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"],
    3: ["about_to_sleep", "about_to_sleep", "needs_attention", "loyal", "loyal"],
    2: ["hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"],
    1: ["lost", "hibernating", "at_risk", "at_risk", "cant_lose"],
}


@dataclass(frozen=True)
class Event:
    contact_id: int
    goal_type: str | None
    event_name: str
    goal_value: Decimal | None
    occurred_at: dt.datetime
    deleted: bool = False


@dataclass(frozen=True)
class Result:
    recency_days: int | None
    frequency: int | None
    monetary_cents: int | None
    r: int | None
    f: int | None
    m: int | None
    group: str


def oracle_group(group_map: Any, r: int, f: int, m: int) -> str:
    if group_map == "klaviyo6":
        code = f"{r}{f}{m}"
        return next(name for name, codes in KLAVIYO6.items() if code in codes)
    if group_map == "classic11":
        return CLASSIC11_ROWS[r][f - 1]
    for rule in group_map:
        if (
            rule["r"][0] <= r <= rule["r"][1]
            and rule["f"][0] <= f <= rule["f"][1]
            and rule["m"][0] <= m <= rule["m"][1]
        ):
            return str(rule["name"])
    raise AssertionError(f"uncovered code {r}{f}{m}")


def _qualifying(config: dict[str, Any], event: Event, now: dt.datetime) -> bool:
    return (
        not event.deleted
        and event.goal_type in config["goal_types"]
        and (config["event_names"] is None or event.event_name in config["event_names"])
        and event.goal_value is not None
        and event.goal_value != 0
        and event.occurred_at <= now
    )


def raw_values(
    config: dict[str, Any], timezone_name: str, contact_ids: list[int], events: list[Event], now: dt.datetime
) -> tuple[dict[int, tuple[int, int, int]], set[int]]:
    """(customers -> (recency_days, frequency, monetary_cents), contacts that ever ordered)."""
    tz = zoneinfo.ZoneInfo(timezone_name)
    window = config["window_days"]
    start = None if window is None else now - dt.timedelta(hours=24 * window)
    raw: dict[int, tuple[int, int, int]] = {}
    ever: set[int] = set()
    for contact in contact_ids:
        mine = [e for e in events if e.contact_id == contact and _qualifying(config, e, now)]
        if any(e.goal_value is not None and e.goal_value > 0 for e in mine):
            ever.add(contact)
        in_window = [e for e in mine if start is None or e.occurred_at > start]
        orders = [e for e in in_window if e.goal_value is not None and e.goal_value > 0]
        if not orders:
            continue
        latest = max(e.occurred_at for e in orders)
        days = (now.astimezone(tz).date() - latest.astimezone(tz).date()).days
        cents = sum(int(Decimal(e.goal_value) * 100) for e in in_window if e.goal_value is not None)
        raw[contact] = (days, len(orders), cents)
    return raw, ever


def _better(dimension: int, a: int, b: int) -> bool:
    """Whether raw value a is strictly better than b (fewer days, more orders, more money)."""
    return a < b if dimension == 0 else a > b


def _threshold(dimension: int, value: int, cuts: list[int], scale: int) -> int:
    if dimension == 0:
        return scale - sum(1 for d in cuts if value > d)
    return 1 + sum(1 for c in cuts if value >= c)


def _cuts(config: dict[str, Any], name: str) -> list[int]:
    cuts = config[name]["cuts"]
    return [int(Decimal(str(c)) * 100) for c in cuts] if name == "monetary" else [int(c) for c in cuts]


NAMES = ("recency", "frequency", "monetary")


def _scored(
    config: dict[str, Any],
    contact_ids: list[int],
    raw: dict[int, tuple[int, int, int]],
    ever: set[int],
    quantile: Callable[[int, str, int], int],
) -> dict[int, Result]:
    """Each contact's result: without raw values lapsed (it ever bought) or prospect; otherwise a
    score per dimension, from the config's cuts (thresholds) or ``quantile(dimension, name,
    value)``, and the group of the three scores."""
    results: dict[int, Result] = {}
    for contact in contact_ids:
        if contact not in raw:
            results[contact] = Result(None, None, None, None, None, None, "lapsed" if contact in ever else "prospect")
            continue
        scores = []
        for dimension, name in enumerate(NAMES):
            value = raw[contact][dimension]
            if config[name]["mode"] == "quantile":
                scores.append(quantile(dimension, name, value))
            else:
                scores.append(_threshold(dimension, value, _cuts(config, name), config["scale"]))
        r, f, m = scores
        results[contact] = Result(*raw[contact], r, f, m, oracle_group(config["group_map"], r, f, m))
    return results


def full_run(
    config: dict[str, Any], timezone_name: str, contact_ids: list[int], events: list[Event], now: dt.datetime
) -> dict[int, Result]:
    """Every contact's result of a full run at ``now``."""
    raw, ever = raw_values(config, timezone_name, contact_ids, events, now)
    scale, n_customers = config["scale"], len(raw)

    def quantile(dimension: int, name: str, value: int) -> int:
        worse = sum(1 for other in raw.values() if _better(dimension, value, other[dimension]))
        return 1 + (scale * worse) // n_customers

    return _scored(config, contact_ids, raw, ever, quantile)


def cut_points(config: dict[str, Any], results: dict[int, Result]) -> dict[str, dict[str, Any]]:
    """Per quantile dimension: for each score s the worst raw value that received s, and the best value."""
    out: dict[str, dict[str, Any]] = {}
    for dimension, name in enumerate(NAMES):
        pairs: list[tuple[int, int]] = [
            (int((x.recency_days, x.frequency, x.monetary_cents)[dimension] or 0), int((x.r, x.f, x.m)[dimension] or 0))
            for x in results.values()
            if x.r is not None
        ]
        worst: dict[int, int] = {}
        for value, score in pairs:
            if score not in worst or _better(dimension, worst[score], value):
                worst[score] = value
        best: int | None = None
        for value, _ in pairs:
            if best is None or _better(dimension, value, best):
                best = value
        out[name] = {"worst": worst, "best": best}
    return out


def rescore(
    config: dict[str, Any],
    timezone_name: str,
    contact_ids: list[int],
    events: list[Event],
    now: dt.datetime,
    cuts: dict[str, dict[str, Any]],
) -> dict[int, Result]:
    """The issue's re-score of ``contact_ids`` at ``now`` against a full run's cut points."""
    raw, ever = raw_values(config, timezone_name, contact_ids, events, now)
    scale = config["scale"]

    def quantile(dimension: int, name: str, value: int) -> int:
        best, worst = cuts[name]["best"], cuts[name]["worst"]
        if best is None or _better(dimension, value, best):
            return scale
        reached = [s for s, cut in worst.items() if not _better(dimension, cut, value)]
        return max(reached) if reached else 1

    return _scored(config, contact_ids, raw, ever, quantile)
