"""Writes for webhooks: subscriptions, the outbox, fan-out, claimed delivery, retries and replay.

Write path (nothing lost): ``outbox_record`` runs inside the transaction of the change it
reports (contacts and events through ``contacts.signals.changes_written``, segment membership
through the SQL of ``segment_changes_outbox_sql`` inside the diff statement itself). It is ONE
``INSERT ... SELECT`` whatever the batch size, and keeps only the rows whose type an enabled
subscription of the workspace wants: the check is a clause of that statement, so no process
holds a cache that another could disagree with.

Delivery (at least once, never twice at the same time): ``outbox_fan_out`` claims outbox rows
``FOR UPDATE SKIP LOCKED`` and creates one delivery per matching subscription, body built
once. ``deliveries_send_due`` claims due deliveries with a lease (``SKIP LOCKED``; a claimed
delivery's ``next_attempt_at`` is its lease end, so an expired claim is simply due again),
sends each only while its lease comfortably outlasts the timeout, and records every attempt.
Retries are rows with ``next_attempt_at`` found by the periodic sweep, never long countdowns.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NotRequired, TypedDict, Unpack

import redis
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from contacts.models import EVENT_NAME_MAX_LENGTH, EVENT_NAME_PATTERN, Contact, GoalType
from contacts.services import RecordStatement
from events_platform import redis_client
from events_platform.after_response import defer
from segments.models import Segment

from . import network, payloads, signing
from .events import BY_NAME, EVENT_TYPE_NAMES, subject_of
from .models import (
    SUBSCRIPTION_NAME_MAX_LENGTH,
    URL_MAX_LENGTH,
    WebhookAttempt,
    WebhookDelivery,
    WebhookOutbox,
    WebhookSubscription,
)

logger = logging.getLogger(__name__)

# Standard Webhooks' schedule: the delay before each attempt of a round (the first is immediate).
RETRY_SCHEDULE = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
RETRY_JITTER = 0.1  # each delay is stretched or shrunk by up to 10%, so failed bursts spread out
RETRY_AFTER_MAX = timedelta(hours=24)
FAILING_DISABLE_AFTER = timedelta(days=5)
SECRET_OVERLAP = timedelta(hours=24)
MAX_SUBSCRIPTIONS_PER_WORKSPACE = 50
MAX_FILTER_ITEMS = 100
FAN_OUT_BATCH = 500
# How long a "fan-out queued" mark suppresses further publishes at most (see fan_out_publish).
FAN_OUT_MARK_SECONDS = 2.0
SEND_BATCH = 10
# A send starts only while the claim has this much lease left beyond the timeout.
LEASE_MARGIN = timedelta(seconds=5)
_EVENT_NAME_RE = re.compile(EVENT_NAME_PATTERN)

Status = WebhookDelivery.Status


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _bookkeeping_commit() -> None:
    """This transaction's commit need not wait for the WAL flush (PostgreSQL).

    Only for the senders' own bookkeeping (fan-out, claims, attempts), never for a change's
    outbox row: a commit lost in a database crash reverts its transaction as a whole, so a
    fan-out is redone and a delivery whose record was lost is sent again after its lease
    (at least once still holds). Without it, every delivery waits for one or two disk flushes
    and competes with ingest commits for them.
    """
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


# ---------------------------------------------------------------------------------------
# Subscriptions
# ---------------------------------------------------------------------------------------


def _string_list(field: str, values: Any, *, check: Callable[[str], str | None]) -> list[str]:
    if not isinstance(values, list | tuple):
        raise ValidationError({field: ["Must be a list of strings."]})
    if len(values) > MAX_FILTER_ITEMS:
        raise ValidationError({field: [f"At most {MAX_FILTER_ITEMS} items."]})
    out: list[str] = []
    bad: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise ValidationError({field: ["Must be a list of strings."]})
        problem = check(value)
        if problem:
            bad.append(problem)
        elif value not in out:
            out.append(value)
    if bad:
        raise ValidationError({field: bad})
    return out


class SubscriptionSettings(TypedDict):
    """What a person sets on a subscription (create, and update: a full replacement); filters left
    out are empty, which lets everything through."""

    name: str
    url: str
    event_types: Sequence[str]
    goal_types: NotRequired[Sequence[str]]
    event_names: NotRequired[Sequence[str]]
    segment_ids: NotRequired[Sequence[str]]


def subscription_settings_validate(
    *,
    workspace_id: str,
    name: str,
    url: str,
    event_types: Any,
    goal_types: Any = (),
    event_names: Any = (),
    segment_ids: Any = (),
) -> dict[str, Any]:
    """The settings a subscription may be saved with, cleaned; a ValidationError naming each bad field."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["Give the subscription a name."]
    elif len(name) > SUBSCRIPTION_NAME_MAX_LENGTH:
        errors["name"] = [f"At most {SUBSCRIPTION_NAME_MAX_LENGTH} characters."]
    cleaned["name"] = name
    url = (url or "").strip()
    if len(url) > URL_MAX_LENGTH:
        errors["url"] = [f"At most {URL_MAX_LENGTH} characters."]
    else:
        try:
            network.check_url(url)
        except network.TargetError as exc:
            errors["url"] = [exc.message]
    cleaned["url"] = url

    def known_type(value: str) -> str | None:
        return None if value in BY_NAME else f"Unknown event type '{value}' (see webhookSubscriptions.eventTypes)."

    def known_goal(value: str) -> str | None:
        return (
            None if value in GoalType.values else f"Unknown goal type '{value}' (one of {', '.join(GoalType.values)})."
        )

    def event_name(value: str) -> str | None:
        ok = 0 < len(value) <= EVENT_NAME_MAX_LENGTH and _EVENT_NAME_RE.match(value)
        return None if ok else f"'{value}' is not a valid event name (a-z 0-9 . _ - /, at most 100)."

    for field, values, check in (
        ("event_types", event_types, known_type),
        ("custom_event_filters.goal_types", goal_types, known_goal),
        ("custom_event_filters.event_names", event_names, event_name),
        ("segment_ids", segment_ids, lambda v: None),
    ):
        try:
            cleaned[field.rsplit(".", 1)[-1]] = _string_list(field, values or [], check=check)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if "event_types" not in errors and not cleaned.get("event_types"):
        errors["event_types"] = ["Choose at least one event type."]
    if "segment_ids" not in errors and cleaned.get("segment_ids"):
        known = set(
            Segment.objects.filter(workspace_id=workspace_id, slug__in=cleaned["segment_ids"])
            .exclude(status=Segment.Status.DELETED)
            .values_list("slug", flat=True)
        )
        missing = [s for s in cleaned["segment_ids"] if s not in known]
        if missing:
            errors["segment_ids"] = [f"Unknown segment(s) in this workspace: {', '.join(missing)}."]
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def subscription_create(*, workspace_id: str, **settings: Unpack[SubscriptionSettings]) -> WebhookSubscription:
    cleaned = subscription_settings_validate(workspace_id=workspace_id, **settings)
    if WebhookSubscription.objects.filter(workspace_id=workspace_id).count() >= MAX_SUBSCRIPTIONS_PER_WORKSPACE:
        raise ValidationError(
            {"non_field_errors": [f"A workspace has at most {MAX_SUBSCRIPTIONS_PER_WORKSPACE} subscriptions."]}
        )
    return WebhookSubscription.objects.create(workspace_id=workspace_id, secret=signing.secret_generate(), **cleaned)


