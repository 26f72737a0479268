"""How an RFM model reads on its page: the R x F heatmap, the group tiles, the transition matrix,
the medians, the cut points and the warnings. Shaped from what ``selectors`` return; no query here.

Colours are classes (``heat-0`` .. ``heat-8``), never inline styles: the Content-Security-Policy
forbids those.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import groups
from .models import RfmModel
from .selectors import Cell, GroupFigures

HEAT_LEVELS = 8
SMALL_POPULATION = 200
COARSE_FREQUENCY_SHARE = 0.5
COLOR_BY = ("count", "monetary")


def money(cents: float | int | None) -> str:
    """Cents as an amount with 2 decimals and thousands separators (``1,234.50``)."""
    if cents is None:
        return "—"
    return f"{Decimal(round(cents)) / 100:,.2f}"


def share(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _heat(value: float, low: float, high: float) -> int:
    if high <= low:
        return HEAT_LEVELS if value else 0
    return 1 + round((HEAT_LEVELS - 1) * (value - low) / (high - low))


@dataclass(frozen=True)
class HeatCell:
    r: int
    f: int
    count: int
    share: float | None
    average_money: str
    heat: int
    group: str  # the cell's group when M does not split it, else ""
    selected: bool


@dataclass(frozen=True)
class Heatmap:
    rows: list[tuple[int, list[HeatCell]]]  # R from best (n) to 1, each with F 1..n
    scale: int
    color_by: str

    @classmethod
    def of(cls, model: RfmModel, cells: Iterable[Cell], *, color_by: str, selected: tuple[int, int] | None) -> Heatmap:
        by_rf = {(cell.r, cell.f): cell for cell in cells}
        population = sum(cell.count for cell in by_rf.values())
        code_groups = groups.resolve(model.group_map, model.scale)

        def value(cell: Cell) -> float:
            return cell.count if color_by == "count" else cell.monetary_cents / cell.count

        values = [value(cell) for cell in by_rf.values() if cell.count]
        low, high = (min(values), max(values)) if values else (0.0, 0.0)
        rows = []
        for r in range(model.scale, 0, -1):
            row = []
            for f in range(1, model.scale + 1):
                cell = by_rf.get((r, f), Cell(r, f, 0, 0))
                names = {code_groups[(r, f, m)] for m in range(1, model.scale + 1)}
                row.append(
                    HeatCell(
                        r=r,
                        f=f,
                        count=cell.count,
                        share=share(cell.count, population),
                        average_money=money(cell.monetary_cents / cell.count) if cell.count else "—",
                        heat=_heat(value(cell), low, high) if cell.count else 0,
                        group=groups.display_name(names.pop()) if len(names) == 1 else "",
                        selected=selected == (r, f),
                    )
                )
            rows.append((r, row))
        return cls(rows=rows, scale=model.scale, color_by=color_by)


@dataclass(frozen=True)
class GroupTile:
    group: str
    name: str
    count: int
    share_customers: float | None
    share_revenue: float | None
    change: int | None  # against 30 days ago; None when the log does not reach that far
    median_recency_days: float | None
    median_frequency: float | None
    median_money: str
    scored: bool
    segment_template: str  # the builder's template of this group ("Save as segment")

    @property
    def change_label(self) -> str:
        if self.change is None:
            return ""
        return f"+{self.change}" if self.change > 0 else ("±0" if self.change == 0 else str(self.change))


def group_tiles(
    model: RfmModel,
    figures: dict[str, GroupFigures],
    *,
    unscored: int,
    month: Counter[tuple[str, str]] | None,
) -> list[GroupTile]:
    """Every group of the map (best first), then prospect and lapsed; ``month`` is the transition
    count from 30 days ago to now (None: the model is younger than that)."""
    customers = sum(fig.count for group, fig in figures.items() if group not in groups.UNSCORED_GROUPS)
    revenue = sum(fig.monetary_cents for group, fig in figures.items() if group not in groups.UNSCORED_GROUPS)
    then: Counter[str] = Counter()
    if month is not None:
        for (before, _), count in month.items():
            then[before] += count
        then[groups.PROSPECT] += unscored  # created since, so not there 30 days ago: no change counted
    tiles = []
    for group in groups.groups_of(model.group_map, model.scale):
        fig = figures.get(group, GroupFigures(group, 0, 0, None, None, None))
        count = fig.count + (unscored if group == groups.PROSPECT else 0)
        scored = group not in groups.UNSCORED_GROUPS
        tiles.append(
            GroupTile(
                group=group,
                name=groups.display_name(group),
                count=count,
                share_customers=share(count, customers) if scored else None,
                share_revenue=share(fig.monetary_cents, revenue) if scored and revenue > 0 else None,
                change=(count - then[group]) if month is not None else None,
                median_recency_days=fig.median_recency_days,
                median_frequency=fig.median_frequency,
                median_money=money(fig.median_monetary_cents),
                scored=scored,
                segment_template=groups.segment_template_key(model.slug, group),
            )
        )
    return tiles


@dataclass(frozen=True)
class Matrix:
    groups: list[tuple[str, str]]  # (id, display name), rows and columns alike
    rows: list[tuple[str, str, list[int], int]]  # from id, name, counts per "to" group, row total
    flows: list[tuple[str, str, int]]  # (from name, to name, contacts) of the moves, largest first
    moved: int
    total: int


def transition_matrix(model: RfmModel, counts: Counter[tuple[str, str]]) -> Matrix:
    order = groups.groups_of(model.group_map, model.scale)
    order += sorted({g for pair in counts for g in pair} - set(order))  # groups of an older map
    named = [(group, groups.display_name(group)) for group in order]
    rows = []
    for source, name in named:
        line = [counts.get((source, target), 0) for target, _ in named]
        rows.append((source, name, line, sum(line)))
    moves = sorted(((count, a, b) for (a, b), count in counts.items() if a != b and count), key=lambda m: -m[0])
    flows = [(groups.display_name(a), groups.display_name(b), count) for count, a, b in moves]
    return Matrix(groups=named, rows=rows, flows=flows, moved=sum(m[0] for m in moves), total=sum(counts.values()))


@dataclass(frozen=True)
class CutRow:
    dimension: str
    mode: str
    unit: str
    values: list[str]  # per score 1..n: the worst value that received it
    cuts: str


UNIT_LABELS = {"days": "days since the last order", "orders": "orders", "cents": "net money"}


def _value(unit: str, value: int | None) -> str:
    if value is None:
        return "—"
    return money(value) if unit == "cents" else f"{value:,}"


def cut_rows(model: RfmModel) -> list[CutRow]:
    rows = []
    for dimension in ("recency", "frequency", "monetary"):
        entry: dict[str, Any] = model.cutpoints.get(dimension) or {}
        unit = entry.get("unit", "")
        cuts = entry.get("cuts")
        rows.append(
            CutRow(
                dimension=dimension.title(),
                mode="fixed cut points" if entry.get("mode") == "thresholds" else "quantiles",
                unit=UNIT_LABELS.get(unit, unit),
                values=[_value(unit, value) for value in entry.get("values", [])],
                cuts=" / ".join(_value(unit, cut) for cut in cuts) if cuts else "",
            )
        )
    return rows


def warnings(population: int, common_frequency: tuple[int, int] | None) -> list[str]:
    """Not a gate: the page still shows everything, with what a reader should know."""
    notes = []
    if 0 < population < SMALL_POPULATION:
        notes.append(
            f"Only {population} customer{'s' if population != 1 else ''} are scored: with fewer than "
            f"{SMALL_POPULATION}, quantile scores move a lot with each purchase."
        )
    if common_frequency and population:
        orders, count = common_frequency
        if count / population > COARSE_FREQUENCY_SHARE:
            bought = "once" if orders == 1 else f"{orders} times"
            notes.append(
                f"Frequency scores are coarse: {round(100 * count / population)}% of customers bought {bought}."
            )
    return notes


def cell_segment_tree(model: RfmModel, r: int, f: int) -> str:
    """The segment tree (RFM §7, rfm leaves) of a heatmap cell's contacts, as the builder loads it."""

    def leaf(field: str, value: int) -> dict[str, Any]:
        return {
            "kind": "leaf",
            "leaf": {"source": "rfm", "rfm": {"model": model.slug, "field": field, "operator": "eq", "value": value}},
        }

    tree = {"kind": "branch", "branch": {"operator": "and", "leaves": [leaf("r", r), leaf("f", f)]}}
    return json.dumps(tree)


