"""The refresh queue: how a change to a contact reaches every read model built from contacts.

Read models (the contacts list's ``ContactTotals`` here; segment memberships above us; RFM
scores later) follow contacts and their events eventually, through one queue in the database
(``models.PendingContactRefresh``) and one drain, both owned by this module.

The cycle
---------
1. A write (``services.events_upsert``, ``contact_upsert``, ``contact_delete``) queues the
   contacts it changed INSIDE its own transaction (one row per workspace and contact, however
   often it changed; :func:`contacts_queue_refresh_statement`, folded into one of the write's
   statements on PostgreSQL): the change and "this contact must be refreshed" commit together,
   so nothing that kills the process or its connection after the commit can lose a refresh.
   After the commit (inside a request, once the response is sent:
   ``events_platform/after_response.py``) :func:`drain_schedule` publishes a drain of the
   workspace's queue ``SEGMENT_REFRESH_BATCH_DELAY`` seconds later, so contacts changing close
   together are refreshed together. At most one drain is published per half delay per
   workspace (a mark in Redis that every web process sees): that drain claims our contacts too.
2. The drain (``tasks.contacts_refresh_pending_task`` -> :func:`contacts_refresh_pending`) first
   claims up to ``PENDING_BATCH`` queued contacts in a transaction of its own: a lease
   (``claim_token``, ``claimed_at``) committed before any work, so ingest never waits for a drain.
3. Then, in ONE transaction, it recomputes the claimed contacts' ``ContactTotals``, runs every
   drain hook (below) and deletes what it still holds of its claim. A failure rolls all of that
   back and hands the claim back to the queue. A contact that changed again during the drain
   was re-queued (its claim cleared), so the drain's clean-up leaves it for the next drain. A
   claim older than ``CLAIM_LEASE`` (its worker died) is taken again by the next drain.
4. ``tasks.contacts_refresh_stale_task`` (Celery beat every ``REFRESH_SWEEP_INTERVAL`` seconds;
   ``run_scheduler`` in the embedded mode) publishes a drain for every queue left waiting longer
   than ``STALE_PENDING``: a drain whose publish was lost with its broker, or whose web process
   died between the commit and the publish.

Drain hooks: how layers above contacts follow a drain
-----------------------------------------------------
Contacts never imports the layers built on it. Each of them says what it does with drained
contacts by registering a hook, in its ``AppConfig.ready()``::

    from contacts import refresh

    refresh.register_drain_hook("segments.evaluate", evaluate_drained_contacts, phase=refresh.Phase.EVALUATE)

A hook is called as ``hook(batch)`` with a :class:`DrainedContacts` (the workspace, the claimed
contact ids, the evaluation time), inside the drain's transaction and after the totals refresh:
what it writes commits or rolls back together with the totals and the claim, and an exception
fails the whole drain (its claim handed back, the next drain retries it). Hooks run in
:class:`Phase` order, then by name, so the order is the same in every process: a hook that
computes per-contact facts others read (RFM scores) registers in ``SCORE``, one that evaluates
conditions over contacts and those facts (segment membership) in ``EVALUATE``. A hook must be
set-based over the batch (up to ``PENDING_BATCH`` contacts, some of them possibly erased
meanwhile) and idempotent: a batch can be drained twice after a worker dies.

Registered today: ``segments.evaluate`` (``segments/receivers.py``: re-evaluate the contacts
against every live segment of the workspace).
"""

from __future__ import annotations

import enum
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from events_platform import liveness, redis_client
from events_platform.celery import PUBLISH_ERRORS
from events_platform.workspaces.planning import WORKSPACE_PARAM

from .models import Contact, ContactTotals, CustomEvent, GoalType, PendingContactRefresh

logger = logging.getLogger(__name__)

PENDING_BATCH = 2000
# A drain's claim is a lease: past it (the worker died mid-refresh) another drain takes it.
CLAIM_LEASE = timedelta(minutes=2)
# Queued contacts are normally drained within a second; older ones lost their drain (the
# sweep, every REFRESH_SWEEP_INTERVAL seconds, publishes one again).
STALE_PENDING = timedelta(seconds=10)