def _locked(subscription: WebhookSubscription) -> WebhookSubscription:
    return WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)


@transaction.atomic
def subscription_update(
    *, subscription: WebhookSubscription, enabled: bool | None = None, **settings: Unpack[SubscriptionSettings]
) -> WebhookSubscription:
    """Full replacement (Notifuse's update): filters left out are cleared; ``enabled`` None keeps it."""
    cleaned = subscription_settings_validate(workspace_id=subscription.workspace_id, **settings)
    subscription = _locked(subscription)
    for key, value in cleaned.items():
        setattr(subscription, key, value)
    subscription.save()
    if enabled is not None and enabled != subscription.enabled:
        subscription = subscription_set_enabled(subscription=subscription, enabled=enabled)
    return subscription


@transaction.atomic
def subscription_set_enabled(
    *,
    subscription: WebhookSubscription,
    enabled: bool,
    reason: str = WebhookSubscription.DisabledReason.MANUAL,
    detail: str = "",
    now: datetime | None = None,
) -> WebhookSubscription:
    """Enable or disable. A disabled subscription's pending deliveries wait (out of the senders'
    way) and resume when it is enabled again; nothing new is recorded for it meanwhile."""
    now = now or timezone.now()
    subscription = _locked(subscription)
    if subscription.enabled == enabled:
        return subscription
    subscription.enabled = enabled
    pending = WebhookDelivery.objects.filter(subscription_id=subscription.pk, status=Status.PENDING)
    if enabled:
        subscription.disabled_reason, subscription.disabled_detail, subscription.disabled_at = "", "", None
        subscription.failing_since = None
        pending.filter(next_attempt_at__isnull=True).update(next_attempt_at=now)
        _send_on_commit(1)
    else:
        subscription.disabled_reason, subscription.disabled_detail, subscription.disabled_at = reason, detail, now
        pending.update(next_attempt_at=None)
    subscription.save()
    return subscription


@transaction.atomic
def subscription_secret_regenerate(
    *, subscription: WebhookSubscription, now: datetime | None = None
) -> WebhookSubscription:
    """A new secret; the current one keeps verifying for 24 hours (deliveries carry both signatures)."""
    now = now or timezone.now()
    subscription = _locked(subscription)
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_expires_at = now + SECRET_OVERLAP
    subscription.secret = signing.secret_generate()
    subscription.save()
    return subscription


