"""Tenancy: workspaces, their members and their API keys."""

from __future__ import annotations

import hashlib
import zoneinfo
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

if TYPE_CHECKING:
    from django.contrib.auth.models import User

SLUG_VALIDATOR = RegexValidator(r"^[a-z0-9_]+\Z", "Use only lowercase letters, digits and underscores (a-z, 0-9, _).")


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"'{value}' is not an IANA timezone (for example Europe/Paris).")


class Workspace(models.Model):
    id = models.CharField(primary_key=True, max_length=32, validators=[SLUG_VALIDATOR])
    name = models.CharField(max_length=255)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    members: models.ManyToManyField[User, WorkspaceMembership] = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="WorkspaceMembership", related_name="workspaces", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(id=""), name="workspace_id_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class WorkspaceMembership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        MEMBER = "member"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="unique_workspace_member")]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace_id}"


API_KEY_NAME_MAX_LENGTH = 100


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


def hash_secret(secret: str) -> str:
    """SHA-256 of a key: keys are 32 random bytes, so a fast hash is enough (no brute force)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=API_KEY_NAME_MAX_LENGTH)
    prefix = models.CharField(max_length=16, help_text="First characters of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiKeyRateWindow(models.Model):
    """How many requests a key sent in its current rate-limit window: the embedded mode's
    counter (with REDIS_URL the counters live in Redis). One row per key, rewritten in place."""

    api_key = models.OneToOneField(ApiKey, primary_key=True, on_delete=models.CASCADE, related_name="+")
    window_number = models.BigIntegerField(help_text="Milliseconds since the epoch // the window's length.")
    count = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.count} request(s) of key {self.api_key_id} in window {self.window_number}"
