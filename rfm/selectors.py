"""Reads for RFM: models, the distribution over groups and R x F cells, transitions between any two
instants (from the change log), a group's or a cell's contacts, a contact's scores and history,
and the preview of an unsaved configuration. Set-based SQL throughout."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from contacts.models import Contact
from events_platform.pagination import Page, paginate

from . import config as rfm_config
from . import groups, scoring
from .models import RfmGroupChange, RfmModel, RfmRun, RfmScore
from .scoring import ModelSpec, q

PREVIEW_SAMPLE = 10


def rfm_model_get(*, workspace_id: str, slug: str) -> RfmModel | None:
    return RfmModel.objects.live().filter(workspace_id=workspace_id, slug=slug).first()


def rfm_model_list(*, workspace_id: str) -> QuerySet[RfmModel]:
    return RfmModel.objects.live().filter(workspace_id=workspace_id).order_by("slug")


def rfm_runs(*, model: RfmModel, limit: int = 90) -> list[RfmRun]:
    """The model's latest full runs, newest first (sizes over time)."""
    return list(RfmRun.objects.filter(model_id=model.pk).order_by("-as_of")[:limit])


def _median_rows(model: RfmModel, column: str) -> dict[str, float]:
    """Median of ``column`` per group (the mean of the two middle values for an even count)."""
    table, group = q(RfmScore._meta.db_table), q("group")
    sql = (
        f"SELECT group_id, AVG(v) FROM (SELECT {group} AS group_id, {column} AS v, "
        f"ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY {column}) AS rn, "
        f"COUNT(*) OVER (PARTITION BY {group}) AS n FROM {table} WHERE model_id = %s AND {column} IS NOT NULL) x "
        "WHERE rn IN ((n + 1) / 2, (n + 2) / 2) GROUP BY group_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [model.pk])
        return {g: float(v) for g, v in cursor.fetchall()}


def _share(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def rfm_distribution(*, model: RfmModel) -> dict[str, Any]:
    """Groups (size, % of customers, % of net revenue, medians) and R x F cells of the stored
    scores, every contact of the workspace counted (those without a row yet as prospect)."""
    table, group = q(RfmScore._meta.db_table), q("group")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {group}, COUNT(*), COALESCE(SUM(monetary_cents), 0) FROM {table} "
            f"WHERE model_id = %s GROUP BY {group}",
            [model.pk],
        )
        by_group = {g: (int(n), int(cents)) for g, n, cents in cursor.fetchall()}
        cursor.execute(
            f"SELECT r, f, COUNT(*), SUM(monetary_cents) FROM {table} WHERE model_id = %s AND r IS NOT NULL "
            "GROUP BY r, f ORDER BY r DESC, f",
            [model.pk],
        )
        cell_rows = cursor.fetchall()
    contacts = Contact.objects.filter(workspace_id=model.workspace_id).count()
    unscored = contacts - sum(n for n, _ in by_group.values())
    if unscored > 0:
        n, cents = by_group.get(groups.PROSPECT, (0, 0))
        by_group[groups.PROSPECT] = (n + unscored, cents)
    customers = sum(n for g, (n, _) in by_group.items() if g not in groups.UNSCORED_GROUPS)
    revenue = sum(c for g, (_, c) in by_group.items() if g not in groups.UNSCORED_GROUPS)
    medians = {dim: _median_rows(model, column) for dim, column in scoring.RAW_COLUMNS.items()}
    order = groups.groups_of(model.group_map, model.scale)
    group_rows = []
    for group_id in [*order, *sorted(set(by_group) - set(order))]:
        n, cents = by_group.get(group_id, (0, 0))
        scored = group_id not in groups.UNSCORED_GROUPS
        group_rows.append(
            {
                "group": group_id,
                "name": groups.display_name(group_id),
                "count": n,
                "share_of_customers": _share(n, customers) if scored else None,
                "monetary_cents": cents,
                "share_of_revenue": _share(cents, revenue) if scored else None,
                "median": {dim: medians[dim].get(group_id) for dim in scoring.RAW_COLUMNS},
            }
        )
    cells = [
        {
            "r": int(r),
            "f": int(f),
            "count": int(n),
            "share_of_customers": _share(int(n), customers),
            "monetary_cents": int(cents),
            "share_of_revenue": _share(int(cents), revenue),
            "average_monetary_cents": int(cents) // int(n) if n else 0,
        }
        for r, f, n, cents in cell_rows
    ]
    return {
        "contacts": contacts,
        "customers": customers,
        "monetary_cents": revenue,
        "groups": group_rows,
        "cells": cells,
        "as_of": model.last_computed_at,
        "cutpoints": model.cutpoints,
    }


def end_of_day(day: dt.date, timezone_name: str) -> dt.datetime:
    """The last instant of a local day (a date in the API means the end of that day)."""
    tz = zoneinfo.ZoneInfo(timezone_name)
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz) - dt.timedelta(microseconds=1)


def first_run_at(*, model: RfmModel) -> dt.datetime | None:
    return RfmRun.objects.filter(model_id=model.pk).order_by("as_of").values_list("as_of", flat=True).first()