@transaction.atomic
def subscription_delete(*, subscription: WebhookSubscription) -> None:
    """Hard delete, with its deliveries and their attempts."""
    WebhookSubscription.objects.filter(pk=subscription.pk).delete()


def signing_secrets(subscription: WebhookSubscription, now: datetime) -> list[str]:
    keys = [subscription.secret]
    expires = subscription.previous_secret_expires_at
    if subscription.previous_secret and expires is not None and expires > now:
        keys.append(subscription.previous_secret)
    return keys


# ---------------------------------------------------------------------------------------
# Outbox: written inside the transaction of the change
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxEvent:
    event_type: str
    occurred_at: datetime
    data: dict[str, Any]


def _json_array_has(column: str, value_sql: str) -> str:
    """SQL: the JSON array in ``column`` holds the string ``value_sql``."""
    if _postgres():
        return f"{column} @> to_jsonb(CAST({value_sql} AS text))"
    return f"EXISTS (SELECT 1 FROM json_each({column}) j WHERE j.value = {value_sql})"


def _wanted_sql(
    *, workspace_id: str, type_sql: str, extra: str = "", extra_params: Sequence[Any] = ()
) -> tuple[str, list[Any]]:
    """SQL and params: an enabled subscription of the workspace wants the type ``type_sql``.

    The first, uncorrelated EXISTS is evaluated once per statement (a one-time filter): in a
    workspace without enabled subscriptions the statement reads and writes nothing more.
    """
    subs = _q(WebhookSubscription._meta.db_table)
    any_sql, any_params = any_enabled_sql(workspace_id)
    sql = (
        f"{any_sql} "
        f"AND EXISTS (SELECT 1 FROM {subs} s WHERE s.workspace_id = %s AND s.enabled "
        f"AND {_json_array_has('s.event_types', type_sql)}{extra})"
    )
    return sql, [*any_params, workspace_id, *extra_params]


def any_enabled_sql(workspace_id: str) -> tuple[str, list[Any]]:
    """SQL and params: the workspace has an enabled subscription (the outbox recorder's probe:
    without one, an ingest write builds no outbox rows; ``contacts.services.register_change_recorder``)."""
    subs = _q(WebhookSubscription._meta.db_table)
    return f"EXISTS (SELECT 1 FROM {subs} g WHERE g.workspace_id = %s AND g.enabled)", [workspace_id]


def _dt(value: datetime) -> Any:
    return WebhookOutbox._meta.get_field("created_at").get_db_prep_save(value, connection)


@transaction.atomic(savepoint=False)
def outbox_record(*, workspace_id: str, events: Sequence[OutboxEvent], now: datetime | None = None) -> int:
    """Record changes in the outbox, in the caller's transaction: ONE statement whatever the batch
    (none for an empty one), writing only the types an enabled subscription wants. The fan-out
    is published after the commit. Returns the rows written."""
    statement = outbox_statement(workspace_id=workspace_id, events=events, now=now)
    if statement is None:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, statement.params)
        written: int = cursor.rowcount
    if written:
        statement.after_commit()
    return written


def outbox_statement(
    *,
    workspace_id: str,
    events: Sequence[OutboxEvent],
    now: datetime | None = None,
    when: str = "",
    created_rows: str | None = None,
) -> RecordStatement | None:
    """The outbox INSERT of ``outbox_record`` (None for no events), for a write to run in its own
    transaction, folded into one of its statements (``contacts.services.RecordStatement``):
    ``when`` is the write's own condition, ANDed into the WHERE clause. Its ``after_commit``
    publishes the fan-out once the write commits (inside a request, after the response).

    ``created_rows`` (PostgreSQL): a relation of that statement holding custom events just
    created, recorded too, from their rows (``payloads.event_values_sql``)."""
    if not events and not created_rows:
        return None
    now = now or timezone.now()
    outbox = _q(WebhookOutbox._meta.db_table)
    # On PostgreSQL json.dumps writes an aware datetime as text the timestamptz column reads back
    # exactly: no field conversion per event.
    stored_at = (lambda value: value) if _postgres() else _dt
    rows = [{"event_type": e.event_type, "occurred_at": stored_at(e.occurred_at), "data": e.data} for e in events]
    stamp = _dt(now)
    sources: list[str] = []
    source_params: list[Any] = []
    if rows:
        postgresql_rows = (
            "SELECT r.event_type, r.occurred_at, r.data FROM json_to_recordset(%s::json) "
            "AS r(event_type text, occurred_at timestamptz, data text)"
        )
        sqlite_rows = (
            "SELECT json_extract(j.value, '$.event_type') AS event_type, json_extract(j.value, '$.occurred_at') "
            "AS occurred_at, json_extract(j.value, '$.data') AS data FROM json_each(%s) j"
        )
        sources.append(postgresql_rows if _postgres() else sqlite_rows)
        source_params.append(json.dumps(rows, default=payloads.json_default))
    if created_rows:
        assert _postgres(), "a statement's own rows are PostgreSQL's"
        contacts = _q(Contact._meta.db_table)
        sources.append(
            "SELECT CASE WHEN e.deleted_at IS NULL THEN 'custom_event.created' ELSE 'custom_event.deleted' END "
            f"AS event_type, %s::timestamptz AS occurred_at, {payloads.event_values_sql('e', 'c')} AS data "
            f"FROM {created_rows} e JOIN {contacts} c ON c.id = e.contact_id"
        )
        source_params.append(stamp)
    wanted, wanted_params = _wanted_sql(workspace_id=workspace_id, type_sql="r.event_type")
    sql = (
        f"INSERT INTO {outbox} (workspace_id, event_type, occurred_at, data_json, created_at) "
        f"SELECT %s, r.event_type, r.occurred_at, r.data, %s FROM ({' UNION ALL '.join(sources)}) r WHERE {wanted}"
    )
    if when:
        sql += f" AND {when}"
    params = [workspace_id, stamp, *source_params, *wanted_params]
    return RecordStatement(sql=sql, params=params, after_commit=_fan_out_on_commit)


