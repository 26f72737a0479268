"""The scoring SQL (RFM §2, §6): one SELECT of every in-scope contact's raw values, scores and
group, which ``services`` diffs into the stored scores. Builds SQL text and parameters only.

Two ways to score a quantile dimension:

- a full run ranks: ``score = 1 + floor(n * W / N)`` with ``W = RANK() - 1`` over the "worse
  first" order (customers strictly worse), so equal values always get equal scores;
- an incremental re-score (after an event) compares against the last full run's cut points:
  for each score s the worst value that received s; a contact gets the highest s whose cut point
  its value reaches, n when it is better than everyone, 1 when it reaches none.

Threshold dimensions use their cuts either way. The query runs on PostgreSQL and SQLite alike
(local dates through Django's own per-backend date cast).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection

from contacts.models import Contact, CustomEvent
from events_platform.workspaces.planning import WORKSPACE_PARAM

from . import groups
from .config import QUANTILE, THRESHOLDS

# Per dimension: its raw column, and whether a larger raw value is better.
RAW_COLUMNS = {"recency": "recency_days", "frequency": "frequency", "monetary": "monetary_cents"}
LARGER_IS_BETTER = {"recency": False, "frequency": True, "monetary": True}
SCORE_COLUMNS = {"recency": "r", "frequency": "f", "monetary": "m"}


def q(name: str) -> str:
    return connection.ops.quote_name(name)


def dt_param(value: dt.datetime) -> Any:
    return CustomEvent._meta.get_field("occurred_at").get_db_prep_value(value, connection)


def money_cents(amount: str | Decimal) -> int:
    return int(Decimal(str(amount)) * 100)


@dataclass(frozen=True)
class ModelSpec:
    """What the SQL needs of a model (an ``RfmModel`` or an unsaved configuration)."""

    workspace_id: str
    timezone: str
    goal_types: list[str]
    event_names: list[str] | None
    window_days: int | None
    scale: int
    dimensions: dict[str, dict[str, Any]]  # recency / frequency / monetary -> {"mode", "cuts"?}
    group_map: str | list[dict[str, Any]]

    @classmethod
    def of(cls, model: Any) -> ModelSpec:
        return cls(
            workspace_id=model.workspace_id,
            timezone=model.timezone,
            goal_types=list(model.goal_types),
            event_names=list(model.event_names) if model.event_names is not None else None,
            window_days=model.window_days,
            scale=model.scale,
            dimensions={"recency": model.recency, "frequency": model.frequency, "monetary": model.monetary},
            group_map=model.group_map,
        )


def _in_list(column: str, values: list[Any]) -> tuple[str, list[Any]]:
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def _workspace(contact_ids: list[int] | None) -> str:
    """The workspace's placeholder: for a re-score of some contacts, a value the planner cannot
    estimate, so it reads them by id and their events by contact rather than the workspace's
    every purchase (events_platform/workspaces/planning.py)."""
    return "%s" if contact_ids is None else WORKSPACE_PARAM


def scope_condition(column: str, contact_ids: list[int] | None) -> tuple[str, list[Any]]:
    if contact_ids is None:
        return "", []
    if connection.vendor == "postgresql":
        return f" AND {column} = ANY(%s)", [list(contact_ids)]
    sql, params = _in_list(column, contact_ids)
    return f" AND {sql}", params


def _local_days_between(today: dt.date, instant_sql: str, tz: str) -> tuple[str, list[Any]]:
    """Whole calendar days from the local date of ``instant_sql`` to ``today`` in ``tz``."""
    local_date, params = connection.ops.datetime_cast_date_sql(instant_sql, (), tz)
    if connection.vendor == "postgresql":
        return f"(CAST(%s AS date) - {local_date})", [today.isoformat(), *params]
    return f"CAST(julianday(%s) - julianday({local_date}) AS INTEGER)", [today.isoformat(), *params]


def aggregates_sql(spec: ModelSpec, *, now: dt.datetime, contact_ids: list[int] | None) -> tuple[str, list[Any]]:
    """Per contact with qualifying events (RFM §2.1-4): frequency, net monetary in cents and
    recency in the window, and whether it ever ordered (any time up to T: lapsed or prospect)."""
    events = q(CustomEvent._meta.db_table)
    goal_sql, goal_params = _in_list("e.goal_type", spec.goal_types)
    where = [
        f"e.workspace_id = {_workspace(contact_ids)} AND e.deleted_at IS NULL AND {goal_sql} AND e.goal_value <> 0 "
        "AND e.occurred_at <= %s"
    ]
    params: list[Any] = [spec.workspace_id, *goal_params, dt_param(now)]
    if spec.event_names is not None:
        names_sql, names_params = _in_list("e.event_name", spec.event_names)
        where.append(names_sql)
        params += names_params
    scope_sql, scope_params = scope_condition("e.contact_id", contact_ids)
    params += scope_params
    if spec.window_days is None:
        window, window_params = "1 = 1", []
    else:
        window, window_params = "e.occurred_at > %s", [dt_param(now - dt.timedelta(days=spec.window_days))]
    if connection.vendor == "postgresql":
        # Exact: numeric with 2 decimals summed, then in cents once per contact.
        money = f"CAST(SUM(CASE WHEN {window} THEN e.goal_value ELSE 0 END) * 100 AS BIGINT)"
    else:
        # SQLite stores decimals as floating point: each value in whole cents first, summed exactly.
        money = f"SUM(CASE WHEN {window} THEN CAST(ROUND(e.goal_value * 100) AS BIGINT) ELSE 0 END)"
    inner = (
        "SELECT e.contact_id, "
        f"SUM(CASE WHEN e.goal_value > 0 AND {window} THEN 1 ELSE 0 END) AS frequency, "
        f"{money} AS monetary_cents, "
        f"MAX(CASE WHEN e.goal_value > 0 AND {window} THEN e.occurred_at END) AS last_order_at, "
        "MAX(CASE WHEN e.goal_value > 0 THEN 1 ELSE 0 END) AS ever_ordered "
        f"FROM {events} e WHERE {' AND '.join(where)}{scope_sql} GROUP BY e.contact_id"
    )
    # The window parameters come first: they sit in the SELECT list, before the WHERE clause.
    return inner, [*window_params, *window_params, *window_params, *params]


def _threshold_score(dimension: str, column: str, cuts: list[Any], scale: int) -> str:
    # Cuts are validated numbers (whole days/orders; money as cents): inlined as literals.
    if dimension == "recency":
        return f"({scale} - (" + " + ".join(f"CASE WHEN {column} > {int(c)} THEN 1 ELSE 0 END" for c in cuts) + "))"
    values = [money_cents(c) if dimension == "monetary" else int(c) for c in cuts]
    return "(1 + " + " + ".join(f"CASE WHEN {column} >= {v} THEN 1 ELSE 0 END" for v in values) + ")"


def _cutpoint_score(dimension: str, column: str, cut: dict[str, Any], scale: int) -> str:
    """Score against stored cut points (the issue's rule for re-scoring without re-ranking)."""
    larger = LARGER_IS_BETTER[dimension]
    better, reaches = (">", ">=") if larger else ("<", "<=")
    values: list[int | None] = cut.get("values") or []
    best = cut.get("best")
    whens = []
    if best is None:
        whens.append(f"WHEN 1 = 1 THEN {scale}")  # nobody scored: better than everyone
    else:
        whens.append(f"WHEN {column} {better} {int(best)} THEN {scale}")
    for score in range(scale, 1, -1):
        value = values[score - 1] if len(values) >= score else None
        if value is not None:
            whens.append(f"WHEN {column} {reaches} {int(value)} THEN {score}")
    return f"(CASE {' '.join(whens)} ELSE 1 END)"


def _group_case(spec: ModelSpec, prefix: str) -> tuple[str, list[Any]]:
    by_group: dict[str, list[int]] = {}
    for (r, f, m), group in groups.resolve(spec.group_map, spec.scale).items():
        by_group.setdefault(group, []).append(r * 100 + f * 10 + m)
    whens, params = [], []
    for group, codes in by_group.items():
        code = f"({prefix}r * 100 + {prefix}f * 10 + {prefix}m)"
        whens.append(f"WHEN {code} IN ({', '.join(str(c) for c in sorted(codes))}) THEN %s")
        params.append(group)
    return f"CASE {' '.join(whens)} END", params


def scores_sql(
    spec: ModelSpec,
    *,
    now: dt.datetime,
    contact_ids: list[int] | None = None,
    cutpoints: dict[str, Any] | None = None,
) -> tuple[str, list[Any]]:
    """``SELECT contact_id, recency_days, frequency, monetary_cents, r, f, m, group_id`` for every
    contact of the workspace (or of ``contact_ids``): ranked when ``cutpoints`` is None (a full
    run), else scored against them (an incremental re-score)."""
    contacts = q(Contact._meta.db_table)
    agg_sql, agg_params = aggregates_sql(spec, now=now, contact_ids=contact_ids)
    today = now.astimezone(zoneinfo.ZoneInfo(spec.timezone)).date()
    days_sql, days_params = _local_days_between(today, "a.last_order_at", spec.timezone)
    raw = (
        f"SELECT a.contact_id, {days_sql} AS recency_days, a.frequency, a.monetary_cents "
        "FROM agg a WHERE a.frequency > 0"
    )
    ranks = []
    score_exprs = {}
    for dimension, column in RAW_COLUMNS.items():
        setting = spec.dimensions[dimension]
        if setting["mode"] != QUANTILE:
            score_exprs[dimension] = _threshold_score(dimension, column, setting["cuts"], spec.scale)
        elif cutpoints is None:
            order = "" if LARGER_IS_BETTER[dimension] else " DESC"
            ranks.append(f"RANK() OVER (ORDER BY {column}{order}) - 1 AS w_{column}")
            score_exprs[dimension] = f"(1 + ({spec.scale} * w_{column}) / n_customers)"
        else:
            score_exprs[dimension] = _cutpoint_score(dimension, column, cutpoints.get(dimension) or {}, spec.scale)
    ranked = (
        "SELECT contact_id, recency_days, frequency, monetary_cents"
        + "".join(f", {rank}" for rank in ranks)
        + (", COUNT(*) OVER () AS n_customers" if ranks else "")
        + " FROM raw"
    )
    scored = (
        "SELECT contact_id, recency_days, frequency, monetary_cents, "
        f"{score_exprs['recency']} AS r, {score_exprs['frequency']} AS f, {score_exprs['monetary']} AS m FROM ranked"
    )
    group_case, group_params = _group_case(spec, "s.")
    contact_scope, contact_scope_params = scope_condition("c.id", contact_ids)
    sql = (
        f"WITH agg AS ({agg_sql}), raw AS ({raw}), ranked AS ({ranked}), scored AS ({scored}) "
        "SELECT c.id AS contact_id, s.recency_days, s.frequency, s.monetary_cents, s.r, s.f, s.m, "
        f"CASE WHEN s.contact_id IS NOT NULL THEN ({group_case}) "
        "WHEN a.ever_ordered = 1 THEN %s ELSE %s END AS group_id "
        f"FROM {contacts} c LEFT JOIN agg a ON a.contact_id = c.id LEFT JOIN scored s ON s.contact_id = c.id "
        f"WHERE c.workspace_id = {_workspace(contact_ids)}{contact_scope}"
    )
    params = [
        *agg_params,
        *days_params,
        *group_params,
        groups.LAPSED,
        groups.PROSPECT,
        spec.workspace_id,
        *contact_scope_params,
    ]
    return sql, params


# ---------------------------------------------------------------------------------------
# What a full run records (and a preview shows), from the scored rows themselves
# ---------------------------------------------------------------------------------------

# Typed NULLs: PostgreSQL types a UNION's columns from its first branch.
_NO_TEXT, _NO_INT = "CAST(NULL AS text)", "CAST(NULL AS bigint)"
UNITS = {"recency": "days", "frequency": "orders", "monetary": "cents"}


def figures_sql(source: str) -> str:
    """One SELECT of a scoring result's figures, read from ``source`` (a relation with the
    columns of ``scores_sql``: the scoring statement's own CTE, or a temporary table holding it):
    per dimension and score the worst and the best raw value and the count, the R x F cells with
    their customers and net money, and the contacts per group. Rows ``(kind, group, a, b, v1,
    v2, n, s)``, read by ``figures_of``."""
    parts = []
    for dimension, column in RAW_COLUMNS.items():
        score = SCORE_COLUMNS[dimension]
        worst, best = ("MIN", "MAX") if LARGER_IS_BETTER[dimension] else ("MAX", "MIN")
        parts.append(
            f"SELECT '{dimension}' AS kind, {_NO_TEXT} AS grp, CAST({score} AS integer) AS a, {_NO_INT} AS b, "
            f"CAST({worst}({column}) AS bigint) AS v1, CAST({best}({column}) AS bigint) AS v2, COUNT(*) AS n, "
            f"{_NO_INT} AS s FROM {source} WHERE {score} IS NOT NULL GROUP BY {score}"
        )
    parts.append(
        f"SELECT 'cell', {_NO_TEXT}, CAST(r AS integer), CAST(f AS integer), {_NO_INT}, {_NO_INT}, COUNT(*), "
        f"CAST(SUM(monetary_cents) AS bigint) FROM {source} WHERE r IS NOT NULL GROUP BY r, f"
    )
    parts.append(
        f"SELECT 'group', CAST(group_id AS text), {_NO_INT}, {_NO_INT}, {_NO_INT}, {_NO_INT}, COUNT(*), {_NO_INT} "
        f"FROM {source} GROUP BY group_id"
    )
    return " UNION ALL ".join(parts)


def figures_of(rows: list[tuple[Any, ...]], spec: ModelSpec) -> dict[str, Any]:
    """``figures_sql``'s rows as a run records them: cut points (per dimension, for each score
    the worst value that received it, and the best value overall; the cuts of a thresholds
    dimension), group sizes, R x F cells and the population (customers scored)."""
    cutpoints: dict[str, Any] = {}
    for dimension, setting in spec.dimensions.items():
        mine = [row for row in rows if row[0] == dimension]
        by_score = {int(row[2]): int(row[4]) for row in mine}
        bests = [int(row[5]) for row in mine]
        entry: dict[str, Any] = {
            "mode": setting["mode"],
            "unit": UNITS[dimension],
            "values": [by_score.get(score) for score in range(1, spec.scale + 1)],
            "best": (max if LARGER_IS_BETTER[dimension] else min)(bests) if bests else None,
        }
        if setting["mode"] == THRESHOLDS:
            entry["cuts"] = [money_cents(c) if dimension == "monetary" else int(c) for c in setting["cuts"]]
        cutpoints[dimension] = entry
    cells = sorted(
        (
            {"r": int(row[2]), "f": int(row[3]), "count": int(row[6]), "monetary_cents": int(row[7])}
            for row in rows
            if row[0] == "cell"
        ),
        key=lambda cell: (cell["r"], cell["f"]),
    )
    return {
        "cutpoints": cutpoints,
        "group_counts": {row[1]: int(row[6]) for row in rows if row[0] == "group"},
        "cells": cells,
        "population": sum(int(row[6]) for row in rows if row[0] == "recency"),
    }
