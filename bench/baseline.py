"""The raw baseline: plain psycopg on the same database, schema and indexes, the best SQL by hand.

Each function does the same work as the app's counterpart - the same rows written (contacts,
events, timeline entries; membership, its history and timeline entries) or read - with no
framework in between, so the app's figure divided by this one is the cost of the app itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg

# ---------------------------------------------------------------------------------------
# Ingest: one statement per transaction upserts contacts, events and their timeline entries
# (the new contacts' and the updated events'; a new event's insert entry is its row, as ours).
# ---------------------------------------------------------------------------------------

UPSERT_SQL = """
WITH input AS (
    SELECT * FROM unnest(
        %(email)s::text[], %(event_name)s::text[], %(external_id)s::text[], %(properties)s::jsonb[],
        %(occurred_at)s::timestamptz[], %(goal_type)s::text[], %(goal_name)s::text[], %(goal_value)s::numeric[]
    ) AS t(email, event_name, external_id, properties, occurred_at, goal_type, goal_name, goal_value)
),
new_contacts AS (
    INSERT INTO contacts_contact
        (workspace_id, email, external_id, first_name, last_name, properties, created_at, updated_at)
    SELECT %(ws)s, email, '', '', '', '{}', now(), now() FROM (SELECT DISTINCT email FROM input ORDER BY email) e
    ON CONFLICT (workspace_id, email) DO NOTHING
    RETURNING id, email
),
contacts AS (
    -- One snapshot: the existing rows never include the ones inserted just above.
    SELECT id, email FROM new_contacts
    UNION ALL
    -- The workspace as "(SELECT ...)", which the planner cannot estimate, as the app writes it
    -- (events_platform/workspaces/planning.py): with the bare value, statistics from before the
    -- ingest workspace had contacts made the planner scan all of them for each statement.
    SELECT c.id, c.email FROM contacts_contact c
    WHERE c.workspace_id = (SELECT %(ws)s) AND c.email IN (SELECT email FROM input)
),
upserted AS (
    INSERT INTO contacts_customevent AS e
        (workspace_id, contact_id, event_name, external_id, properties, occurred_at, source, integration_id,
         goal_type, goal_name, goal_value, deleted_at, created_at, updated_at)
    SELECT %(ws)s, c.id, i.event_name, i.external_id, i.properties, i.occurred_at, 'api', NULL,
           i.goal_type, i.goal_name, i.goal_value, NULL, now(), now()
    FROM input i JOIN contacts c ON c.email = i.email
    ORDER BY i.event_name, i.external_id
    ON CONFLICT (workspace_id, event_name, external_id) DO UPDATE SET
        occurred_at = EXCLUDED.occurred_at, properties = EXCLUDED.properties,
        goal_type = coalesce(EXCLUDED.goal_type, e.goal_type), goal_name = coalesce(EXCLUDED.goal_name, e.goal_name),
        goal_value = coalesce(EXCLUDED.goal_value, e.goal_value), deleted_at = NULL, updated_at = now()
    WHERE e.occurred_at < EXCLUDED.occurred_at OR e.deleted_at IS NOT NULL
    RETURNING e.id, e.contact_id, e.event_name, e.external_id, e.properties, e.occurred_at, e.goal_type,
              e.goal_value, (xmax = 0) AS inserted
),
contact_entries AS (
    INSERT INTO contacts_timelineentry
        (workspace_id, contact_id, kind, operation, entity_type, entity_id, custom_event_id, changes,
         created_at, db_created_at)
    SELECT %(ws)s, id, 'contact.created', 'insert', 'contact', id::text, NULL,
           jsonb_build_object('email', jsonb_build_object('new', email)), now(), now()
    FROM new_contacts
)
INSERT INTO contacts_timelineentry
    (workspace_id, contact_id, kind, operation, entity_type, entity_id, custom_event_id, changes,
     created_at, db_created_at)
SELECT %(ws)s, contact_id, 'custom_event.' || event_name, 'update', 'custom_event', id::text, id,
       jsonb_strip_nulls(jsonb_build_object(
           'event_name', jsonb_build_object('new', event_name), 'external_id', jsonb_build_object('new', external_id),
           'occurred_at', jsonb_build_object('new', occurred_at), 'properties', jsonb_build_object('new', properties),
           'goal_type', jsonb_build_object('new', goal_type), 'goal_value', jsonb_build_object('new', goal_value))),
       occurred_at, now()