def _fan_out_on_commit() -> None:
    # After the commit, and inside a request after the response is sent.
    transaction.on_commit(lambda: defer(fan_out_publish))


def _send_on_commit(deliveries: int) -> None:
    """After the commit (after the response, inside a request), enough send tasks for this many
    deliveries, at most four: each sends until nothing is due."""
    tasks = min(math.ceil(deliveries / SEND_BATCH), 4)
    transaction.on_commit(lambda: defer(lambda: _publish_send(tasks)))


def _fan_out_mark_key() -> str | None:
    """The Redis key of the "a fan-out is published and has not started" mark, or None when
    tasks run in-process (eager) or there is no Redis."""
    from .tasks import webhook_queue, webhooks_fan_out_task

    conf = webhooks_fan_out_task.app.conf
    if conf.task_always_eager or not settings.REDIS_URL:
        return None
    return f"webhooks:fan-out-queued:{webhook_queue(conf.task_default_queue)}"


def fan_out_publish() -> None:
    """Publish a fan-out unless one is already queued and not yet started.

    Runs after the commit of outbox rows. A fan-out task clears the mark before it claims
    (:func:`fan_out_starting`), so a mark seen here, after our commit, belongs to a task whose
    claim comes later and takes our rows too: another publish would only claim nothing. So a
    busy ingest publishes one fan-out per worker pick-up instead of one per write (a Redis SET
    instead of a broker publish). The mark expires after ``FAN_OUT_MARK_SECONDS``: a publish
    lost after setting it, or a task stuck behind a long queue, suppresses nothing longer than
    that, and the periodic sweep re-publishes whatever outbox rows wait.
    """
    from .tasks import webhooks_fan_out_task

    key = _fan_out_mark_key()
    if key is not None:
        try:
            if not redis_client.client().set(key, 1, nx=True, px=int(FAN_OUT_MARK_SECONDS * 1000)):
                return
        except redis.RedisError:
            logger.warning("fan-out mark not read (Redis unreachable); publishing anyway")
    webhooks_fan_out_task.delay()


def fan_out_starting() -> None:
    """Called by a fan-out task before it claims: later writes publish again (see
    :func:`fan_out_publish`)."""
    key = _fan_out_mark_key()
    if key is not None:
        try:
            redis_client.client().delete(key)
        except redis.RedisError:
            logger.warning("fan-out mark not cleared (Redis unreachable); it expires by itself")


def _publish_send(count: int) -> None:
    from .tasks import webhooks_send_task

    for _ in range(max(0, count)):
        webhooks_send_task.delay()


@dataclass(frozen=True)
class MembershipChangeSql:
    """An INSERT the segment diff runs in its own statement (a CTE on PostgreSQL), and what to
    do after the commit when the diff changed anything."""

    sql: str
    params: list[Any]
    after_commit: Callable[[], None]


def segment_changes_outbox_sql(*, segment: Segment, now: datetime, source: str) -> MembershipChangeSql:
    """The outbox INSERT for a segment diff: ``source`` is a relation of (contact_id, kind) rows,
    kind being ``segment.joined`` / ``segment.left``. Set-based: one INSERT ... SELECT inside the
    diff's statement, only for types (and segments) an enabled subscription wants."""
    outbox = _q(WebhookOutbox._meta.db_table)
    contacts = _q(Contact._meta.db_table)
    if _postgres():
        data = "json_build_object('email', ct.email, 'contact_id', ct.id, 'segment_id', %s, 'segment_name', %s)::text"
        empty = "s.segment_ids = '[]'::jsonb"
    else:
        data = "json_object('email', ct.email, 'contact_id', ct.id, 'segment_id', %s, 'segment_name', %s)"
        empty = "json_array_length(s.segment_ids) = 0"
    segment_filter = f" AND ({empty} OR {_json_array_has('s.segment_ids', '%s')})"
    wanted, wanted_params = _wanted_sql(
        workspace_id=segment.workspace_id, type_sql="c.kind", extra=segment_filter, extra_params=[segment.slug]
    )
    sql = (
        f"INSERT INTO {outbox} (workspace_id, event_type, occurred_at, data_json, created_at) "
        f"SELECT %s, c.kind, %s, {data}, %s FROM {source} c JOIN {contacts} ct ON ct.id = c.contact_id "
        f"WHERE {wanted}"
    )
    at = _dt(now)
    params = [segment.workspace_id, at, segment.slug, segment.name, at, *wanted_params]
    return MembershipChangeSql(sql=sql, params=params, after_commit=lambda: defer(fan_out_publish))


