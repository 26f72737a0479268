"""Who, and what they did: contacts, their custom events and their timeline."""

import re
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import F, OrderBy, Q

from events_platform.workspaces.models import Workspace

EVENT_NAME_PATTERN = r"^[a-z0-9_./-]+\Z"  # \Z, not $: "$" also matches before a final newline
EVENT_NAME_MAX_LENGTH = 100
EXTERNAL_ID_MAX_LENGTH = 255
GOAL_NAME_MAX_LENGTH = 100
GOAL_VALUE_MAX_DIGITS = 14
GOAL_VALUE_DECIMAL_PLACES = 2
PROPERTIES_MAX_BYTES = 64 * 1024


class GoalType(models.TextChoices):
    PURCHASE = "purchase"
    SUBSCRIPTION = "subscription"
    LEAD = "lead"
    SIGNUP = "signup", "Sign-up"
    BOOKING = "booking"
    TRIAL = "trial"
    OTHER = "other"


# Goal types whose events must carry a value (money).
GOAL_TYPES_REQUIRING_VALUE = frozenset({GoalType.PURCHASE, GoalType.SUBSCRIPTION})


def normalize_email(email: str) -> str:
    """An email as contacts store and look it up on every path: trimmed and lower-cased."""
    return email.strip().lower()


# Notifuse's contact profile fields that are not columns here (NOTIFUSE-API.md §4.1), by type. They
# are kept as keys of the contact's ``properties`` under their own names, the one place the segment
# engine's DimensionFilter reads them (``phone`` is ``properties.phone``). Strings are limited to
# Notifuse's column lengths; times are stored as UTC RFC 3339 text (what ``PropertyInstant`` reads);
# json fields hold an object or an array.
PROFILE_STRING_MAX_LENGTHS: dict[str, int] = {
    "timezone": 50,
    "language": 50,
    "phone": 50,
    "address_line_1": 255,
    "address_line_2": 255,
    "country": 100,
    "postcode": 20,
    "state": 100,
    "job_title": 255,
    **{f"custom_string_{n}": 255 for n in range(1, 6)},
}
PROFILE_FIELD_TYPES: dict[str, str] = {
    **dict.fromkeys(PROFILE_STRING_MAX_LENGTHS, "string"),
    **{f"custom_number_{n}": "number" for n in range(1, 6)},
    **{f"custom_datetime_{n}": "datetime" for n in range(1, 6)},
    **{f"custom_json_{n}": "json" for n in range(1, 6)},
}
# A stored profile time: UTC RFC 3339 as the API writes it (``profile_datetime_text``).
_PROFILE_INSTANT = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z\Z")


def profile_value_is_typed(name: str, value: Any) -> bool:
    """Whether a stored ``properties[name]`` holds a value of the profile field's type (rows written
    before these fields were typed, or through the admin's raw JSON, may hold anything)."""
    kind = PROFILE_FIELD_TYPES[name]
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "datetime":
        return isinstance(value, str) and _PROFILE_INSTANT.match(value) is not None
    return isinstance(value, dict | list)