def _group_as_of(at_param: str) -> str:
    """The group of score row ``s`` at an instant, from the change log: the last change up to it,
    else where the first later change started, else the current group."""
    log, group = q(RfmGroupChange._meta.db_table), q("group")
    return (
        f"COALESCE((SELECT c.to_group FROM {log} c WHERE c.model_id = s.model_id AND c.contact_id = s.contact_id "
        f"AND c.changed_at <= {at_param} ORDER BY c.changed_at DESC, c.id DESC LIMIT 1), "
        f"(SELECT c.from_group FROM {log} c WHERE c.model_id = s.model_id AND c.contact_id = s.contact_id "
        f"AND c.changed_at > {at_param} ORDER BY c.changed_at, c.id LIMIT 1), s.{group})"
    )


def rfm_transitions(*, model: RfmModel, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Contacts counted by (group as of ``start``, group as of ``end``)."""
    table = q(RfmScore._meta.db_table)
    sql = (
        f"SELECT from_group, to_group, COUNT(*) FROM (SELECT {_group_as_of('%s')} AS from_group, "
        f"{_group_as_of('%s')} AS to_group FROM {table} s WHERE s.model_id = %s) x "
        "GROUP BY from_group, to_group ORDER BY from_group, to_group"
    )
    at_start, at_end = scoring.dt_param(start), scoring.dt_param(end)
    with connection.cursor() as cursor:
        cursor.execute(sql, [at_start, at_start, at_end, at_end, model.pk])
        rows = [{"from": f, "to": t, "count": int(n)} for f, t, n in cursor.fetchall()]
    unscored = (
        Contact.objects.filter(workspace_id=model.workspace_id).count()
        - RfmScore.objects.filter(model_id=model.pk).count()
    )
    if unscored > 0:
        for row in rows:
            if row["from"] == row["to"] == groups.PROSPECT:
                row["count"] += unscored
                break
        else:
            rows.append({"from": groups.PROSPECT, "to": groups.PROSPECT, "count": unscored})
    return rows


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


def contact_rfm(*, contact: Contact) -> list[tuple[RfmModel, RfmScore | None]]:
    """The contact's scores under each live model of its workspace (None: prospect, not scored yet)."""
    models = list(rfm_model_list(workspace_id=contact.workspace_id))
    scores = {s.model_id: s for s in RfmScore.objects.filter(contact_id=contact.pk, model__in=models)}
    return [(model, scores.get(model.pk)) for model in models]


def contact_rfm_history(*, model: RfmModel, contact: Contact, limit: int = 50) -> list[RfmGroupChange]:
    return list(RfmGroupChange.objects.filter(model_id=model.pk, contact_id=contact.pk).order_by("-changed_at")[:limit])


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
    cut_selects = []
    for dimension, column in scoring.RAW_COLUMNS.items():
        score = scoring.SCORE_COLUMNS[dimension]
        worst = "MIN" if scoring.LARGER_IS_BETTER[dimension] else "MAX"
        cut_selects.append(
            f"SELECT '{dimension}' AS dim, {score} AS score, {worst}({column}) AS v FROM scored_all "
            f"WHERE {score} IS NOT NULL GROUP BY {score}"
        )
    with connection.cursor() as cursor:
        base = f"WITH scored_all AS ({select_sql}) "
        cursor.execute(base + "SELECT group_id, COUNT(*) FROM scored_all GROUP BY group_id", params)
        group_counts = {g: int(n) for g, n in cursor.fetchall()}
        cursor.execute(
            base + "SELECT r, f, COUNT(*), SUM(monetary_cents) FROM scored_all WHERE r IS NOT NULL "
            "GROUP BY r, f ORDER BY r, f",
            params,
        )
        cells = [
            {"r": int(r), "f": int(f), "count": int(n), "monetary_cents": int(c)} for r, f, n, c in cursor.fetchall()
        ]
        cursor.execute(base + " UNION ALL ".join(cut_selects), params)
        cut_rows = cursor.fetchall()
        cursor.execute(
            base + "SELECT contact_id, recency_days, frequency, monetary_cents, r, f, m, group_id FROM scored_all "
            f"WHERE r IS NOT NULL ORDER BY monetary_cents DESC, contact_id LIMIT {PREVIEW_SAMPLE}",
            params,
        )
        sample_rows = cursor.fetchall()
    cutpoints: dict[str, Any] = {d: {"values": [None] * spec.scale} for d in scoring.RAW_COLUMNS}
    for dim, score, value in cut_rows:
        cutpoints[dim]["values"][int(score) - 1] = int(value)
    emails = dict(Contact.objects.filter(pk__in=[row[0] for row in sample_rows]).values_list("pk", "email"))
    keys = ("contact_id", "recency_days", "frequency", "monetary_cents", "r", "f", "m", "group")
    sample = [{**dict(zip(keys, row, strict=True)), "email": emails.get(row[0], "")} for row in sample_rows]
    return Preview(
        population=sum(c["count"] for c in cells),
        contacts=sum(group_counts.values()),
        group_counts=group_counts,
        cells=cells,
        cutpoints=cutpoints,
        sample=sample,
    )
