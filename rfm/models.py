"""RFM: models (a configuration per workspace), every contact's scores and group, the full runs and
the append-only log of group changes (RFM §5)."""

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from contacts.models import Contact
from events_platform.workspaces.models import Workspace, validate_timezone

RFM_SLUG_MAX_LENGTH = 32
RFM_SLUG_VALIDATOR = RegexValidator(
    r"^[a-z0-9_]+\Z", "Use only lowercase letters, digits and underscores (a-z, 0-9, _)."
)
GROUP_MAX_LENGTH = 48


class RfmModelQuerySet(models.QuerySet["RfmModel"]):
    def live(self) -> "RfmModelQuerySet":
        return self.exclude(status=RfmModel.Status.DELETED)


class RfmModel(models.Model):
    """One RFM configuration of a workspace (``rfm/config.py`` validates it) and its last run."""

    class Status(models.TextChoices):
        COMPUTING = "computing"
        ACTIVE = "active"
        FAILED = "failed"
        DELETED = "deleted"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="rfm_models")
    slug = models.CharField(max_length=RFM_SLUG_MAX_LENGTH, validators=[RFM_SLUG_VALIDATOR])
    name = models.CharField(max_length=255)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    goal_types = models.JSONField(help_text="Goal types whose events count, e.g. ['purchase'].")
    event_names = models.JSONField(null=True, blank=True, help_text="Only these event names (null: any).")
    window_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(3650)], help_text="null: all time."
    )
    scale = models.PositiveSmallIntegerField(default=5)
    recency = models.JSONField(help_text='{"mode": "quantile"} or {"mode": "thresholds", "cuts": [...]}')
    frequency = models.JSONField()
    monetary = models.JSONField()
    group_map = models.JSONField(help_text="klaviyo6, classic11 or a list of custom rules.")
    version = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPUTING)
    last_computed_at = models.DateTimeField(null=True, blank=True, help_text="T of the last full run.")
    last_duration_ms = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    population = models.IntegerField(default=0, help_text="Customers scored by the last full run (N).")
    cutpoints = models.JSONField(
        default=dict, blank=True, help_text="Per dimension, the values the last full run scored by (RFM §6)."
    )
    # The daily full run: the next one is due at this instant (00:05 in the model's timezone).
    next_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RfmModelQuerySet.as_manager()

    # Written by the runs (and the timestamps by the database), never by a person: the API shows
    # them, the admin cannot change them.
    RUN_FIELDS = (
        "version",
        "status",
        "last_computed_at",
        "last_duration_ms",
        "last_error",
        "population",
        "cutpoints",
        "next_run_at",
        "created_at",
        "updated_at",
    )

    class Meta:
        ordering = ["workspace", "slug"]
        verbose_name = "RFM model"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "slug"],
                condition=~Q(status="deleted"),
                name="unique_live_rfm_model_slug_per_workspace",
            ),
            models.CheckConstraint(condition=~Q(slug=""), name="rfm_model_slug_not_empty"),
            models.CheckConstraint(condition=Q(scale__in=[3, 5]), name="rfm_model_scale_3_or_5"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def config(self) -> dict[str, object]:
        return {
            "goal_types": self.goal_types,
            "event_names": self.event_names,
            "window_days": self.window_days,
            "scale": self.scale,
            "recency": self.recency,
            "frequency": self.frequency,
            "monetary": self.monetary,
            "group_map": self.group_map,
        }


class RfmScore(models.Model):
    """A contact's scores and group under one model. Every contact of the workspace has a row
    after the model's first full run (r/f/m and raw values null for prospect and lapsed); a
    contact created since then is ``prospect`` until its first re-score writes its row."""

    model = models.ForeignKey(RfmModel, on_delete=models.CASCADE, related_name="scores", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="rfm_scores")
    recency_days = models.IntegerField(null=True, blank=True)
    frequency = models.IntegerField(null=True, blank=True)
    monetary_cents = models.BigIntegerField(null=True, blank=True)
    r = models.PositiveSmallIntegerField(null=True, blank=True)
    f = models.PositiveSmallIntegerField(null=True, blank=True)
    m = models.PositiveSmallIntegerField(null=True, blank=True)
    group = models.CharField(max_length=GROUP_MAX_LENGTH)
    previous_group = models.CharField(max_length=GROUP_MAX_LENGTH, blank=True, default="")
    group_changed_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["model", "contact"]
        constraints = [
            models.UniqueConstraint(fields=["model", "contact"], name="unique_rfm_score_per_model_contact"),
        ]
        indexes = [
            models.Index(fields=["model", "group", "contact"], name="rfm_score_group_idx"),
            models.Index(fields=["model", "r", "f", "contact"], name="rfm_score_cell_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} {self.group} in {self.model_id}"


class RfmGroupTally(models.Model):
    """The number of score rows of each (model, group), as signed delta rows that sum to it
    (``events_platform.tallies``): the dashboard's group sizes without a scan of the scores.

    Kept by database triggers on ``rfm_rfmscore`` (migration 0002): every statement that
    inserts, updates or deletes scores (a full run, a re-score, an erasure's or a model's
    cascade) adds, in its own transaction, one row per (model, group) whose size it changed. No
    foreign key: the triggers write while a model's deletion cascades; its rows then sum to
    nothing and the compaction (``rfm.tasks.rfm_group_tally_compact_task``) drops them.
    """

    model = models.ForeignKey(
        RfmModel, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_index=False
    )
    group = models.CharField(max_length=GROUP_MAX_LENGTH)
    contacts = models.BigIntegerField()

    class Meta:
        verbose_name_plural = "RFM group tallies"
        indexes = [
            # The models' rows (an index-only sum per group), and the compaction's groups.
            models.Index(fields=["model", "group"], include=["contacts"], name="rfm_group_tally_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} {self.group} {self.contacts:+d}"


class RfmRun(models.Model):
    """One full run: its instant, the cut points it scored by and the sizes it found."""

    model = models.ForeignKey(RfmModel, on_delete=models.CASCADE, related_name="runs", db_index=False)
    as_of = models.DateTimeField()
    population = models.IntegerField()
    cutpoints = models.JSONField(default=dict)
    group_counts = models.JSONField(default=dict, help_text="{group: contacts}, every contact of the workspace.")
    cells = models.JSONField(default=list, help_text="[{r, f, count, monetary_cents}] per occupied R x F cell.")
    changed = models.IntegerField(default=0, help_text="Group changes this run recorded.")
    duration_ms = models.IntegerField(default=0)

    class Meta:
        ordering = ["model", "-as_of"]
        indexes = [models.Index(fields=["model", "-as_of"], name="rfm_run_model_as_of_idx")]

    def __str__(self) -> str:
        return f"run of {self.model_id} as of {self.as_of:%Y-%m-%d %H:%M}"


class RfmGroupChange(models.Model):
    """Append-only: a contact moved from one group to another under a model (run null: the
    incremental re-score after an event)."""

    model = models.ForeignKey(RfmModel, on_delete=models.CASCADE, related_name="group_changes", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="rfm_group_changes", db_index=False)
    from_group = models.CharField(max_length=GROUP_MAX_LENGTH)
    to_group = models.CharField(max_length=GROUP_MAX_LENGTH)
    changed_at = models.DateTimeField()
    run = models.ForeignKey(RfmRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["model", "changed_at"], name="rfm_change_model_idx"),
            models.Index(fields=["contact", "-changed_at"], name="rfm_change_contact_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} {self.from_group} -> {self.to_group}"
