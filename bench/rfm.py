"""Figure 7: RFM, on the bench dataset.

- full run of a classic11 model (all quantile, 365 days): ``rfm_model_compute`` in-process vs a
  hand-written ``RANK()`` statement applying the same diff (scores upsert, change log, timeline)
  for a second model, each from empty, alternating, median of 3; the stored scores must be equal;
  target app <= 1.3x raw. The Python memory a run allocates (tracemalloc peak) is reported at
  both sizes: one statement, so it stays flat however many contacts. It is measured in one more
  app run after the timed ones: tracing every allocation slows Python down (about 10 ms a run
  at the small size), a cost the raw statement, timed without it, would not share;
- purchase -> new group: a first purchase through ``customEvents.upsert`` (gunicorn, the Celery
  worker draining the refresh queue) until the buyer's score row shows a scored group; p50 < 1 s.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import time
import tracemalloc
from typing import Any

from tqdm import tqdm

FULL_RUN_TARGET = 1.3
LATENCY_TARGET_MS = 1000.0
REPETITIONS = 3
APP_SLUG, RAW_SLUG = "bench_rfm", "raw_rfm"
CLASSIC11 = {
    5: ("new_customers", "potential_loyalist", "potential_loyalist", "champions", "champions"),
    4: ("promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"),
    3: ("about_to_sleep", "about_to_sleep", "needs_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"),
    1: ("lost", "hibernating", "at_risk", "at_risk", "cant_lose"),
}


def _log(message: str) -> None:
    tqdm.write(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr)


def raw_full_run(raw: Any, *, model_pk: int, workspace_id: str, now: dt.datetime, first: bool) -> None:
    """The best full run by hand: one statement (aggregate, RANK per dimension, the grid as a
    VALUES join, then the diff into scores, change log and timeline), as a DBA would write it."""
    grid = ", ".join(f"({r}, {f + 1}, '{group}')" for r, row in CLASSIC11.items() for f, group in enumerate(row))
    raw.execute(
        f"""
        WITH agg AS (
            SELECT contact_id,
                   count(*) FILTER (WHERE goal_value > 0 AND occurred_at > %(start)s) AS frequency,
                   sum(goal_value) FILTER (WHERE occurred_at > %(start)s) AS monetary,
                   max(occurred_at) FILTER (WHERE goal_value > 0 AND occurred_at > %(start)s) AS last_order,
                   bool_or(goal_value > 0) AS ever
            FROM contacts_customevent
            WHERE workspace_id = %(ws)s AND deleted_at IS NULL AND goal_type = 'purchase'
              AND goal_value <> 0 AND occurred_at <= %(now)s
            GROUP BY contact_id
        ), ranked AS (
            SELECT contact_id, days, frequency, cents,
                   1 + (5 * (rank() OVER (ORDER BY days DESC) - 1)) / count(*) OVER () AS r,
                   1 + (5 * (rank() OVER (ORDER BY frequency) - 1)) / count(*) OVER () AS f,
                   1 + (5 * (rank() OVER (ORDER BY cents) - 1)) / count(*) OVER () AS m
            FROM (SELECT contact_id, frequency, (monetary * 100)::bigint AS cents,
                         %(today)s::date - (last_order AT TIME ZONE 'UTC')::date AS days
                  FROM agg WHERE frequency > 0) c
        ), new AS MATERIALIZED (
            SELECT c.id AS contact_id, k.days, k.frequency, k.cents, k.r, k.f, k.m,
                   CASE WHEN k.contact_id IS NOT NULL THEN g.name WHEN a.ever THEN 'lapsed' ELSE 'prospect' END AS grp
            FROM contacts_contact c
            LEFT JOIN agg a ON a.contact_id = c.id
            LEFT JOIN ranked k ON k.contact_id = c.id
            LEFT JOIN (VALUES {grid}) AS g (r, f, name) ON g.r = k.r AND g.f = k.f
            WHERE c.workspace_id = %(ws)s
        ), changes AS MATERIALIZED (
            SELECT n.contact_id, coalesce(o."group", 'prospect') AS from_group, n.grp AS to_group
            FROM new n LEFT JOIN rfm_rfmscore o ON o.model_id = %(model)s AND o.contact_id = n.contact_id
            WHERE CASE WHEN o.contact_id IS NULL THEN NOT %(first)s AND n.grp <> 'prospect' ELSE o."group" <> n.grp END
        ), written AS (
            INSERT INTO rfm_rfmscore AS s (model_id, contact_id, recency_days, frequency, monetary_cents, r, f, m,
                                           "group", previous_group, group_changed_at, computed_at)
            SELECT %(model)s, n.contact_id, n.days, n.frequency, n.cents, n.r, n.f, n.m, n.grp, '', NULL, %(now)s
            FROM new n
            ON CONFLICT (model_id, contact_id) DO UPDATE SET
                recency_days = excluded.recency_days, frequency = excluded.frequency,
                monetary_cents = excluded.monetary_cents, r = excluded.r, f = excluded.f, m = excluded.m,
                "group" = excluded."group",
                previous_group = CASE WHEN s."group" <> excluded."group" THEN s."group" ELSE s.previous_group END,
                group_changed_at = CASE WHEN s."group" <> excluded."group" THEN excluded.computed_at
                                        ELSE s.group_changed_at END,
                computed_at = excluded.computed_at
            WHERE (s.recency_days, s.frequency, s.monetary_cents, s.r, s.f, s.m, s."group")
                  IS DISTINCT FROM (excluded.recency_days, excluded.frequency, excluded.monetary_cents,
                                    excluded.r, excluded.f, excluded.m, excluded."group")
        ), log AS (
            INSERT INTO rfm_rfmgroupchange (model_id, contact_id, from_group, to_group, changed_at, run_id)
            SELECT %(model)s, contact_id, from_group, to_group, %(now)s, NULL FROM changes
        )
        INSERT INTO contacts_timelineentry (workspace_id, contact_id, kind, operation, entity_type, entity_id,
                                            custom_event_id, changes, created_at, db_created_at)
        SELECT %(ws)s, contact_id, 'rfm.group_changed', 'insert', 'rfm_model', %(slug)s, NULL,
               jsonb_build_object('group', jsonb_build_object('old', from_group, 'new', to_group)), %(now)s, %(now)s
        FROM changes
        """,
        {
            "ws": workspace_id,
            "now": now,
            "start": now - dt.timedelta(days=365),
            "today": now.date().isoformat(),
            "model": model_pk,
            "first": first,
            "slug": RAW_SLUG,
        },
    )


def _scores(raw: Any, model_pk: int) -> dict[int, tuple[Any, ...]]:
    rows = raw.execute(
        'SELECT contact_id, recency_days, frequency, monetary_cents, r, f, m, "group" FROM rfm_rfmscore '
        "WHERE model_id = %s",
        [model_pk],
    )
    return {row[0]: row[1:] for row in rows}


def _reset(raw: Any, workspace_id: str) -> None:
    raw.execute(
        "DELETE FROM contacts_timelineentry WHERE workspace_id = %s AND kind = 'rfm.group_changed'", [workspace_id]
    )
    # Raw SQL: the database has no ON DELETE CASCADE (Django cascades), so dependants go first.
    models = "SELECT id FROM rfm_rfmmodel WHERE workspace_id = %s"
    for table in ("rfm_rfmgroupchange", "rfm_rfmscore", "rfm_rfmrun"):
        raw.execute(f"DELETE FROM {table} WHERE model_id IN ({models})", [workspace_id])
    raw.execute("DELETE FROM rfm_rfmmodel WHERE workspace_id = %s", [workspace_id])


def figure_full_run(raw: Any, workspace_id: str) -> dict[str, Any]:
    from django.utils import timezone

    from bench.measure import app_vs_raw
    from rfm.models import RfmModel
    from rfm.services import rfm_model_compute

    _reset(raw, workspace_id)
    config: dict[str, Any] = {"goal_types": ["purchase"], "window_days": 365, "scale": 5, "group_map": "classic11"}
    config |= {dimension: {"mode": "quantile"} for dimension in ("recency", "frequency", "monetary")}
    app_model = RfmModel.objects.create(
        workspace_id=workspace_id, slug=APP_SLUG, name="bench", timezone="UTC", **config
    )
    raw_model = RfmModel.objects.create(
        workspace_id=workspace_id, slug=RAW_SLUG, name="raw", timezone="UTC", status="failed", **config
    )

    def from_empty() -> None:
        # Each run starts from empty on both sides: every contact inserted, as a model's first run.
        raw.execute("DELETE FROM rfm_rfmscore WHERE model_id = ANY(%s)", [[app_model.pk, raw_model.pk]])
        raw.execute("DELETE FROM rfm_rfmrun WHERE model_id = %s", [app_model.pk])

    def app_run(now: Any) -> Any:
        run = rfm_model_compute(model_pk=app_model.pk, now=now)
        if run is None:
            raise RuntimeError(f"rfm_model_compute failed: {RfmModel.objects.get(pk=app_model.pk).last_error}")
        return run

    app_times, raw_times = [], []
    population = 0
    for repetition in tqdm(range(REPETITIONS), desc="rfm full runs", file=sys.stderr):
        from_empty()
        now = timezone.now()
        began = time.perf_counter()
        population = app_run(now).population
        app_times.append(time.perf_counter() - began)
        began = time.perf_counter()
        raw_full_run(raw, model_pk=raw_model.pk, workspace_id=workspace_id, now=now, first=True)
        raw_times.append(time.perf_counter() - began)
        _log(f"rfm full run {repetition + 1}: app {app_times[-1]:.2f} s, raw {raw_times[-1]:.2f} s")
    app_scores, raw_scores = _scores(raw, app_model.pk), _scores(raw, raw_model.pk)
    from_empty()  # the memory run (untimed), from empty like the others
    tracemalloc.start()
    app_run(timezone.now())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    equal = app_scores == raw_scores
    app_s, raw_s = statistics.median(app_times), statistics.median(raw_times)
    result = {
        "contacts": len(app_scores),
        "customers": population,
        **app_vs_raw(app_times, raw_times),
        "met": app_s <= FULL_RUN_TARGET * raw_s,
        "equal": equal,
        "python_peak_kib": round(peak / 1024, 1),
        "diff": "" if equal else f"{sum(1 for k in app_scores if app_scores[k] != raw_scores.get(k))} rows differ",
    }
    _log(
        f"rfm full run: app {app_s:.2f} s, raw {raw_s:.2f} s ({result['ratio']}x), "
        f"{'same' if equal else 'DIFFERENT'} scores, Python peak {result['python_peak_kib']} KiB"
    )
    raw.execute("DELETE FROM rfm_rfmscore WHERE model_id = %s", [raw_model.pk])
    raw.execute("DELETE FROM rfm_rfmgroupchange WHERE model_id = %s", [raw_model.pk])
    raw.execute("DELETE FROM rfm_rfmmodel WHERE id = %s", [raw_model.pk])
    return result


def _scored_group(raw: Any, model_pk: int, workspace_id: str, email: str) -> Any:
    """The score row (its group) of ``email`` under the model once it has a scored group, else None."""
    return raw.execute(
        'SELECT s."group" FROM rfm_rfmscore s JOIN contacts_contact c ON c.id = s.contact_id '
        "WHERE s.model_id = %s AND c.workspace_id = %s AND c.email = %s AND s.r IS NOT NULL",
        [model_pk, workspace_id, email],
    ).fetchone()


def figure_latency(raw: Any, port: int, api_key: str, workspace_id: str, run_id: str, count: int) -> dict[str, Any]:
    """First purchases of new contacts, each timed from the upsert response until its score row
    under the computed model shows a scored group (new_customers for a first order today)."""
    from bench.measure import Client, p50_p99_ms, seconds_until

    (model_pk,) = raw.execute(
        "SELECT id FROM rfm_rfmmodel WHERE workspace_id = %s AND slug = %s", [workspace_id, APP_SLUG]
    ).fetchone()
    client = Client(port, api_key)
    latencies: list[float] = []
    groups: dict[str, int] = {}
    timeouts = 0
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    for i in tqdm(range(count), desc="rfm latency", file=sys.stderr):
        email = f"rfm-{run_id}-{i}@bench.example"
        body = {
            "workspace_id": workspace_id,
            "email": email,
            "event_name": "order.completed",
            "external_id": f"rfm-{run_id}-{i}",
            "occurred_at": now,
            "goal_type": "purchase",
            "goal_value": 42.0,
        }
        client.post_json("/api/customEvents.upsert", json.dumps(body).encode())
        seconds, row = seconds_until(_scored_group, raw, model_pk, workspace_id, email)
        latencies.append(seconds)
        if row is None:
            timeouts += 1
        else:
            groups[row[0]] = groups.get(row[0], 0) + 1
    client.close()
    result: dict[str, Any] = {**p50_p99_ms(latencies), "timeouts": timeouts, "groups": groups}
    result["met"] = result["p50_ms"] < LATENCY_TARGET_MS and not timeouts
    _log(f"rfm latency: p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms, groups {groups}")
    return result


def cleanup(raw: Any, workspace_id: str) -> None:
    _reset(raw, workspace_id)


def table_rows(rfm: dict[str, Any]) -> list[str]:
    rows = []
    full = rfm.get("full_run")
    if full:
        same = "same scores" if full["equal"] else f"**DIFFERENT scores** ({full['diff']})"
        rows.append(
            f"| RFM full run, classic11 all quantile ({full['contacts']:,} contacts, {full['customers']:,} customers, "
            f"{same}; median of {REPETITIONS}; Python peak {full['python_peak_kib']} KiB) | {full['app_s']:.2f} s | "
            f"{full['raw_s']:.2f} s (hand-written RANK() + same diff) | {full['ratio']:.2f}x | <= 1.3x | "
            f"{'met' if full['met'] else '**missed**'} |"
        )
    latency = rfm.get("latency")
    if latency:
        rows.append(
            f"| RFM: first purchase (upsert answered) -> scored group ({latency['n']} purchases, "
            f"{latency['timeouts']} timeouts) | p50 {latency['p50_ms']:.0f} ms / p99 {latency['p99_ms']:.0f} ms "
            f"| - | - | p50 < 1 s | {'met' if latency['met'] else '**missed**'} |"
        )
    return rows