# ---------------------------------------------------------------------------------------
# Drain hooks
# ---------------------------------------------------------------------------------------


class Phase(enum.IntEnum):
    """When a drain hook runs, relative to the others (all inside the drain's transaction)."""

    SCORE = 100  # per-contact facts that later hooks read (e.g. RFM scores)
    EVALUATE = 200  # conditions over contacts and those facts (segment membership)


@dataclass(frozen=True)
class DrainedContacts:
    """What a drain hands each hook: contacts of one workspace whose data changed."""

    workspace_id: str
    contact_ids: tuple[int, ...]  # sorted; contacts erased meanwhile are still listed
    now: datetime  # one evaluation time for every hook of the drain


DrainHook = Callable[[DrainedContacts], Any]
_hooks: dict[str, tuple[Phase, DrainHook]] = {}


def register_drain_hook(name: str, hook: DrainHook, *, phase: Phase) -> None:
    """Run ``hook(batch)`` in every drain from now on; registering a name again replaces it."""
    _hooks[name] = (phase, hook)


def unregister_drain_hook(name: str) -> None:
    _hooks.pop(name, None)


def drain_hooks() -> list[tuple[str, DrainHook]]:
    """The registered hooks in the order a drain runs them: by phase, then by name."""
    return [(name, hook) for name, (_, hook) in sorted(_hooks.items(), key=lambda item: (item[1][0], item[0]))]


# ---------------------------------------------------------------------------------------
# Queue and publish (after a write's commit)
# ---------------------------------------------------------------------------------------


def contacts_queue_refresh_statement(
    *, workspace_id: str, contact_ids: Iterable[int], when: str = ""
) -> tuple[str, list[Any]] | None:
    """The statement that queues these contacts (see :func:`contacts_queue_refresh`), as
    (sql, params), or None for no contacts.

    A write runs it inside its own transaction, so "this contact changed" commits or rolls back
    with the change: on PostgreSQL folded into one of the write's statements as a data-modifying
    CTE (``WITH queued AS (<this>) <the write's statement>``), so it costs no statement of its
    own. The rows go in contact id order, and it is the last thing a write locks, so two writes
    queueing the same contacts wait for each other's commit in one order (no deadlock).
    ``when`` (PostgreSQL): an SQL condition on the rest of that statement; the contacts are
    queued only if it holds.
    """
    ids = sorted(set(contact_ids))
    if not ids:
        return None
    table = connection.ops.quote_name(PendingContactRefresh._meta.db_table)
    now = timezone.now()
    params: list[Any]
    if connection.vendor == "postgresql":
        # One array parameter, whatever the number of contacts.
        rows, params = "SELECT %s, unnest(%s::bigint[]), %s, '', NULL", [workspace_id, ids, now]
        if when:
            rows += f" WHERE {when}"
    else:
        assert not when, "a conditional queueing is PostgreSQL's"
        rows = "VALUES " + ", ".join(["(%s, %s, %s, '', NULL)"] * len(ids))
        params = [value for pk in ids for value in (workspace_id, pk, now)]
    sql = (
        f"INSERT INTO {table} AS p (workspace_id, contact_id, queued_at, claim_token, claimed_at) {rows} "
        "ON CONFLICT (workspace_id, contact_id) DO UPDATE SET claim_token = '', claimed_at = NULL "
        "WHERE p.claim_token <> ''"
    )
    return sql, params


def contacts_queue_refresh(*, workspace_id: str, contact_ids: Iterable[int]) -> None:
    """Queue contacts for a refresh; a contact already queued is queued once.

    A contact claimed by a drain that is still running is queued again (its claim cleared),
    so the drain leaves it for the next one: the change that arrived meanwhile is not in the
    drain's snapshot. Takes no lock that a drain holds, so ingest never waits for one.
    """
    statement = contacts_queue_refresh_statement(workspace_id=workspace_id, contact_ids=contact_ids)
    if statement is not None:
        with connection.cursor() as cursor:
            cursor.execute(*statement)


def _redis() -> redis.Redis:
    return redis_client.client()