def rfm_changes_outbox_sql(*, model: Any, now: datetime, source: str) -> MembershipChangeSql:
    """The outbox INSERT for an RFM scoring diff: ``source`` is a relation of (contact_id,
    from_group, to_group, r, f, m) rows. One INSERT ... SELECT inside the scoring statement, only
    when an enabled subscription wants ``rfm.group_changed``."""
    outbox = _q(WebhookOutbox._meta.db_table)
    contacts = _q(Contact._meta.db_table)
    fields = (
        "'email', ct.email, 'contact_id', ct.id, 'model', {model}, 'from_group', c.from_group, "
        "'to_group', c.to_group, 'r', c.r, 'f', c.f, 'm', c.m"
    )
    if _postgres():
        data = f"json_build_object({fields.format(model='CAST(%s AS text)')})::text"
    else:
        data = f"json_object({fields.format(model='%s')})"
    event_type = "rfm.group_changed"
    wanted, wanted_params = _wanted_sql(workspace_id=model.workspace_id, type_sql="%s")
    sql = (
        f"INSERT INTO {outbox} (workspace_id, event_type, occurred_at, data_json, created_at) "
        f"SELECT %s, %s, %s, {data}, %s FROM {source} c JOIN {contacts} ct ON ct.id = c.contact_id "
        f"WHERE {wanted}"
    )
    at = _dt(now)
    params = [model.workspace_id, event_type, at, model.slug, at, *wanted_params, event_type]
    return MembershipChangeSql(sql=sql, params=params, after_commit=lambda: defer(fan_out_publish))


# ---------------------------------------------------------------------------------------
# Fan-out: outbox rows -> one delivery per matching subscription
# ---------------------------------------------------------------------------------------


def subscription_matches(subscription: WebhookSubscription, event_type: str, data: dict[str, Any]) -> bool:
    if event_type not in subscription.event_types:
        return False
    subject = subject_of(event_type)
    if subject == "custom_event":
        if subscription.goal_types and data.get("goal_type") not in subscription.goal_types:
            return False
        if subscription.event_names and data.get("event_name") not in subscription.event_names:
            return False
    if subject == "segment" and subscription.segment_ids:
        return data.get("segment_id") in subscription.segment_ids
    return True


