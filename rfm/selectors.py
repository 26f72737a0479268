"""Reads for RFM, the pages' and the API's alike (one read each): models, their runs, the
distribution over groups and R x F cells with medians, transitions between any two instants
(from the change log), a group's or a cell's contacts, a contact's scores and history, the
dashboard's group sizes, and the preview of an unsaved configuration. Set-based SQL throughout:
each read is one statement whatever the number of contacts.

A contact's group at an instant t is read from the change log: the ``from_group`` of its first
change after t, or its current group when it has not changed since (the log is complete from the
model's first full run on, which records no transitions, so t must not be before that run).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Count, F, Max, Min, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from contacts.models import Contact
from events_platform.pagination import Page, paginate

from . import config as rfm_config
from . import groups, scoring
from .models import RfmGroupChange, RfmGroupTally, RfmModel, RfmRun, RfmScore
from .scoring import ModelSpec, q

PREVIEW_SAMPLE = 10


def rfm_model_get(*, workspace_id: str, slug: str) -> RfmModel | None:
    return RfmModel.objects.live().filter(workspace_id=workspace_id, slug=slug).first()


def rfm_model_list(*, workspace_id: str) -> QuerySet[RfmModel]:
    return RfmModel.objects.live().filter(workspace_id=workspace_id).order_by("slug")


@dataclass(frozen=True)
class RunDates:
    first: dt.datetime | None
    last: dt.datetime | None
    count: int


def run_dates(*, model: RfmModel) -> RunDates:
    """When the model's full runs happened: the first (the change log starts there) and the last."""
    row = RfmRun.objects.filter(model=model).aggregate(first=Min("as_of"), last=Max("as_of"), count=Count("id"))
    return RunDates(first=row["first"], last=row["last"], count=row["count"])


def first_run_at(*, model: RfmModel) -> dt.datetime | None:
    return run_dates(model=model).first


@dataclass(frozen=True)
class Cell:
    r: int
    f: int
    count: int
    monetary_cents: int


def cells(*, model: RfmModel) -> list[Cell]:
    """The live R x F cells with their customers and net money (``rfm_score_cell_idx``)."""
    rows = (
        RfmScore.objects.filter(model=model, r__isnull=False)
        .values("r", "f")
        .annotate(count=Count("id"), money=Sum("monetary_cents"))
        .order_by("r", "f")
    )
    return [Cell(r=row["r"], f=row["f"], count=row["count"], monetary_cents=int(row["money"] or 0)) for row in rows]


@dataclass(frozen=True)
class GroupFigures:
    group: str
    count: int
    monetary_cents: int
    median_recency_days: float | None
    median_frequency: float | None
    median_monetary_cents: float | None