def _mark_key(workspace_id: str, delay: float) -> str | None:
    """The Redis key of the workspace's "drain published" mark, or None when drains are not
    published through a broker (eager tasks, no Redis) or not delayed."""
    from .tasks import contacts_refresh_pending_task

    conf = contacts_refresh_pending_task.app.conf
    if conf.task_always_eager or not settings.REDIS_URL or delay < 0.02:
        return None
    return f"contacts:drain-scheduled:{conf.task_default_queue}:{workspace_id}"


def _drain_already_scheduled(key: str | None, delay: float) -> bool:
    """Whether a drain of this workspace's queue was published less than half a delay ago.

    Such a drain starts at least half a delay from now, after this commit, so it claims our
    contacts too: publishing another would only make the worker claim an empty queue. The
    mark lives in Redis, so every web process sees the same one; the periodic task re-drains
    anything a lost publish left behind.
    """
    if key is None:
        return False
    return not _redis().set(key, 1, nx=True, px=int(delay * 500))


def _remember_covered(key: str | None, delay: float, since: float) -> None:
    """A drain is published or found scheduled (at monotonic time ``since``): until half a delay
    after ``since`` this process need not ask Redis again (no round trip, no publish).

    That drain starts at least half a delay after ``since``: the one just published (``delay``
    after it), or the one whose mark we found (published less than half a delay before
    ``since``, so due more than half a delay after it). A contact queued before then is claimed
    by it. A process remembers only what it saw itself: one that saw nothing asks Redis as
    before, so processes never need to agree on it, and it only ever skips a publish that
    would be redundant. Only a look at Redis (at ``since``) sets it: a skip never extends it.
    """
    if key is not None:
        _covered_until[key] = since + delay * COVERED_SHARE


# What this process saw of published drains: mark key -> monotonic time until which a drain
# already published (by any process) claims a contact queued now (see _remember_covered).
_covered_until: dict[str, float] = {}
# A safety margin on "half a delay" (clock steps, Redis' expiry rounding).
COVERED_SHARE = 0.4
_clock = time.monotonic


def drain_schedule(*, workspace_id: str) -> bool:
    """Publish a drain of the workspace's queue ``SEGMENT_REFRESH_BATCH_DELAY`` seconds from now,
    unless one published less than half that delay ago will claim what is queued now.

    Runs after the commit of a write whose contacts are already queued (in its transaction), so
    a failed publish (broker down) loses nothing: it is logged and the sweep
    (``tasks.contacts_refresh_stale_task``) drains the queue once the broker is back. Returns
    whether a drain was published or already scheduled.
    """
    from .tasks import contacts_refresh_pending_task

    delay = settings.SEGMENT_REFRESH_BATCH_DELAY
    key = _mark_key(workspace_id, delay)
    since = _clock()
    if key is not None and _covered_until.get(key, 0.0) > since:
        return True  # a drain this process saw published or marked claims what is queued now
    try:
        if not _drain_already_scheduled(key, delay):
            contacts_refresh_pending_task.apply_async((workspace_id,), countdown=delay)
    except PUBLISH_ERRORS:
        logger.warning("drain of %s not published (broker unreachable); the sweep will drain it", workspace_id)
        return False
    _remember_covered(key, delay, since)
    return True


# ---------------------------------------------------------------------------------------
# The drain
# ---------------------------------------------------------------------------------------


def _claimable(now: datetime) -> Q:
    return Q(claim_token="") | Q(claimed_at__lt=now - CLAIM_LEASE)


def workspaces_with_stale_pending(*, older_than: timedelta, now: datetime | None = None) -> list[str]:
    """Workspaces with claimable contacts queued longer than ``older_than``: their drain was
    never scheduled (a publish lost with its broker), fell behind, or died mid-claim. The
    periodic task re-schedules them."""
    now = now or timezone.now()
    return list(
        PendingContactRefresh.objects.filter(_claimable(now), queued_at__lt=now - older_than)
        .order_by()
        .values_list("workspace_id", flat=True)
        .distinct()
    )


def _drain_lock(token: str) -> str:
    return f"refresh-drain:{token}"


