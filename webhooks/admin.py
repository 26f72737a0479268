"""Admin for webhooks: subscriptions (written through the services), and read-only outbox,
deliveries and attempts for staff looking into what was sent and why it failed."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from . import services
from .models import WebhookAttempt, WebhookDelivery, WebhookOutbox, WebhookSubscription


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the system writes: staff look, they do not edit."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


SETTINGS_FIELDS = ["workspace", "name", "url", "event_types", "goal_types", "event_names", "segment_ids"]


class WebhookSubscriptionForm(ModelForm):
    class Meta:
        model = WebhookSubscription
        fields = SETTINGS_FIELDS

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        workspace = data.get("workspace") or getattr(self.instance, "workspace", None)
        if workspace is not None and not self.errors:
            try:
                fields: dict[str, Any] = {
                    k: data.get(k) for k in ("name", "url", "event_types", "goal_types", "event_names", "segment_ids")
                }
                services.subscription_settings_validate(workspace_id=workspace.pk, **fields)
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    name = field.rsplit(".", 1)[-1]
                    self.add_error(name if name in self.fields else None, problems)
        return data


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    form = WebhookSubscriptionForm
    list_display = ["name", "public_id", "workspace", "url", "enabled", "disabled_reason", "last_delivery_at"]
    list_filter = ["enabled", "disabled_reason", "workspace"]
    list_select_related = ["workspace"]
    search_fields = ["name", "public_id", "url", "workspace__id"]
    actions = ["enable_selected", "disable_selected", "regenerate_secret_of_selected"]
    readonly_fields = [
        "public_id",
        "enabled",
        "disabled_reason",
        "disabled_detail",
        "failing_since",
        "previous_secret_expires_at",
        "last_delivery_at",
        "created_at",
        "updated_at",
    ]
    fields = [*SETTINGS_FIELDS, *readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookSubscription | None = None) -> list[str]:
        return [*self.readonly_fields, "workspace"] if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: WebhookSubscription, form: ModelForm, change: bool) -> None:
        # Through the services, so the URL gets its SSRF check and the types their validation.
        fields = {name: getattr(obj, name) for name in SETTINGS_FIELDS[1:]}
        if change:
            saved = services.subscription_update(subscription=obj, **fields)
        else:
            saved = services.subscription_create(workspace_id=obj.workspace_id, **fields)
        obj.pk, obj.public_id, obj.secret = saved.pk, saved.public_id, saved.secret

    @admin.action(description="Enable selected subscriptions")
    def enable_selected(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        for subscription in queryset:
            services.subscription_set_enabled(subscription=subscription, enabled=True)
        self.message_user(request, "Enabled; their waiting deliveries resume.", messages.SUCCESS)

    @admin.action(description="Disable selected subscriptions")
    def disable_selected(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        for subscription in queryset:
            services.subscription_set_enabled(subscription=subscription, enabled=False)
        self.message_user(request, "Disabled.", messages.SUCCESS)

    @admin.action(description="Regenerate the secret (the old one keeps working for 24 hours)")
    def regenerate_secret_of_selected(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        for subscription in queryset:
            services.subscription_secret_regenerate(subscription=subscription)
        self.message_user(
            request, "New secrets issued; the workspace sees them on its Webhooks page.", messages.SUCCESS
        )


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "duration_ms", "resolved_ip", "status_code", "error_kind", "error")
    readonly_fields = fields
    ordering = ["number", "id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["message_id", "event_type", "subscription", "status", "attempts", "next_attempt_at", "created_at"]
    list_filter = ["status", "event_type", "is_test"]
    list_select_related = ["subscription"]
    search_fields = ["message_id", "subscription__public_id", "subscription__name"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [WebhookAttemptInline]
    actions = ["replay_selected"]
    readonly_fields = (
        "message_id",
        "workspace",
        "subscription",
        "event_type",
        "status",
        "attempts",
        "max_attempts",
        "next_attempt_at",
        "last_attempt_at",
        "delivered_at",
        "last_response_status",
        "last_response_body",
        "last_error",
        "is_test",
        "created_at",
        "body",
    )
    fields = readonly_fields

    @admin.action(description="Replay selected deliveries (same id, same bytes)")
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = sum(services.delivery_replay(delivery=delivery) for delivery in queryset)
        self.message_user(request, f"{count} deliveries queued again.", messages.SUCCESS)


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ReadOnlyAdmin):
    list_display = ["delivery", "number", "started_at", "duration_ms", "status_code", "error_kind", "resolved_ip"]
    list_filter = ["error_kind"]
    list_select_related = ["delivery"]
    search_fields = ["delivery__message_id"]
    show_full_result_count = False


@admin.register(WebhookOutbox)
class WebhookOutboxAdmin(ReadOnlyAdmin):
    """Normally empty: rows live from their change's commit until the fan-out a moment later."""

    list_display = ["id", "event_type", "workspace", "occurred_at", "created_at"]
    list_filter = ["event_type"]
    list_select_related = ["workspace"]