def split_properties(properties: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A contact's stored ``properties`` as (profile fields, the rest): a profile key holding a
    value of its type is a profile field; anything else stays a free-form property, so nothing
    stored is hidden."""
    if not isinstance(properties, dict):
        return {}, {}
    profile: dict[str, Any] = {}
    free: dict[str, Any] = {}
    for key, value in properties.items():
        if key in PROFILE_FIELD_TYPES and profile_value_is_typed(key, value):
            profile[key] = value
        else:
            free[key] = value
    return profile, free


def merged_properties(stored: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
    """The ``properties`` after a write of ``fields`` (a contacts upsert's fields), or None when
    they do not change it. A ``properties`` object replaces the free-form keys whole and keeps the
    profile fields; a profile field sent (by name, or as a key of that object) is set, or removed
    when None."""
    sent = fields.get("properties")
    profile = {name: fields[name] for name in PROFILE_FIELD_TYPES if name in fields}
    if sent is None and not profile:
        return None
    current = stored if isinstance(stored, dict) else {}
    if sent is None:
        merged = dict(current)
    else:
        merged = {key: value for key, value in current.items() if key in PROFILE_FIELD_TYPES} | sent
    for name, value in profile.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


class Contact(models.Model):
    # No index of its own (nor a pattern one for its text key): the unique (workspace, email) and
    # contact_ws_created_idx lead with it.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="contacts", db_index=False)
    email = models.CharField(max_length=254, help_text="Trimmed and lower-cased on every path.")
    external_id = models.CharField(max_length=255, blank=True, default="")
    first_name = models.CharField(max_length=150, blank=True, default="")
    last_name = models.CharField(max_length=150, blank=True, default="")
    properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "email"], name="unique_contact_email_per_workspace"),
            models.CheckConstraint(condition=~Q(email=""), name="contact_email_not_empty"),
        ]
        # The unique constraint's index serves every lookup by email (the upsert's, contacts.get).
        indexes = [
            # contacts.list and the contacts page newest first.
            models.Index(fields=["workspace", "-created_at", "-id"], name="contact_ws_created_idx"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def profile(self) -> dict[str, Any]:
        """The Notifuse profile fields that are set (``PROFILE_FIELD_TYPES``), read from ``properties``."""
        return split_properties(self.properties)[0]

    @property
    def free_properties(self) -> dict[str, Any]:
        """``properties`` without the profile fields: this app's own free-form object."""
        return split_properties(self.properties)[1]


class CustomEventQuerySet(models.QuerySet["CustomEvent"]):
    def live(self) -> "CustomEventQuerySet":
        return self.filter(deleted_at__isnull=True)

    def goals(self) -> "CustomEventQuerySet":
        return self.filter(goal_type__isnull=False)


class CustomEvent(models.Model):
    class Source(models.TextChoices):
        API = "api", "API"
        IMPORT = "import"
        INTEGRATION = "integration"
        ADMIN = "admin"

    # No indexes of their own: the identity constraint and the indexes below lead with them.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="custom_events", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="custom_events", db_index=False)
    event_name = models.CharField(max_length=EVENT_NAME_MAX_LENGTH)
    external_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    properties = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    source = models.CharField(max_length=32, default=Source.API)
    integration_id = models.CharField(max_length=255, null=True, blank=True)
    goal_type = models.CharField(max_length=16, choices=GoalType.choices, null=True, blank=True)
    goal_name = models.CharField(max_length=GOAL_NAME_MAX_LENGTH, null=True, blank=True)
    goal_value = models.DecimalField(
        max_digits=GOAL_VALUE_MAX_DIGITS, decimal_places=GOAL_VALUE_DECIMAL_PLACES, null=True, blank=True
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CustomEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            # The upsert's identity: its ON CONFLICT and its lock of the rows that existed.
            models.UniqueConstraint(
                fields=["workspace", "event_name", "external_id"], name="unique_event_identity_per_workspace"
            ),
        ]
        indexes = [
            # A contact's events newest first (contact page, customEvents.list?email=). The
            # event name is included so the contact page's kinds (``selectors.timeline_kinds``)
            # are an index-only scan: 10,000 events of one contact sit on thousands of heap pages.
            models.Index(
                fields=["contact", "-occurred_at", "-id"], include=["event_name"], name="event_contact_occurred_idx"
            ),
            # customEvents.list?event_name= newest first.
            models.Index(fields=["workspace", "event_name", "-occurred_at", "-id"], name="event_ws_name_idx"),
            # The events page: a workspace's events newest first (read backwards), whatever the
            # filters, and the dashboard's last partial bucket (``activity.py``). Ascending keys:
            # new events land at the right end of their workspace's range, where full pages split
            # 90/10 (migration 0008). No INCLUDE columns since 0009: the dashboard reads
            # ``EventActivity``.
            models.Index(fields=["workspace", "occurred_at", "id"], name="event_ws_occurred_idx"),
            # Per-contact goal aggregation for segments: only live goal rows, with the
            # aggregated columns included so PostgreSQL answers from the index alone.
            models.Index(
                fields=["workspace", "goal_type", "contact"],
                include=["occurred_at", "goal_value"],
                condition=Q(deleted_at__isnull=True, goal_type__isnull=False),
                name="event_live_goal_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_name}:{self.external_id}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class TimelineOperation(models.TextChoices):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    RESTORE = "restore"


class _TimelineColumns(models.Model):
    """The columns of a timeline entry, stored (``StoredTimelineEntry``) or derived from an event
    (the ``TimelineEntry`` view)."""

    Operation = TimelineOperation

    # "custom_event." + any valid event name must fit; TextField has no length trap.
    kind = models.TextField()
    operation = models.CharField(max_length=16, choices=TimelineOperation.choices)
    entity_type = models.CharField(max_length=32)
    entity_id = models.CharField(max_length=64)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(help_text="When it happened (for events: their occurred_at).")
    db_created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.kind} {self.operation}"


class StoredTimelineEntry(_TimelineColumns):
    """The timeline entries stored as rows: every entry but an event's insert.

    An event's insert entry is its row (``TimelineEntry``, migration 0011): a stored copy was a
    third of the bytes per event. Only an event whose ``occurred_at`` moved since has its insert
    entry stored, at the time it had. Writers write here; readers read ``TimelineEntry``. On
    PostgreSQL the ids come from the events' sequence, so a stored entry and an event never share
    an id and the view's ``(created_at, id)`` order is the two tables' own index order.
    """

    # No indexes of their own: nothing reads a workspace's timeline; the contact's indexes lead
    # with the contact.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Set for custom-event entries (updates, deletes, restores) so readers can show the event's
    # current data.
    custom_event = models.ForeignKey(
        CustomEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )

    class Meta:
        db_table = "contacts_timelineentry"
        ordering = ["-created_at", "-id"]
        verbose_name = "stored timeline entry"
        verbose_name_plural = "stored timeline entries"
        constraints = [
            # The insert entry of an event whose occurred_at moved (``services._event_entries``),
            # at most one; the view reads the event row for every other event (NOT EXISTS here).
            models.UniqueConstraint(
                fields=["custom_event"],
                condition=Q(operation="insert", custom_event__isnull=False),
                name="timeline_event_insert_uniq",
            ),
        ]
        indexes = [
            # timeline.list and the contact page, newest first (the view's stored half).
            models.Index(fields=["contact", "-created_at", "-id"], name="timeline_contact_created_idx"),
            # The same filtered by kind, and the kinds of the page's filter (timeline_kinds). No
            # created_at / id: its keys repeat, so PostgreSQL stores each (contact, kind) once with
            # its rows (a fifth of the size); a page of one kind sorts that kind's rows.
            models.Index(fields=["contact", "kind"], name="timeline_contact_kind_idx"),
            # An event's entries: the later entries that rebuild an insert's changes
            # (selectors.with_insert_changes), and the cascade when an event is erased. Only
            # entries of an event: NULL keys after every id kept new ids off the rightmost page.
            models.Index(fields=["custom_event"], condition=Q(custom_event__isnull=False), name="timeline_event_idx"),
        ]


class TimelineEntry(_TimelineColumns):
    """A contact's timeline: the stored entries and, for each event without a stored insert
    entry, its insert entry read from the event row (kind ``custom_event.<name>``, at the
    event's ``occurred_at``, id the event's; changes rebuilt by
    ``selectors.with_insert_changes``). A database view (migration 0011): read-only; write
    ``StoredTimelineEntry``."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_index=False
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.DO_NOTHING, db_constraint=False, related_name="timeline", db_index=False
    )
    custom_event = models.ForeignKey(
        CustomEvent,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="timeline_entries",
        db_index=False,
    )

    class Meta:
        managed = False
        db_table = "contacts_timeline"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "timeline entries"


class ContactTally(models.Model):
    """The number of contacts of each workspace, as signed delta rows that sum to it
    (``events_platform.tallies``): the dashboard's and ``contacts.count``'s figure without a
    scan of the contacts.

    Kept by database triggers on ``contacts_contact`` (migration 0010): every statement that
    inserts or deletes contacts (the ingest's, an import's, an erasure's cascade, the admin's, a
    COPY) adds, in its own transaction, one row per workspace it changed. No foreign key: the
    triggers write while a workspace's deletion cascades; its rows then sum to nothing and the
    compaction (``contacts.tasks.contacts_activity_compact_task``) drops them.
    """

    workspace = models.ForeignKey(
        Workspace, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_index=False
    )
    contacts = models.BigIntegerField()

    class Meta:
        verbose_name_plural = "contact tallies"
        indexes = [
            # The workspace's rows (an index-only sum), and the compaction's groups.
            models.Index(fields=["workspace"], include=["contacts"], name="contact_tally_ws_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.contacts:+d}"


class EventActivity(models.Model):
    """Live events and net revenue per 15-minute bucket of ``occurred_at``: the dashboard's read
    model (``contacts/activity.py`` has the whole cycle).

    Append-only deltas: each write of events adds, in its own transaction, one row per bucket it
    changed (an insert +1, a soft delete -1, an erasure minus the contact's events, an update
    minus the old version plus the new), so concurrent writers never wait on a shared counter and
    the sums are exact at every commit. The compaction (beat, every minute) folds each bucket's
    rows into one. A bucket is 15 minutes of UTC, which every time zone's midnight falls on.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    bucket = models.DateTimeField(help_text="Start of the 15 minutes (UTC) the events occurred in.")
    events = models.BigIntegerField(default=0)
    revenue = models.DecimalField(
        max_digits=GOAL_VALUE_MAX_DIGITS + 6, decimal_places=GOAL_VALUE_DECIMAL_PLACES, default=Decimal("0.00")
    )

    class Meta:
        verbose_name_plural = "event activity"
        indexes = [
            # The dashboard's window of a workspace (an index-only scan of its range), and the
            # compaction's groups.
            models.Index(
                fields=["workspace", "bucket"], include=["events", "revenue"], name="event_activity_bucket_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.bucket:%Y-%m-%d %H:%M}: {self.events} events"


class NullsFirstIndex(models.Index):
    """An index whose ``.asc(nulls_first=True)`` expressions put NULL first on every database.

    PostgreSQL sorts NULL last unless told; SQLite always sorts it first and rejects the clause
    in an index, so there the plain column is indexed. Either way the index reads in order for
    ``ASC NULLS FIRST`` forward and ``DESC NULLS LAST`` backward.
    """

    def create_sql(self, model: Any, schema_editor: Any, using: str = "", **kwargs: Any) -> Any:
        if schema_editor.connection.vendor == "postgresql":
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        plain = self.clone()
        plain.expressions = tuple(e.expression if isinstance(e, OrderBy) else e for e in self.expressions)
        return models.Index.create_sql(plain, model, schema_editor, using=using, **kwargs)


class ContactTotals(models.Model):
    """A contact's figures for the contacts list, denormalised so the list sorts by an index.

    The same figures as ``selectors.with_contact_totals`` computes live: net lifetime value
    (live purchases, refunds negative), orders (live purchases of positive value) and the last
    live event of any kind. Eventually consistent: rewritten by ``refresh.contact_totals_refresh``
    when the refresh queue (``PendingContactRefresh``) is drained after a change (normally within
    a second of the commit); a contact appears in the sorts by these figures once it has a row.
    """

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, primary_key=True, related_name="totals")
    # No index of its own: the three keyset indexes below lead with it.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    lifetime_value = models.DecimalField(
        max_digits=GOAL_VALUE_MAX_DIGITS + 6, decimal_places=GOAL_VALUE_DECIMAL_PLACES, default=Decimal("0.00")
    )
    order_count = models.IntegerField(default=0)
    last_event_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "contact totals"
        # Keyset sorts of the contacts list, read forward or backward: (workspace, key, contact).
        indexes = [
            models.Index(fields=["workspace", "lifetime_value", "contact"], name="contact_totals_ltv_idx"),
            models.Index(fields=["workspace", "order_count", "contact"], name="contact_totals_orders_idx"),
            # A contact without events sorts as the smallest (NULL first ascending, last descending).
            NullsFirstIndex(
                F("workspace"),
                F("last_event_at").asc(nulls_first=True),
                F("contact"),
                name="contact_totals_last_event_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"totals of {self.contact_id}"


class PendingContactRefresh(models.Model):
    """Contacts whose data changed and whose read models await a refresh: the refresh queue.

    A queue in the database, so contacts that change close together are claimed and refreshed
    together by whichever worker drains it next (``contacts/refresh.py`` has the whole cycle:
    queue, claim, the drain's hooks, release). A claim is a lease, committed before the
    refresh starts, so ingest never waits for one: a contact that changes again meanwhile is
    re-queued (its claim cleared) and kept when the drain deletes what it claimed. Nothing is
    lost if a worker dies: its expired claims are taken again.
    """

    # No index of its own: unique_pending_contact_refresh leads with it (migration 0014).
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    # No foreign key: a contact erased meanwhile simply drops out of the refresh.
    contact_id = models.BigIntegerField()
    queued_at = models.DateTimeField(auto_now_add=True)
    claim_token = models.CharField(max_length=32, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "contact_id"], name="unique_pending_contact_refresh"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} pending in {self.workspace_id}"