def outbox_fan_out(*, limit: int = FAN_OUT_BATCH, now: datetime | None = None) -> tuple[int, int]:
    """Turn up to ``limit`` outbox rows into deliveries, in one transaction that removes them.

    Rows are locked ``FOR UPDATE SKIP LOCKED``, so concurrent fan-outs take disjoint rows; a
    fan-out that dies rolls back and leaves its rows for the next. A subscription gets only
    changes recorded after it was created. Returns (rows taken, deliveries created).
    """
    now = now or timezone.now()
    with transaction.atomic():
        _bookkeeping_commit()
        rows = list(WebhookOutbox.objects.select_for_update(skip_locked=True).order_by("id")[:limit])
        if not rows:
            return 0, 0
        by_workspace: dict[str, list[WebhookSubscription]] = {}
        for subscription in WebhookSubscription.objects.filter(
            workspace_id__in={r.workspace_id for r in rows}, enabled=True
        ).order_by("pk"):
            by_workspace.setdefault(subscription.workspace_id, []).append(subscription)
        deliveries = []
        for row in rows:
            matching = [
                s
                for s in by_workspace.get(row.workspace_id, ())
                if s.created_at <= row.created_at and subscription_matches(s, row.event_type, row.data)
            ]
            if not matching:
                continue
            data = payloads.render_data(row.event_type, row.data)
            for subscription in matching:
                message_id = f"msg_{uuid.uuid4().hex}"
                deliveries.append(
                    WebhookDelivery(
                        workspace_id=row.workspace_id,
                        subscription=subscription,
                        message_id=message_id,
                        event_type=row.event_type,
                        body=payloads.envelope(
                            message_id=message_id,
                            event_type=row.event_type,
                            occurred_at=row.occurred_at,
                            workspace_id=row.workspace_id,
                            data=data,
                        ),
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
        WebhookDelivery.objects.bulk_create(deliveries)
        WebhookOutbox.objects.filter(pk__in=[r.pk for r in rows]).delete()
        if deliveries:
            _send_on_commit(len(deliveries))
    return len(rows), len(deliveries)


# ---------------------------------------------------------------------------------------
# Sending: claim with a lease, send, record
# ---------------------------------------------------------------------------------------


def claim_lease() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE)


@dataclass
class Claim:
    token: str
    lease_ends: datetime
    deliveries: list[WebhookDelivery]


def deliveries_claim(*, limit: int = SEND_BATCH, now: datetime | None = None) -> Claim:
    """Claim up to ``limit`` due deliveries of enabled subscriptions, in a transaction of its own.

    Due means pending with ``next_attempt_at`` reached, or delivering with its lease over (the
    sender died: that attempt is recorded as lost). ``SKIP LOCKED`` lets any number of senders
    claim disjoint deliveries. Each claim counts as an attempt, so a delivery that kills its
    sender cannot loop forever.
    """
    now = now or timezone.now()
    token = uuid.uuid4().hex
    lease_ends = now + claim_lease()
    table = _q(WebhookDelivery._meta.db_table)
    subs = _q(WebhookSubscription._meta.db_table)
    due = (
        f"SELECT d.id, d.status FROM {table} d WHERE d.status IN (%s, %s) AND d.next_attempt_at <= %s "
        f"AND EXISTS (SELECT 1 FROM {subs} s WHERE s.id = d.subscription_id AND s.enabled) "
        "ORDER BY d.next_attempt_at, d.id LIMIT %s"
    )
    due_params = [Status.PENDING, Status.DELIVERING, _dt(now), limit]
    update = "SET status = %s, claim_token = %s, next_attempt_at = %s, attempts = attempts + 1, last_attempt_at = %s"
    update_params = [Status.DELIVERING, token, _dt(lease_ends), _dt(now)]
    with transaction.atomic(), connection.cursor() as cursor:
        _bookkeeping_commit()
        if _postgres():
            cursor.execute(
                f"WITH due AS ({due} FOR UPDATE OF d SKIP LOCKED) UPDATE {table} AS t {update} "
                "FROM due WHERE t.id = due.id RETURNING t.id, due.status",
                [*due_params, *update_params],
            )
            claimed = dict(cursor.fetchall())
        else:  # SQLite: one writer at a time (IMMEDIATE transactions), nothing to skip
            cursor.execute(due, due_params)
            claimed = dict(cursor.fetchall())
            if claimed:
                marks = ", ".join(["%s"] * len(claimed))
                cursor.execute(f"UPDATE {table} {update} WHERE id IN ({marks})", [*update_params, *claimed])
        if not claimed:
            return Claim(token, lease_ends, [])
        deliveries = list(
            WebhookDelivery.objects.filter(pk__in=list(claimed))
            .select_related("subscription")
            .order_by("next_attempt_at", "pk")
        )
        # One instance per subscription, so what one attempt learns (its last delivery) the next sees.
        shared: dict[int, WebhookSubscription] = {}
        for d in deliveries:
            d.subscription = shared.setdefault(d.subscription_id, d.subscription)
        lost = [d for d in deliveries if claimed[d.pk] == Status.DELIVERING]
        if lost:
            WebhookAttempt.objects.bulk_create(
                WebhookAttempt(
                    delivery=d,
                    number=d.attempts - 1,
                    started_at=now,
                    error_kind=WebhookAttempt.ErrorKind.LEASE_EXPIRED,
                    error="The sender's lease ran out before it recorded an answer (it stopped or was cut off).",
                )
                for d in lost
            )
    return Claim(token, lease_ends, deliveries)


def _release(deliveries: Iterable[WebhookDelivery], token: str, now: datetime) -> None:
    """Hand back claimed deliveries that were not sent (their attempt did not happen)."""
    ids = [d.pk for d in deliveries]
    if ids:
        WebhookDelivery.objects.filter(pk__in=ids, claim_token=token).update(
            status=Status.PENDING, claim_token="", next_attempt_at=now, attempts=F("attempts") - 1
        )


def retry_delay(*, attempts_in_round: int, retry_after: float | None = None) -> timedelta:
    """The wait before the next attempt of a round, after ``attempts_in_round`` failed ones."""
    scheduled = RETRY_SCHEDULE[min(attempts_in_round, len(RETRY_SCHEDULE) - 1)]
    delay = scheduled * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)
    if retry_after is not None:
        delay = max(delay, min(timedelta(seconds=retry_after), RETRY_AFTER_MAX))
    return delay


def attempt_headers(delivery: WebhookDelivery, now: datetime) -> dict[str, str]:
    return signing.headers(
        secrets_=signing_secrets(delivery.subscription, now),
        message_id=delivery.message_id,
        timestamp=int(now.timestamp()),
        body=delivery.body.encode(),
    )


