"""Which contacts match: segments (a rule tree), their current members and the history of changes."""

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from contacts.models import Contact
from events_platform.workspaces.models import Workspace, validate_timezone

SEGMENT_SLUG_MAX_LENGTH = 32
SEGMENT_SLUG_VALIDATOR = RegexValidator(
    r"^[a-z0-9_]+$", "Use only lowercase letters, digits and underscores (a-z, 0-9, _)."
)
DEFAULT_COLOR = "#4f46e5"
COLOR_PATTERN = r"^#[0-9a-fA-F]{6}$"
COLOR_VALIDATOR = RegexValidator(COLOR_PATTERN, f"Use a hex colour such as {DEFAULT_COLOR}.")
# The colour names Notifuse's console sends (antd's preset palette, default "blue"), each stored
# as that preset's primary hex (@ant-design/colors presetPrimaryColors), so every page can draw it.
NAMED_COLORS = {
    "magenta": "#eb2f96",
    "red": "#f5222d",
    "volcano": "#fa541c",
    "orange": "#fa8c16",
    "gold": "#faad14",
    "yellow": "#fadb14",
    "lime": "#a0d911",
    "green": "#52c41a",
    "cyan": "#13c2c2",
    "blue": "#1677ff",
    "geekblue": "#2f54eb",
    "purple": "#722ed1",
    "grey": "#666666",
    "gray": "#666666",
}


def _live(prefix: str = "") -> Q:
    """A segment that is not deleted (deleted rows stay for their history and slug reuse)."""
    return ~Q(**{f"{prefix}status": Segment.Status.DELETED})


class SegmentQuerySet(models.QuerySet["Segment"]):
    def live(self) -> "SegmentQuerySet":
        """Segments that exist for their workspace: every status but deleted."""
        return self.filter(_live())


class Segment(models.Model):
    class Status(models.TextChoices):
        BUILDING = "building"
        ACTIVE = "active"
        FAILED = "failed"
        DELETED = "deleted"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="segments")
    # The public id in the API; the integer pk stays internal so slugs could be renamed later.
    slug = models.CharField(max_length=SEGMENT_SLUG_MAX_LENGTH, validators=[SEGMENT_SLUG_VALIDATOR])
    name = models.CharField(max_length=255)
    color = models.CharField(max_length=7, default=DEFAULT_COLOR, validators=[COLOR_VALIDATOR])
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    tree = models.JSONField(help_text="Validated rule tree, see segments/rules.py.")
    version = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.BUILDING)
    member_count = models.IntegerField(default=0)
    last_built_at = models.DateTimeField(null=True, blank=True)
    last_build_duration_ms = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # A build holds a lease: whoever writes memberships must present the current token,
    # and an expired lease may be taken over by another worker.
    build_token = models.CharField(max_length=64, blank=True, default="")
    build_lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Relative timeframes ("in the last 30 days") make membership drift with time alone,
    # so such segments are rebuilt on a schedule. Computed from the tree by rules.has_relative_timeframe.
    has_relative_timeframe = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SegmentQuerySet.as_manager()

    class Meta:
        ordering = ["workspace", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="unique_segment_slug_per_workspace"),
            models.CheckConstraint(condition=~Q(slug=""), name="segment_slug_not_empty"),
            models.CheckConstraint(condition=Q(member_count__gte=0), name="segment_member_count_not_negative"),
        ]
        indexes = [
            # The beat task picks active rolling segments.
            models.Index(
                fields=["has_relative_timeframe", "status"],
                name="segment_rolling_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def build_phase(self) -> str:
        """Where a build in progress is: "queued" (asked for, waiting for a worker: its publish may
        have failed, the recovery sweep publishes it again), "running" (a worker holds the
        lease), or "" when no build is in progress."""
        if self.status != self.Status.BUILDING:
            return ""
        return "running" if self.build_token else "queued"


class SegmentMembershipQuerySet(models.QuerySet["SegmentMembership"]):
    def live(self) -> "SegmentMembershipQuerySet":
        """Memberships of live segments. The contacts layer reads a contact's memberships through
        the reverse relation (``contact.segment_memberships.live()``), so it never imports us."""
        return self.filter(_live("segment__"))


class SegmentMembership(models.Model):
    # The unique (segment, contact) index serves lookups by segment; the FK index on
    # contact serves "segments of a contact" (contact page, contact API).
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="segment_memberships")
    entered_at = models.DateTimeField()

    objects = SegmentMembershipQuerySet.as_manager()

    class Meta:
        ordering = ["segment", "contact"]
        constraints = [
            models.UniqueConstraint(fields=["segment", "contact"], name="unique_segment_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.segment_id}"


class SegmentMembershipChange(models.Model):
    class Change(models.TextChoices):
        ENTERED = "entered"
        EXITED = "exited"

    # Both FKs are served by the composite indexes below.
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="membership_changes", db_index=False)
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="segment_membership_changes", db_index=False
    )
    change = models.CharField(max_length=16, choices=Change.choices)
    changed_at = models.DateTimeField()

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["segment", "-changed_at"], name="segment_change_segment_idx"),
            models.Index(fields=["contact", "-changed_at"], name="segment_change_contact_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} {self.change} {self.segment_id}"