FROM upserted WHERE NOT inserted
"""


# ---------------------------------------------------------------------------------------
# The floor: the same events upserted by one statement into a minimal table (the identity's
# unique index and a contact index, nothing else: no contacts table, no timeline), holding the
# dataset's events too so its indexes are as large as the real table's. Every ingest figure
# also reads as a share of what PostgreSQL does on this machine at all.
# ---------------------------------------------------------------------------------------

FLOOR_TABLE = "bench_floor_event"

FLOOR_CREATE_SQL = f"""
DROP TABLE IF EXISTS {FLOOR_TABLE};
CREATE TABLE {FLOOR_TABLE} (
    workspace_id text NOT NULL, contact text NOT NULL, event_name text NOT NULL, external_id text NOT NULL,
    properties jsonb NOT NULL, occurred_at timestamptz NOT NULL,
    goal_type text, goal_name text, goal_value numeric(14, 2)
);
INSERT INTO {FLOOR_TABLE}
SELECT e.workspace_id, c.email, e.event_name, e.external_id, e.properties, e.occurred_at, e.goal_type, e.goal_name,
       e.goal_value
FROM contacts_customevent e JOIN contacts_contact c ON c.id = e.contact_id;
CREATE UNIQUE INDEX {FLOOR_TABLE}_identity ON {FLOOR_TABLE} (workspace_id, event_name, external_id);
CREATE INDEX {FLOOR_TABLE}_contact ON {FLOOR_TABLE} (contact);
ANALYZE {FLOOR_TABLE};
"""

FLOOR_UPSERT_SQL = f"""
INSERT INTO {FLOOR_TABLE} AS e
    (workspace_id, contact, event_name, external_id, properties, occurred_at, goal_type, goal_name, goal_value)
SELECT %(ws)s, * FROM unnest(
    %(email)s::text[], %(event_name)s::text[], %(external_id)s::text[], %(properties)s::jsonb[],
    %(occurred_at)s::timestamptz[], %(goal_type)s::text[], %(goal_name)s::text[], %(goal_value)s::numeric[]
) AS t(email, event_name, external_id, properties, occurred_at, goal_type, goal_name, goal_value)
ORDER BY event_name, external_id
ON CONFLICT (workspace_id, event_name, external_id) DO UPDATE SET
    occurred_at = EXCLUDED.occurred_at, properties = EXCLUDED.properties,
    goal_type = coalesce(EXCLUDED.goal_type, e.goal_type), goal_name = coalesce(EXCLUDED.goal_name, e.goal_name),
    goal_value = coalesce(EXCLUDED.goal_value, e.goal_value)
WHERE e.occurred_at < EXCLUDED.occurred_at
"""


def floor_create(conn: psycopg.Connection[Any]) -> None:
    """The floor's table, filled with the dataset's events and indexed (re-created each run)."""
    conn.execute(FLOOR_CREATE_SQL)


def floor_drop(conn: psycopg.Connection[Any]) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")


def floor_upsert(conn: psycopg.Connection[Any], params: dict[str, Any]) -> None:
    """One statement, one transaction (autocommit): the batch into the minimal table."""
    conn.execute(FLOOR_UPSERT_SQL, params)


def upsert_params(workspace_id: str, payloads: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Arrays for UPSERT_SQL from API-shaped events (parsing done up front, like the client's JSON)."""
    return {
        "ws": workspace_id,
        "email": [p["email"] for p in payloads],
        "event_name": [p["event_name"] for p in payloads],
        "external_id": [p["external_id"] for p in payloads],
        "properties": [json.dumps(p.get("properties") or {}) for p in payloads],
        "occurred_at": [dt.datetime.fromisoformat(p["occurred_at"]) for p in payloads],
        "goal_type": [p.get("goal_type") for p in payloads],
        "goal_name": [p.get("goal_name") for p in payloads],
        "goal_value": [Decimal(str(p["goal_value"])) if "goal_value" in p else None for p in payloads],
    }