def release_abandoned_claims() -> int:
    """Hand back to the queue the claims of drains whose worker died (their session lock is free,
    ``events_platform/liveness.py``), without waiting for ``CLAIM_LEASE``. PostgreSQL only (the
    embedded mode drains in-process); returns the contacts handed back."""
    if connection.vendor != "postgresql":
        return 0
    table = connection.ops.quote_name(PendingContactRefresh._meta.db_table)
    free = liveness.sql_free("'refresh-drain:' || p.claim_token")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS p SET claim_token = '', claimed_at = NULL WHERE p.claim_token <> '' AND {free}"
        )
        released: int = cursor.rowcount
        return released


def _claim_pending(workspace_id: str, limit: int, now: datetime, token: str = "") -> tuple[str, list[int]]:
    """Claim up to ``limit`` queued contacts in a transaction of its own, under ``token`` (a new
    one if none is given): (token, contact ids)."""
    table = connection.ops.quote_name(PendingContactRefresh._meta.db_table)
    token = token or uuid.uuid4().hex
    # SKIP LOCKED: concurrent workers claim disjoint contacts instead of waiting on each other.
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET claim_token = %s, claimed_at = %s WHERE id IN "
            f"(SELECT id FROM {table} WHERE workspace_id = %s AND (claim_token = '' OR claimed_at < %s) "
            f"ORDER BY id LIMIT %s{lock}) RETURNING contact_id",
            [token, now, workspace_id, now - CLAIM_LEASE, limit],
        )
        return token, [row[0] for row in cursor.fetchall()]


def _release_claim(workspace_id: str, token: str, *, done: bool) -> None:
    """Delete what this claim still holds (done), or hand it back to the queue (failed). Rows
    re-queued meanwhile no longer carry the token and stay queued.

    On PostgreSQL the rows are locked in contact id order first, the order in which writes
    queue contacts (``contacts_queue_refresh_statement``): a write re-queueing two contacts of
    this claim and this release wait for each other in one order. Deleted in the scan's order,
    a release and a write each held a row the other wanted: a deadlock, resolved after
    ``deadlock_timeout`` (1 s) by failing one (8-client imports in the bench: p99 1.1 s).
    """
    rows = PendingContactRefresh.objects.filter(workspace_id=workspace_id, claim_token=token)
    with transaction.atomic():
        list(rows.order_by("contact_id").select_for_update().values_list("id", flat=True))  # SQLite: no-op
        if done:
            rows.delete()
        else:
            rows.update(claim_token="", claimed_at=None)


def _pin_contacts(contact_ids: Sequence[int]) -> None:
    """Lock the drained contacts ``FOR KEY SHARE`` until the drain commits (PostgreSQL).

    What the drain writes about them (totals, memberships) references them; an erasure
    (``services.contact_delete`` locks ``FOR UPDATE``) waits for the drain instead of failing
    its commit, and one that committed first leaves the contact out (the hooks see it erased).
    Ingest takes the same shared lock, so drains and ingest never wait for each other here.
    """
    if connection.vendor != "postgresql":
        return
    table = connection.ops.quote_name(Contact._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE", [sorted(set(contact_ids))]
        )


def contacts_refresh_pending(
    *, workspace_id: str, now: datetime | None = None, limit: int = PENDING_BATCH
) -> tuple[int, bool]:
    """Claim up to ``limit`` queued contacts, refresh their totals and run the drain hooks over
    them, in one transaction that also removes the claim; a failure hands the claim back.
    Returns (contacts claimed, whether more are waiting)."""
    started = timezone.now()
    token = uuid.uuid4().hex
    # Held from before the claim until after its release: a claim whose lock is free is a dead
    # drain's, which the sweep hands back at once (release_abandoned_claims).
    with liveness.holding(_drain_lock(token)):
        _, claimed = _claim_pending(workspace_id, limit, started, token)
        if claimed:
            try:
                with transaction.atomic():
                    _pin_contacts(claimed)
                    contact_totals_refresh(workspace_id=workspace_id, contact_ids=claimed)
                    batch = DrainedContacts(
                        workspace_id=workspace_id, contact_ids=tuple(sorted(claimed)), now=now or timezone.now()
                    )
                    for _name, hook in drain_hooks():
                        hook(batch)
                    _release_claim(workspace_id, token, done=True)
            except Exception:
                _release_claim(workspace_id, token, done=False)
                raise
    more = PendingContactRefresh.objects.filter(_claimable(timezone.now()), workspace_id=workspace_id).exists()
    return len(claimed), more