@dataclass(frozen=True)
class ContactGroup:
    model_name: str
    model_slug: str
    group: str
    previous_group: str
    changed_at: Any
    code: str
    raw: str


@dataclass(frozen=True)
class ContactMove:
    model_name: str
    from_group: str
    to_group: str
    changed_at: Any


def contact_card(scores: Iterable[Any], changes: Iterable[Any]) -> dict[str, Any]:
    """The contact's group under each model (a contact created since the last run shows as
    prospect until its first re-score) and its recent moves, newest first."""
    names = {}
    rows = []
    for score in scores:
        names[score.model_id] = score.model.name
        scored = score.r is not None
        rows.append(
            ContactGroup(
                model_name=score.model.name,
                model_slug=score.model.slug,
                group=groups.display_name(score.group),
                previous_group=groups.display_name(score.previous_group) if score.previous_group else "",
                changed_at=score.group_changed_at,
                code=f"R{score.r} F{score.f} M{score.m}" if scored else "",
                raw=(
                    f"{score.recency_days} days since the last order, {score.frequency} "
                    f"order{'s' if score.frequency != 1 else ''}, {money(score.monetary_cents)} net"
                    if scored
                    else ""
                ),
            )
        )
    moves = [
        ContactMove(
            model_name=names.get(change.model_id, ""),
            from_group=groups.display_name(change.from_group),
            to_group=groups.display_name(change.to_group),
            changed_at=change.changed_at,
        )
        for change in changes
    ]
    return {"groups": rows, "moves": moves, "several_models": len(rows) > 1}


@dataclass(frozen=True)
class SizeBar:
    group: str
    name: str
    count: int
    share: float | None
    width: float  # of 100, for the bar's SVG rect


def size_bars(model: RfmModel, sizes: dict[str, int]) -> list[SizeBar]:
    """The dashboard's bars: every group of the map, best first, then prospect and lapsed."""
    order = groups.groups_of(model.group_map, model.scale)
    total = sum(sizes.values())
    top = max(sizes.values(), default=0)
    return [
        SizeBar(
            group=group,
            name=groups.display_name(group),
            count=sizes.get(group, 0),
            share=share(sizes.get(group, 0), total),
            width=round(100 * sizes.get(group, 0) / top, 1) if top else 0,
        )
        for group in order
    ]