def upsert(conn: psycopg.Connection[Any], params: dict[str, Any]) -> None:
    """One transaction: contacts, events and timeline for a batch (or a single event)."""
    with conn.transaction():
        conn.execute(UPSERT_SQL, params)


# ---------------------------------------------------------------------------------------
# Segment builds: one GROUP BY per template, plus the diff, in one statement.
# ---------------------------------------------------------------------------------------

LIVE_PURCHASES = "workspace_id = %(ws)s AND goal_type = 'purchase' AND deleted_at IS NULL"

MATCHING_SQL = {
    "vip": f"""
        SELECT contact_id FROM contacts_customevent WHERE {LIVE_PURCHASES}
        GROUP BY contact_id
        HAVING sum(goal_value) >= 1000 AND count(*) >= 5 AND count(*) FILTER (WHERE occurred_at >= %(d60)s) >= 1
    """,
    "at_risk_high_value": f"""
        SELECT contact_id FROM contacts_customevent WHERE {LIVE_PURCHASES}
        GROUP BY contact_id
        HAVING sum(goal_value) >= 500 AND count(*) FILTER (WHERE occurred_at >= %(d90)s) = 0
    """,
    # First purchase ever (ties by id) worth > 200, none before 30 days ago: the GROUP BY keeps
    # contacts whose earliest purchase is recent, then their first row decides.
    "new_high_potential": f"""
        WITH recent AS (
            SELECT contact_id FROM contacts_customevent WHERE {LIVE_PURCHASES}
            GROUP BY contact_id HAVING min(occurred_at) >= %(d30)s
        )
        SELECT r.contact_id FROM recent r CROSS JOIN LATERAL (
            SELECT goal_value FROM contacts_customevent
            WHERE {LIVE_PURCHASES} AND contact_id = r.contact_id
            ORDER BY occurred_at, id LIMIT 1
        ) first_purchase
        WHERE first_purchase.goal_value > 200
    """,
}

DIFF_SQL = """
WITH new AS MATERIALIZED ({matching}),
exited AS (
    DELETE FROM segments_segmentmembership m
    WHERE m.segment_id = %(seg)s AND NOT EXISTS (SELECT 1 FROM new n WHERE n.contact_id = m.contact_id)
    RETURNING m.contact_id
),
entered AS (
    INSERT INTO segments_segmentmembership (segment_id, contact_id, entered_at)
    SELECT %(seg)s, n.contact_id, %(now)s FROM new n
    WHERE NOT EXISTS (
        SELECT 1 FROM segments_segmentmembership m WHERE m.segment_id = %(seg)s AND m.contact_id = n.contact_id
    )
    RETURNING contact_id
),
changes AS (
    SELECT contact_id, 'exited' AS change, 'segment.left' AS kind FROM exited
    UNION ALL
    SELECT contact_id, 'entered', 'segment.joined' FROM entered
),
history AS (
    INSERT INTO segments_segmentmembershipchange (segment_id, contact_id, change, changed_at)
    SELECT %(seg)s, contact_id, change, %(now)s FROM changes
),
entries AS (
    INSERT INTO contacts_timelineentry
        (workspace_id, contact_id, kind, operation, entity_type, entity_id, custom_event_id, changes,
         created_at, db_created_at)
    SELECT %(ws)s, contact_id, kind, 'insert', 'segment', %(slug)s, NULL, %(changes)s::jsonb, %(now)s, %(now)s
    FROM changes
)
SELECT (SELECT count(*) FROM entered), (SELECT count(*) FROM exited)
"""


def window_params(workspace_id: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "ws": workspace_id,
        "d30": now - dt.timedelta(days=30),
        "d60": now - dt.timedelta(days=60),
        "d90": now - dt.timedelta(days=90),
    }


def matching_ids(conn: psycopg.Connection[Any], template: str, workspace_id: str, now: dt.datetime) -> set[int]:
    return {row[0] for row in conn.execute(MATCHING_SQL[template], window_params(workspace_id, now))}