def group_figures(*, model: RfmModel) -> dict[str, GroupFigures]:
    """Per stored group: its contacts, net money, and the median of each raw value, in one
    statement that runs on PostgreSQL and SQLite alike (the median is the mean of the one or two
    middle rows of each group's order, found with ``ROW_NUMBER()`` and the group's ``COUNT()``;
    prospect and lapsed rows have no raw values, so no medians)."""
    table, group = q(RfmScore._meta.db_table), q("group")
    sql = f"""
        WITH ranked AS (
            SELECT {group} AS g, recency_days, frequency, monetary_cents,
                   COUNT(*) OVER (PARTITION BY {group}) AS n,
                   ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY recency_days) AS rn_r,
                   ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY frequency) AS rn_f,
                   ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY monetary_cents) AS rn_m
            FROM {table} WHERE model_id = %s
        )
        SELECT g, COUNT(*), SUM(monetary_cents),
               AVG(CASE WHEN rn_r IN ((n + 1) / 2, (n + 2) / 2) THEN recency_days END),
               AVG(CASE WHEN rn_f IN ((n + 1) / 2, (n + 2) / 2) THEN frequency END),
               AVG(CASE WHEN rn_m IN ((n + 1) / 2, (n + 2) / 2) THEN monetary_cents END)
        FROM ranked GROUP BY g
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [model.pk])
        rows = cursor.fetchall()

    def number(value: Any) -> float | None:
        return None if value is None else float(value)

    return {
        g: GroupFigures(g, int(n), int(money or 0), number(med_r), number(med_f), number(med_m))
        for g, n, money, med_r, med_f, med_m in rows
    }


def unscored_contacts(*, model: RfmModel) -> int:
    """Contacts created since the last full run and not re-scored yet: prospects without a row."""
    return (
        Contact.objects.filter(workspace_id=model.workspace_id)
        .exclude(pk__in=RfmScore.objects.filter(model=model).values("contact_id"))
        .count()
    )


def most_common_frequency(*, model: RfmModel) -> tuple[int, int] | None:
    """The raw order count most customers share, and how many share it."""
    row = (
        RfmScore.objects.filter(model=model, frequency__isnull=False)
        .values("frequency")
        .annotate(count=Count("id"))
        .order_by("-count", "frequency")
        .first()
    )
    return (row["frequency"], row["count"]) if row else None


def _share(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def rfm_distribution(*, model: RfmModel) -> dict[str, Any]:
    """Groups (size, % of customers, % of net revenue, medians) and R x F cells of the stored
    scores, every contact of the workspace counted (those without a row yet as prospect)."""
    figures = group_figures(model=model)
    cell_rows = sorted(cells(model=model), key=lambda cell: (-cell.r, cell.f))
    unscored = unscored_contacts(model=model)
    by_group = {g: (fig.count, fig.monetary_cents) for g, fig in figures.items()}
    if unscored > 0:
        n, cents = by_group.get(groups.PROSPECT, (0, 0))
        by_group[groups.PROSPECT] = (n + unscored, cents)
    contacts = sum(n for n, _ in by_group.values())
    customers = sum(n for g, (n, _) in by_group.items() if g not in groups.UNSCORED_GROUPS)
    revenue = sum(c for g, (_, c) in by_group.items() if g not in groups.UNSCORED_GROUPS)
    order = groups.groups_of(model.group_map, model.scale)
    group_rows = []
    for group_id in [*order, *sorted(set(by_group) - set(order))]:
        n, cents = by_group.get(group_id, (0, 0))
        scored = group_id not in groups.UNSCORED_GROUPS
        fig = figures.get(group_id)
        medians = (fig.median_recency_days, fig.median_frequency, fig.median_monetary_cents) if fig else (None,) * 3
        group_rows.append(
            {
                "group": group_id,
                "name": groups.display_name(group_id),
                "count": n,
                "share_of_customers": _share(n, customers) if scored else None,
                "monetary_cents": cents,
                "share_of_revenue": _share(cents, revenue) if scored else None,
                "median": dict(zip(scoring.RAW_COLUMNS, medians, strict=True)),
            }
        )
    cell_list = [
        {
            "r": cell.r,
            "f": cell.f,
            "count": cell.count,
            "share_of_customers": _share(cell.count, customers),
            "monetary_cents": cell.monetary_cents,
            "share_of_revenue": _share(cell.monetary_cents, revenue),
            "average_monetary_cents": cell.monetary_cents // cell.count if cell.count else 0,
        }
        for cell in cell_rows
    ]
    return {
        "contacts": contacts,
        "customers": customers,
        "monetary_cents": revenue,
        "groups": group_rows,
        "cells": cell_list,
        "as_of": model.last_computed_at,
        "cutpoints": model.cutpoints,
    }


def end_of_day(day: dt.date, timezone_name: str) -> dt.datetime:
    """The last instant of a local day (a date in the API means the end of that day)."""
    tz = zoneinfo.ZoneInfo(timezone_name)
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz) - dt.timedelta(microseconds=1)


def _group_at(model: RfmModel, instant: dt.datetime) -> Subquery:
    """The scored contact's group at ``instant``: from_group of its first change after it."""
    later = RfmGroupChange.objects.filter(model=model, contact_id=OuterRef("contact_id"), changed_at__gt=instant)
    return Subquery(later.order_by("changed_at", "id").values("from_group")[:1])


def transitions(*, model: RfmModel, since: dt.datetime, until: dt.datetime | None) -> Counter[tuple[str, str]]:
    """Scored contacts by (group at ``since``, group at ``until``; None: now), read from the change log."""
    scores = RfmScore.objects.filter(model=model).annotate(then=Coalesce(_group_at(model, since), "group"))
    later = F("group") if until is None else Coalesce(_group_at(model, until), "group")
    scores = scores.annotate(later=later)
    rows = scores.values("then", "later").annotate(count=Count("id")).order_by()
    return Counter({(row["then"], row["later"]): row["count"] for row in rows})


