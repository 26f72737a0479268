"""Admin for tenancy: workspaces with their members, and API keys issued through the service."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.forms import ModelForm
from django.http import HttpRequest

from .models import ApiKey, ApiKeyQuerySet, Workspace, WorkspaceMembership
from .services import api_key_create, api_key_revoke, workspace_create


class WorkspaceMembershipInline(admin.TabularInline):
    model = WorkspaceMembership
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "timezone", "created_at"]
    search_fields = ["id", "name"]
    inlines = [WorkspaceMembershipInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Workspace | None = None) -> list[str]:
        # The id is the workspace's key in every API call: it never changes once created.
        return ["id", "created_at"] if obj is not None else ["created_at"]

    def save_model(self, request: HttpRequest, obj: Workspace, form: ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = workspace_create(workspace_id=obj.id, name=obj.name, timezone_name=obj.timezone)
        _adopt(obj, created)


class ApiKeyAddForm(ModelForm):
    class Meta:
        model = ApiKey
        fields = ["workspace", "name"]


_KEY_FIELDS = ("workspace", "name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are issued by ``api_key_create``: the secret is shown once, only its hash is stored."""

    list_display = ["name", "prefix", "workspace", "created_at", "last_used_at", "revoked"]
    list_filter = ["workspace", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["workspace"]
    search_fields = ["name", "prefix", "workspace__id"]
    actions = ["revoke_selected"]
    # key_hash is not editable and never listed here, so it is neither shown nor changeable.
    fields = _KEY_FIELDS
    readonly_fields = ["workspace", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        return ("workspace", "name") if obj is None else _KEY_FIELDS

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        return [] if obj is None else list(self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        assert isinstance(request.user, User)  # the admin is behind a staff sign-in
        issued = api_key_create(workspace=obj.workspace, name=obj.name, created_by=request.user)
        _adopt(obj, issued.api_key)
        messages.success(
            request,
            f"API key “{obj.name}” for workspace {obj.workspace_id}: {issued.secret} — copy it now, "
            "it is shown only this once (only its hash is stored).",
        )

    @admin.display(boolean=True, description="revoked", ordering="revoked_at")
    def revoked(self, obj: ApiKey) -> bool:
        return obj.revoked_at is not None

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: ApiKeyQuerySet) -> None:
        keys = list(queryset.active())
        for api_key in keys:
            api_key_revoke(api_key=api_key)
        self.message_user(request, f"Revoked {len(keys)} key(s).", messages.SUCCESS)


def _adopt(target: Any, saved: Any) -> None:
    """Make the admin's unsaved instance the row a service saved, so the admin carries on with it."""
    for field in saved._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db