# ---------------------------------------------------------------------------------------
# Contact totals: the contacts list's sort keys, denormalised (see models.ContactTotals)
# ---------------------------------------------------------------------------------------


def _contact_totals_upsert(*, where: str, params: Sequence[Any]) -> int:
    """Recompute the totals of the contacts ``where`` selects (alias ``c``): one INSERT ... SELECT
    ... GROUP BY ... ON CONFLICT DO UPDATE, contacts without events included (0, 0, NULL).

    The same figures as ``selectors.with_contact_totals``. The stamp is when the computing
    statement started (PostgreSQL's ``statement_timestamp()``, so one server clock), and a row
    is only replaced by a computation that started later: a slow statement reading an older
    snapshot never overwrites what a newer one wrote meanwhile.
    """
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        stamp, stamp_params = "statement_timestamp()", []
    else:  # SQLite: one writer at a time, nothing to order
        stamp, stamp_params = (
            "%s",
            [ContactTotals._meta.get_field("updated_at").get_db_prep_save(timezone.now(), connection)],
        )
    totals = quote(ContactTotals._meta.db_table)
    sql = (
        f"INSERT INTO {totals} (contact_id, workspace_id, lifetime_value, order_count, last_event_at, updated_at) "
        "SELECT c.id, c.workspace_id, "
        "COALESCE(SUM(CASE WHEN e.goal_type = %s THEN e.goal_value END), 0), "
        "COUNT(CASE WHEN e.goal_type = %s AND e.goal_value > 0 THEN 1 END), "
        f"MAX(e.occurred_at), {stamp} "
        # Events by their contact alone (an event's contact is in its workspace): the join can only
        # use event_contact_occurred_idx. With the workspace in the join too, statistics taken
        # while a new workspace was empty had the planner scan the workspace's every event for
        # each contact (2,000 contacts x 50k events: 65 s drains in the bench).
        f"FROM {quote(Contact._meta.db_table)} c LEFT JOIN {quote(CustomEvent._meta.db_table)} e "
        "ON e.contact_id = c.id AND e.deleted_at IS NULL "
        f"WHERE {where} GROUP BY c.id, c.workspace_id "
        "ON CONFLICT (contact_id) DO UPDATE SET lifetime_value = excluded.lifetime_value, "
        "order_count = excluded.order_count, last_event_at = excluded.last_event_at, updated_at = excluded.updated_at "
        f"WHERE {totals}.updated_at <= excluded.updated_at"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [GoalType.PURCHASE, GoalType.PURCHASE, *stamp_params, *params])
        written: int = cursor.rowcount
        return written


@transaction.atomic
def contact_totals_refresh(*, workspace_id: str, contact_ids: Iterable[int]) -> int:
    """Recompute the list totals of these contacts of the workspace in one statement.

    The drain's first step for the contacts it claimed. Contacts erased meanwhile are skipped
    (their row went with them). Returns the rows written.
    """
    ids = sorted(set(contact_ids))
    if not ids:
        return 0
    if connection.vendor == "postgresql":
        # The workspace as a parameter the planner cannot estimate (events_platform/workspaces/planning.py).
        return _contact_totals_upsert(
            where=f"c.workspace_id = {WORKSPACE_PARAM} AND c.id = ANY(%s)", params=[workspace_id, ids]
        )
    placeholders = ", ".join(["%s"] * len(ids))
    return _contact_totals_upsert(
        where=f"c.workspace_id = %s AND c.id IN ({placeholders})", params=[workspace_id, *ids]
    )


@transaction.atomic
def contact_totals_rebuild(*, workspace_id: str | None = None) -> int:
    """Recompute the list totals of every contact (of one workspace, or of all) in one statement.

    For a backfill or a repair; the queue keeps them fresh otherwise. Returns the rows written.
    """
    if workspace_id is None:
        return _contact_totals_upsert(where="1 = 1", params=[])
    return _contact_totals_upsert(where="c.workspace_id = %s", params=[workspace_id])
