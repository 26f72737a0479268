"""Staff views of RFM: models (with a recompute action), their runs and the change log (read-only)."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .models import RfmGroupChange, RfmModel, RfmRun, RfmScore


@admin.register(RfmModel)
class RfmModelAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "workspace", "scale", "status", "population", "last_computed_at")
    list_filter = ("status", "scale")
    search_fields = ("slug", "name", "workspace__id")
    readonly_fields = RfmModel.RUN_FIELDS
    actions = ["recompute"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created through the API (validated config, first run queued)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # changed through the API, which bumps the version and re-runs

    @admin.action(description="Recompute now (full run)")
    def recompute(self, request: HttpRequest, queryset: QuerySet[RfmModel]) -> None:
        for model in queryset.exclude(status=RfmModel.Status.DELETED):
            services.rfm_model_recompute(model=model)
        self.message_user(request, "Full runs queued.", messages.SUCCESS)


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RfmRun)
class RfmRunAdmin(_ReadOnlyAdmin):
    list_display = ("model", "as_of", "population", "changed", "duration_ms")
    list_filter = ("model",)


@admin.register(RfmScore)
class RfmScoreAdmin(_ReadOnlyAdmin):
    list_display = ("contact", "model", "group", "r", "f", "m", "previous_group", "group_changed_at")
    list_filter = ("model", "group")
    list_select_related = ("contact", "model")
    search_fields = ("contact__email",)


@admin.register(RfmGroupChange)
class RfmGroupChangeAdmin(_ReadOnlyAdmin):
    list_display = ("contact", "model", "from_group", "to_group", "changed_at")
    list_filter = ("model", "to_group")
    list_select_related = ("contact", "model")
    search_fields = ("contact__email",)