def delivery_attempt(
    *,
    delivery: WebhookDelivery,
    token: str,
    now: datetime | None = None,
    connections: network.Connections | None = None,
) -> network.Response:
    """Send one claimed delivery and record the attempt and its consequences."""
    now = now or timezone.now()
    response = network.post(
        delivery.subscription.url,
        body=delivery.body.encode(),
        headers=attempt_headers(delivery, now),
        connections=connections,
    )
    attempt_record(delivery=delivery, token=token, response=response, started_at=now)
    return response


@transaction.atomic
def attempt_record(*, delivery: WebhookDelivery, token: str, response: network.Response, started_at: datetime) -> None:
    """Record an attempt; settle the delivery (delivered, failed, or the next retry) and what it
    means for the subscription (410 disables it; five days of failures too)."""
    _bookkeeping_commit()
    now = started_at + timedelta(milliseconds=response.duration_ms)
    changes: dict[str, Any] = {
        "claim_token": "",
        "last_attempt_at": started_at,
        "last_response_status": response.status_code or None,
        "last_response_body": response.body,
        "last_error": response.error,
    }
    gone = response.status_code == 410
    if response.ok:
        changes.update(status=Status.DELIVERED, delivered_at=now, next_attempt_at=None)
    elif gone or delivery.attempts >= delivery.max_attempts:
        changes.update(status=Status.FAILED, next_attempt_at=None)
    else:
        round_start = delivery.max_attempts - len(RETRY_SCHEDULE)
        delay = retry_delay(attempts_in_round=delivery.attempts - round_start, retry_after=response.retry_after)
        changes.update(status=Status.PENDING, next_attempt_at=now + delay)
    # A sender whose lease ran out lost the claim to another: its answer no longer settles
    # anything, but the attempt happened and is recorded (unless the delivery is gone: deleted).
    settled = WebhookDelivery.objects.filter(pk=delivery.pk, claim_token=token).update(**changes)
    if settled or WebhookDelivery.objects.filter(pk=delivery.pk).exists():
        WebhookAttempt.objects.create(
            delivery_id=delivery.pk,
            number=delivery.attempts,
            started_at=started_at,
            duration_ms=response.duration_ms,
            resolved_ip=response.resolved_ip,
            status_code=response.status_code or None,
            response_body=response.body,
            error_kind=response.error_kind,
            error=response.error,
        )
    if not settled:
        return
    for key, value in changes.items():
        setattr(delivery, key, value)
    if delivery.is_test:
        return
    subscription = delivery.subscription
    subs = WebhookSubscription.objects.filter(pk=subscription.pk)
    if response.ok:
        # At most one write a second per subscription, however many deliveries succeed.
        recent = subscription.last_delivery_at is not None and subscription.last_delivery_at >= now - timedelta(
            seconds=1
        )
        if subscription.failing_since is None and recent:
            return
        subs.filter(
            Q(failing_since__isnull=False)
            | Q(last_delivery_at__isnull=True)
            | Q(last_delivery_at__lt=now - timedelta(seconds=1))
        ).update(last_delivery_at=now, failing_since=None)
        subscription.last_delivery_at, subscription.failing_since = now, None
        return
    # What this claim's earlier attempts learnt spares statements in a failure storm; the clock
    # may start a little late when another sender's success cleared it meanwhile (disabling later).
    if subscription.failing_since is None:
        subs.filter(failing_since__isnull=True).update(failing_since=started_at)
        subscription.failing_since = started_at
    if gone:
        subscription_set_enabled(
            subscription=subscription,
            enabled=False,
            reason=WebhookSubscription.DisabledReason.GONE,
            detail=f"{subscription.url} answered 410 Gone on {now:%Y-%m-%d %H:%M} UTC.",
            now=now,
        )
        return
    if subscription.failing_since > now - FAILING_DISABLE_AFTER:
        return
    failing = subs.filter(enabled=True, failing_since__lte=now - FAILING_DISABLE_AFTER).values_list(
        "failing_since", flat=True
    )
    since = failing.first()
    if since is not None:
        subscription_set_enabled(
            subscription=subscription,
            enabled=False,
            reason=WebhookSubscription.DisabledReason.FAILING,
            detail=(
                f"Every delivery failed from {since:%Y-%m-%d %H:%M} to {now:%Y-%m-%d %H:%M} UTC; the last: "
                f"{response.error or 'no answer'}. Fix the endpoint, enable the subscription and replay."
            ),
            now=now,
        )


