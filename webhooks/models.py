"""Outgoing webhooks: subscriptions, the outbox written with each change, deliveries and attempts.

The outbox row is written in the same transaction as the change it reports (see
``services.outbox_record`` and ``receivers``), so a change that commits is never lost and one
that rolls back is never sent. A fan-out turns outbox rows into one delivery per matching
subscription, each with its body serialised once; senders claim due deliveries with a lease.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.functional import cached_property

from events_platform.workspaces.models import Workspace

SUBSCRIPTION_NAME_MAX_LENGTH = 255
URL_MAX_LENGTH = 2048
RESPONSE_BODY_MAX_BYTES = 1024
MAX_ATTEMPTS = 10


def new_public_id() -> str:
    return uuid.uuid4().hex


def new_message_id() -> str:
    """A delivery's ``webhook-id`` (the same on every retry): no dot, as the signature scheme needs."""
    return f"msg_{uuid.uuid4().hex}"


class WebhookSubscription(models.Model):
    class DisabledReason(models.TextChoices):
        MANUAL = "manual", "Disabled by a person"
        GONE = "gone_410", "The endpoint answered 410 Gone"
        FAILING = "failing_5_days", "Every delivery failed for 5 days"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="webhook_subscriptions")
    # The API's id (Notifuse uses 32 hex characters); the integer pk stays internal.
    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    name = models.CharField(max_length=SUBSCRIPTION_NAME_MAX_LENGTH)
    url = models.CharField(max_length=URL_MAX_LENGTH)
    secret = models.CharField(max_length=128, help_text="whsec_ + base64 of 32 random bytes.")
    # After regenerateSecret the old secret stays valid (deliveries carry both signatures) until then.
    previous_secret = models.CharField(max_length=128, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    event_types = models.JSONField(default=list, help_text="Names from webhooks.events.EVENT_TYPES.")
    # custom_event_filters: each empty list means "everything passes"; both are ANDed.
    goal_types = models.JSONField(default=list, blank=True)
    event_names = models.JSONField(default=list, blank=True)
    # Our filter for segment.* types: segment ids (slugs); empty means every segment.
    segment_ids = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=32, choices=DisabledReason.choices, blank=True, default="")
    disabled_detail = models.TextField(blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    # The first failure since the last success: five days of nothing but failures disables it.
    failing_since = models.DateTimeField(null=True, blank=True)
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The outbox writers ask "does an enabled subscription of this workspace want this type?"
            models.Index(fields=["workspace"], condition=Q(enabled=True), name="webhook_sub_enabled_idx"),
            models.Index(fields=["workspace", "-created_at", "-id"], name="webhook_sub_ws_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"


class WebhookOutbox(models.Model):
    """One change to report, written in the transaction of the change; removed once fanned out.

    ``data`` is what the change was at that moment: for custom events and contacts the stored
    row's values (rendered through the API serializers at fan-out), for segment changes the
    payload itself. A row exists only when an enabled subscription wanted its type then.
    """

    # No index of its own: the outbox is a queue read in id order (the fan-out); a workspace's
    # rows are only ever read when it is deleted (migration 0002).
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    event_type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField(help_text="When the change happened (the envelope's timestamp).")
    # JSON as text, not jsonb: written on the ingest path and read once, it is never queried,
    # and parsing it into jsonb there would cost the ingest for nothing.
    data_json = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "webhook outbox row"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.pk}"

    @cached_property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.data_json)
        return data


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERING = "delivering"
        DELIVERED = "delivered"
        FAILED = "failed"

    # No indexes of their own: webhook_delivery_ws_idx and webhook_delivery_sub_idx lead with them (migration 0002).
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    # The envelope's id and the webhook-id header: receivers deduplicate on it. Unique, without
    # the _like pattern index Django adds: never searched by prefix (migration 0002).
    message_id = models.CharField(max_length=64, unique=True, default=new_message_id)
    event_type = models.CharField(max_length=64)
    body = models.TextField(help_text="The exact bytes sent (UTF-8), built once; every retry sends them.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=MAX_ATTEMPTS)
    # Pending: when the next attempt is due. Delivering: when the sender's lease ends (past it,
    # the claim is taken again: its worker died). Otherwise empty.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, default="")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_response_status = models.PositiveIntegerField(null=True, blank=True)
    last_response_body = models.TextField(blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    is_test = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        indexes = [
            # What the senders claim: due pending deliveries and expired claims.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "delivering"]),
                name="webhook_delivery_due_idx",
            ),
            models.Index(fields=["subscription", "-created_at", "-id"], name="webhook_delivery_sub_idx"),
            models.Index(fields=["workspace", "-created_at", "-id"], name="webhook_delivery_ws_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "delivering", "delivered", "failed"]),
                name="webhook_delivery_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id} ({self.status})"


class WebhookAttempt(models.Model):
    class ErrorKind(models.TextChoices):
        NONE = ""
        HTTP_STATUS = "http_status", "Non-2xx status"
        REDIRECT = "redirect", "Redirect (not followed)"
        TIMEOUT = "timeout", "Timed out"
        DNS = "dns", "Name did not resolve"
        BLOCKED_ADDRESS = "blocked_address", "Address not allowed"
        CONNECTION = "connection", "Connection failed"
        TLS = "tls", "TLS failed"
        INVALID_URL = "invalid_url", "Invalid URL"
        LEASE_EXPIRED = "lease_expired", "Sender lost (lease expired)"

    # No index of its own: webhook_attempt_delivery_idx leads with it (migration 0002).
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows", db_index=False)
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    resolved_ip = models.GenericIPAddressField(null=True, blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, default="", help_text="At most 1 KiB of the response body.")
    error_kind = models.CharField(max_length=32, choices=ErrorKind.choices, blank=True, default="")
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["delivery", "number", "id"]
        indexes = [models.Index(fields=["delivery", "number"], name="webhook_attempt_delivery_idx")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