def segment_build(
    conn: psycopg.Connection[Any], *, template: str, segment_pk: int, slug: str, workspace_id: str, now: dt.datetime
) -> tuple[int, int]:
    """Membership of ``segment_pk`` made equal to the template's matches: (entered, exited)."""
    params = {
        **window_params(workspace_id, now),
        "seg": segment_pk,
        "slug": slug,
        "now": now,
        "changes": json.dumps({"segment": {"new": {"id": slug, "name": slug}}}),
    }
    with conn.transaction():
        row = conn.execute(DIFF_SQL.format(matching=MATCHING_SQL[template]), params).fetchone()
        assert row is not None
        conn.execute(
            "UPDATE segments_segment SET member_count = "
            "(SELECT count(*) FROM segments_segmentmembership WHERE segment_id = %(seg)s) WHERE id = %(seg)s",
            {"seg": segment_pk},
        )
    return int(row[0]), int(row[1])


# ---------------------------------------------------------------------------------------
# Reads: the rows behind each page or endpoint, serialised to JSON.
# ---------------------------------------------------------------------------------------


def _json(rows: list[tuple[Any, ...] | None]) -> str:
    return json.dumps(rows, default=str)


def timeline_page(conn: psycopg.Connection[Any], workspace_id: str, email: str, limit: int = 50) -> str:
    with conn.transaction():
        contact = conn.execute(
            "SELECT id FROM contacts_contact WHERE workspace_id = %s AND email = %s", [workspace_id, email]
        ).fetchone()
        assert contact is not None
        rows = conn.execute(
            "SELECT t.id, t.kind, t.operation, t.entity_type, t.entity_id, t.changes, t.created_at, "
            "e.id, e.event_name, e.external_id, e.properties, e.occurred_at, e.source, e.goal_type, e.goal_name, "
            "e.goal_value, e.deleted_at "
            "FROM contacts_timeline t LEFT JOIN contacts_customevent e ON e.id = t.custom_event_id "
            "WHERE t.contact_id = %s ORDER BY t.created_at DESC, t.id DESC LIMIT %s",
            [contact[0], limit + 1],
        ).fetchall()
    return _json(rows)


def contacts_page(conn: psycopg.Connection[Any], workspace_id: str, limit: int = 50) -> str:
    rows = conn.execute(
        "SELECT id, email, external_id, first_name, last_name, properties, created_at, updated_at "
        "FROM contacts_contact WHERE workspace_id = %s ORDER BY created_at DESC, id DESC LIMIT %s",
        [workspace_id, limit + 1],
    ).fetchall()
    return _json(rows)


PREVIEW_AGG = f"""
    SELECT contact_id, sum(goal_value) AS s, count(*) AS n, count(*) FILTER (WHERE occurred_at >= %(d60)s) AS r
    FROM contacts_customevent WHERE {LIVE_PURCHASES} GROUP BY contact_id
"""
VIP_CONDITION = "a.s >= 1000 AND a.n >= 5 AND a.r >= 1"


def vip_preview(conn: psycopg.Connection[Any], workspace_id: str, now: dt.datetime) -> str:
    """Total, each top-level condition alone, and 10 samples: two statements, like the app."""
    params = window_params(workspace_id, now)
    with conn.transaction():
        counts = conn.execute(
            f"WITH a AS ({PREVIEW_AGG}) SELECT count(*), count(*) FILTER (WHERE {VIP_CONDITION}), "
            "count(*) FILTER (WHERE coalesce(a.s, 0) >= 1000), count(*) FILTER (WHERE coalesce(a.n, 0) >= 5), "
            "count(*) FILTER (WHERE coalesce(a.r, 0) >= 1) "
            "FROM contacts_contact c LEFT JOIN a ON a.contact_id = c.id WHERE c.workspace_id = %(ws)s",
            params,
        ).fetchone()
        sample = conn.execute(
            f"WITH a AS ({PREVIEW_AGG}) SELECT c.id, c.email, c.external_id, c.first_name, c.last_name, "
            "c.properties, c.created_at, c.updated_at FROM contacts_contact c JOIN a ON a.contact_id = c.id "
            f"WHERE c.workspace_id = %(ws)s AND {VIP_CONDITION} ORDER BY c.created_at DESC, c.id DESC LIMIT 10",
            params,
        ).fetchall()
    return _json([counts, *sample])