def rfm_transitions(*, model: RfmModel, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Every contact of the workspace by (group as of ``start``, group as of ``end``); those
    without a row yet are prospect at both."""
    counts = transitions(model=model, since=start, until=end)
    unscored = unscored_contacts(model=model)
    if unscored > 0:
        counts[(groups.PROSPECT, groups.PROSPECT)] += unscored
    return [{"from": f, "to": t, "count": n} for (f, t), n in sorted(counts.items())]


def rfm_contacts_queryset(
    *, model: RfmModel, group: str | None = None, r: int | None = None, f: int | None = None
) -> QuerySet[RfmScore]:
    scores = RfmScore.objects.filter(model_id=model.pk).select_related("contact")
    if group is not None:
        scores = scores.filter(group=group)
    if r is not None:
        scores = scores.filter(r=r)
    if f is not None:
        scores = scores.filter(f=f)
    return scores


def rfm_contacts_page(
    *,
    model: RfmModel,
    limit: int,
    cursor: str | None,
    group: str | None = None,
    r: int | None = None,
    f: int | None = None,
) -> Page[RfmScore]:
    """One page of a group's or a cell's contacts, by contact id (the score indexes end with it)."""
    scores = rfm_contacts_queryset(model=model, group=group, r=r, f=f)
    return paginate(scores, key="contact_id", descending=False, limit=limit, after=cursor)


def rfm_contacts_rows(
    *, model: RfmModel, group: str | None = None, r: int | None = None, f: int | None = None
) -> Iterator[RfmScore]:
    """Every contact of a group or cell, streamed in chunks (the CSV export: constant memory)."""
    return rfm_contacts_queryset(model=model, group=group, r=r, f=f).order_by("contact_id").iterator(chunk_size=2000)


def cell_contacts(*, model: RfmModel, r: int, f: int, limit: int) -> QuerySet[RfmScore]:
    """A cell's customers, the most valuable first, with their contacts (one statement)."""
    return rfm_contacts_queryset(model=model, r=r, f=f).order_by("-monetary_cents", "contact_id")[:limit]


def contact_scores(*, contact: Contact) -> list[RfmScore]:
    """The contact's score under each live model of its workspace, with the model."""
    return list(
        RfmScore.objects.filter(contact=contact)
        .exclude(model__status=RfmModel.Status.DELETED)
        .select_related("model")
        .order_by("model__name")
    )


def contact_changes(*, contact: Contact, limit: int) -> list[RfmGroupChange]:
    """The contact's group changes under live models, newest first."""
    return list(
        RfmGroupChange.objects.filter(contact=contact)
        .exclude(model__status=RfmModel.Status.DELETED)
        .order_by("-changed_at", "-id")[:limit]
    )


@dataclass(frozen=True)
class ModelGroupSizes:
    model: RfmModel
    sizes: dict[str, int]


def group_sizes(*, workspace_id: str) -> list[ModelGroupSizes]:
    """Each computed model of the workspace (by name) with its live group sizes (two statements):
    the sums of the models' ``RfmGroupTally`` rows (a few per group once compacted, kept by
    triggers at every commit), not a count of the scores."""
    models = list(
        rfm_model_list(workspace_id=workspace_id).filter(last_computed_at__isnull=False).order_by("name", "slug")
    )
    rows = (
        RfmGroupTally.objects.filter(model__in=[m.pk for m in models])
        .values("model_id", "group")
        .annotate(count=Sum("contacts"))
        .filter(count__gt=0)
        .order_by()
    )
    sizes: dict[int, dict[str, int]] = {m.pk: {} for m in models}
    for row in rows:  # one row per (model, group): a few dozen at most
        sizes[row["model_id"]][row["group"]] = row["count"]
    return [ModelGroupSizes(model=m, sizes=sizes[m.pk]) for m in models]


@dataclass(frozen=True)
class Preview:
    population: int
    contacts: int
    group_counts: dict[str, int]
    cells: list[dict[str, int]]
    cutpoints: dict[str, Any]
    sample: list[dict[str, Any]]


def rfm_preview(
    *, workspace_id: str, timezone_name: str, canonical: dict[str, Any], now: dt.datetime | None = None
) -> Preview:
    """A full run of an unsaved configuration without writing: its group sizes, cells, cut
    points and 10 sample customers, aggregated in the database."""
    now = now or timezone.now()
    spec = ModelSpec(
        workspace_id=workspace_id,
        timezone=timezone_name,
        goal_types=canonical["goal_types"],
        event_names=canonical["event_names"],
        window_days=canonical["window_days"],
        scale=canonical["scale"],
        dimensions={d: canonical[d] for d in rfm_config.DIMENSIONS},
        group_map=canonical["group_map"],
    )
    select_sql, params = scoring.scores_sql(spec, now=now)
    base = f"WITH scored_all AS ({select_sql}) "
    contacts = q(Contact._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(base + scoring.figures_sql("scored_all"), params)
        figures = scoring.figures_of(cursor.fetchall(), spec)
        cursor.execute(
            base + "SELECT s.contact_id, s.recency_days, s.frequency, s.monetary_cents, s.r, s.f, s.m, s.group_id, "
            f"c.email FROM scored_all s JOIN {contacts} c ON c.id = s.contact_id WHERE s.r IS NOT NULL "
            f"ORDER BY s.monetary_cents DESC, s.contact_id LIMIT {PREVIEW_SAMPLE}",
            params,
        )
        sample_rows = cursor.fetchall()
    keys = ("contact_id", "recency_days", "frequency", "monetary_cents", "r", "f", "m", "group", "email")
    return Preview(
        population=figures["population"],
        contacts=sum(figures["group_counts"].values()),
        group_counts=figures["group_counts"],
        cells=figures["cells"],
        cutpoints=figures["cutpoints"],
        sample=[dict(zip(keys, row, strict=True)) for row in sample_rows],
    )