def deliveries_send_due(*, limit: int = SEND_BATCH, budget: float = 30.0) -> int:
    """Claim and send due deliveries until none are left or ``budget`` seconds have passed.

    A claimed delivery is sent only while its lease outlasts the timeout by ``LEASE_MARGIN``,
    so no other sender can take it over mid-send; the rest of a claim is handed back.
    Returns the attempts made.
    """
    started = time.monotonic()
    sent = 0
    with network.Connections() as connections:  # keep-alive across this run's attempts
        while time.monotonic() - started < budget:
            claim = deliveries_claim(limit=limit)
            if not claim.deliveries:
                break
            for index, delivery in enumerate(claim.deliveries):
                now = timezone.now()
                if now + timedelta(seconds=settings.WEBHOOK_TIMEOUT) + LEASE_MARGIN > claim.lease_ends:
                    _release(claim.deliveries[index:], claim.token, now)
                    break
                delivery_attempt(delivery=delivery, token=claim.token, now=now, connections=connections)
                sent += 1
    return sent


# ---------------------------------------------------------------------------------------
# Replay, test sends, sweep, retention
# ---------------------------------------------------------------------------------------


def _requeue(deliveries: QuerySet[WebhookDelivery], now: datetime) -> int:
    """Queue deliveries for a new round of attempts (same id, same bytes): receivers dedupe on it."""
    count = deliveries.exclude(status=Status.DELIVERING).update(
        status=Status.PENDING,
        claim_token="",
        next_attempt_at=now,
        max_attempts=F("attempts") + len(RETRY_SCHEDULE),
    )
    if count:
        _send_on_commit(count)
    return count


@transaction.atomic
def delivery_replay(*, delivery: WebhookDelivery, now: datetime | None = None) -> int:
    """Send one delivery again (delivered or failed; one in flight is left alone). Returns 0 or 1."""
    return _requeue(WebhookDelivery.objects.filter(pk=delivery.pk, is_test=False), now or timezone.now())


@transaction.atomic
def deliveries_replay_failed(*, subscription: WebhookSubscription, since: datetime, now: datetime | None = None) -> int:
    """Send again every failed delivery of the subscription created since ``since``."""
    rows = WebhookDelivery.objects.filter(
        subscription_id=subscription.pk, status=Status.FAILED, created_at__gte=since, is_test=False
    )
    return _requeue(rows, now or timezone.now())


def subscription_test(
    *, subscription: WebhookSubscription, event_type: str | None = None, now: datetime | None = None
) -> tuple[WebhookDelivery, network.Response]:
    """Send a signed sample of a type's real payload now (synchronously), recorded as a test delivery."""
    now = now or timezone.now()
    event_type = event_type or (subscription.event_types or list(EVENT_TYPE_NAMES))[0]
    if event_type not in BY_NAME:
        raise ValidationError({"event_type": [f"Unknown event type '{event_type}'."]})
    message_id = f"test_{time.time_ns()}"
    token = uuid.uuid4().hex
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            workspace_id=subscription.workspace_id,
            subscription=subscription,
            message_id=message_id,
            event_type=event_type,
            body=payloads.envelope(
                message_id=message_id,
                event_type=event_type,
                occurred_at=now,
                workspace_id=subscription.workspace_id,
                data=payloads.sample_data(event_type, workspace_id=subscription.workspace_id, now=now),
            ),
            status=Status.DELIVERING,
            attempts=1,
            max_attempts=1,
            claim_token=token,
            is_test=True,
            created_at=now,
            last_attempt_at=now,
        )
    delivery.subscription = subscription
    return delivery, delivery_attempt(delivery=delivery, token=token, now=now)


@dataclass(frozen=True)
class SweepResult:
    outbox_waiting: bool
    due: int
    given_up: int


@transaction.atomic
def webhooks_sweep(*, now: datetime | None = None, limit: int = 1000) -> SweepResult:
    """What the periodic task looks at: outbox rows whose fan-out was lost, due deliveries
    (retries, expired claims, lost publishes), and claims lost on a final attempt (failed)."""
    now = now or timezone.now()
    given_up = WebhookDelivery.objects.filter(
        status=Status.DELIVERING, next_attempt_at__lt=now, attempts__gte=F("max_attempts")
    ).update(
        status=Status.FAILED,
        claim_token="",
        next_attempt_at=None,
        last_error="The sender was lost during the final attempt.",
    )
    due = (
        WebhookDelivery.objects.filter(
            status__in=[Status.PENDING, Status.DELIVERING], next_attempt_at__lte=now, subscription__enabled=True
        )
        .values("pk")[:limit]
        .count()
    )
    return SweepResult(outbox_waiting=WebhookOutbox.objects.exists(), due=due, given_up=given_up)


@transaction.atomic
def deliveries_prune(*, now: datetime | None = None, limit: int = 10_000) -> int:
    """Delete settled deliveries (and their attempts) older than WEBHOOK_RETENTION_DAYS, a batch at a time."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
    ids = list(
        WebhookDelivery.objects.filter(status__in=[Status.DELIVERED, Status.FAILED], created_at__lt=cutoff).values_list(
            "pk", flat=True
        )[:limit]
    )
    if not ids:
        return 0
    WebhookAttempt.objects.filter(delivery_id__in=ids).delete()
    return WebhookDelivery.objects.filter(pk__in=ids).delete()[0]
