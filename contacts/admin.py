"""Admin for contacts, their events and timeline.

Writes go through the services (so every change gets its timeline entry and the segment
engine hears of it); events and timeline entries are read-only here apart from the
soft-delete / restore actions. Every page reads a bounded number of rows: a contact with
10,000 events shows its 20 most recent, and changelists never query per row.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from . import presenters, selectors, services
from .models import Contact, CustomEvent, TimelineEntry, normalize_email

RECENT_ROWS = 20


def _change_url(obj: Any) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def _table(headers: list[str], rows: list[tuple[Any, ...]], footer: SafeString | str = "") -> SafeString:
    if not rows:
        return format_html("<p>None.</p>")
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join("", "<tr>" + "<td>{}</td>" * len(headers) + "</tr>", rows)
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>{}", head, body, footer)


def _stored_fields(model: type[Model], *, before: dict[str, str] | None = None) -> tuple[str, ...]:
    """A model's fields but its id, in their order; ``before`` puts a display field before one of them."""
    names = []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        if before and field.name in before:
            names.append(before[field.name])
        names.append(field.name)
    return tuple(names)


class ContactForm(ModelForm):
    class Meta:
        model = Contact
        fields = ["workspace", "email", "external_id", "first_name", "last_name", "properties"]

    def clean_email(self) -> str:
        # Normalised before the unique check, as every other path does, so "Ann@X.com" is found
        # to be the existing "ann@x.com" instead of silently updating it.
        return normalize_email(self.cleaned_data["email"])


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    form = ContactForm
    list_display = ["email", "first_name", "last_name", "workspace", "created_at"]
    list_filter = ["workspace", "created_at"]
    list_select_related = ["workspace"]
    search_fields = ["email", "first_name", "last_name", "external_id"]
    show_full_result_count = False
    editable_fields = ["external_id", "first_name", "last_name", "properties"]

    def get_fields(self, request: HttpRequest, obj: Contact | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("workspace", "email", *self.editable_fields)
        return (
            "workspace",
            "email",
            *self.editable_fields,
            "created_at",
            "updated_at",
            "recent_events",
            "recent_timeline",
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Contact | None = None) -> list[str]:
        if obj is None:
            return []
        # The email is the contact's identity in the API; changing it would be a new contact.
        return ["workspace", "email", "created_at", "updated_at", "recent_events", "recent_timeline"]

    def save_model(self, request: HttpRequest, obj: Contact, form: ModelForm, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in self.editable_fields if name in form.cleaned_data}
        result = services.contact_upsert(workspace_id=obj.workspace_id, email=obj.email, fields=fields)
        for field in Contact._meta.concrete_fields:
            setattr(obj, field.attname, getattr(result.contact, field.attname))
        obj._state.adding = False
        obj._state.db = result.contact._state.db

    def delete_model(self, request: HttpRequest, obj: Contact) -> None:
        services.contact_delete(workspace_id=obj.workspace_id, email=obj.email)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Contact]) -> None:
        with transaction.atomic():
            for contact in queryset:
                services.contact_delete(workspace_id=contact.workspace_id, email=contact.email)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[list[Any], dict[str, int], set[str], list]:
        # Django's default lists every related row (and asks for delete permission on events,
        # which are read-only here): counts keep the confirmation page cheap and truthful.
        contacts = list(objs)
        ids = [c.pk for c in contacts]
        counts = {
            "contacts": len(contacts),
            "custom events": CustomEvent.objects.filter(contact_id__in=ids).count(),
            "timeline entries": TimelineEntry.objects.filter(contact_id__in=ids).count(),
        }
        return [f"{c.email} ({c.workspace_id})" for c in contacts], counts, set(), []

    @admin.display(description=f"Most recent events (up to {RECENT_ROWS})")
    def recent_events(self, obj: Contact) -> SafeString:
        events = list(CustomEvent.objects.filter(contact=obj).order_by("-occurred_at", "-id")[: RECENT_ROWS + 1])
        footer: SafeString | str = ""
        if len(events) > RECENT_ROWS:
            events = events[:RECENT_ROWS]
            url = reverse("admin:contacts_customevent_changelist") + f"?contact__id__exact={obj.pk}"
            footer = format_html('<p><a href="{}">All events of this contact</a></p>', url)
        rows = [
            (
                format_html('<a href="{}">{}</a>', _change_url(e), e.event_name),
                e.external_id,
                e.occurred_at,
                e.goal_type or "",
                "" if e.goal_value is None else e.goal_value,
                "deleted" if e.deleted_at else "",
            )
            for e in events
        ]
        return _table(["event", "external id", "occurred at", "goal", "value", ""], rows, footer)

    @admin.display(description=f"Most recent timeline entries (up to {RECENT_ROWS})")
    def recent_timeline(self, obj: Contact) -> SafeString:
        page = selectors.timeline_list(contact=obj, limit=RECENT_ROWS)
        footer: SafeString | str = ""
        if page.next_cursor:
            url = reverse("admin:contacts_timelineentry_changelist") + f"?contact__id__exact={obj.pk}"
            footer = format_html('<p><a href="{}">Whole timeline of this contact</a></p>', url)
        rows = [
            (format_html('<a href="{}">{}</a>', _change_url(t), t.kind), t.operation, t.created_at) for t in page.items
        ]
        return _table(["kind", "operation", "at"], rows, footer)


class DeletedFilter(admin.SimpleListFilter):
    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[CustomEvent]) -> QuerySet[CustomEvent]:
        if self.value() == "yes":
            return queryset.filter(deleted_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(deleted_at__isnull=True)
        return queryset


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable, never added or edited here: the rows are written by services only."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Without an object this answers "may run change actions"; on an object the form is
        # shown read-only (Django falls back to the view permission).
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CustomEvent)
class CustomEventAdmin(ReadOnlyAdmin):
    list_display = [
        "event_name",
        "external_id",
        "contact_email",
        "workspace_id",
        "occurred_at",
        "goal_type",
        "goal_value",
        "source",
        "deleted",
    ]
    list_filter = ["event_name", "goal_type", DeletedFilter, "workspace", "source"]
    list_select_related = ["contact"]
    search_fields = ["external_id", "event_name", "contact__email"]
    show_full_result_count = False
    actions = ["soft_delete", "restore"]
    # Every stored field, the properties also as the pages show them.
    readonly_fields = _stored_fields(CustomEvent, before={"properties": "readable_properties"})
    fields = readonly_fields

    @admin.display(description="properties")
    def readable_properties(self, obj: CustomEvent) -> SafeString | str:
        """As the pages show them (lists joined, true / false); the stored JSON follows below."""
        items = presenters.property_items(obj.properties)
        return _table(["key", "value"], items) if items else presenters.EMPTY

    @admin.display(description="contact", ordering="contact__email")
    def contact_email(self, obj: CustomEvent) -> str:
        return obj.contact.email

    @admin.display(boolean=True, description="deleted", ordering="deleted_at")
    def deleted(self, obj: CustomEvent) -> bool:
        return obj.deleted_at is not None

    def _set_deleted(self, request: HttpRequest, queryset: QuerySet[CustomEvent], *, deleted: bool) -> None:
        changed = 0
        with transaction.atomic():
            for event in queryset.select_related("contact"):
                result = services.event_set_deleted(event=event, deleted=deleted)
                changed += result.operation != services.Operation.UNCHANGED
        verb = "Soft-deleted" if deleted else "Restored"
        self.message_user(request, f"{verb} {changed} event(s).", messages.SUCCESS)

    @admin.action(description="Soft delete selected events", permissions=["change"])
    def soft_delete(self, request: HttpRequest, queryset: QuerySet[CustomEvent]) -> None:
        self._set_deleted(request, queryset, deleted=True)

    @admin.action(description="Restore selected events", permissions=["change"])
    def restore(self, request: HttpRequest, queryset: QuerySet[CustomEvent]) -> None:
        self._set_deleted(request, queryset, deleted=False)


@admin.register(TimelineEntry)
class TimelineEntryAdmin(ReadOnlyAdmin):
    list_display = ["kind", "operation", "contact", "workspace_id", "created_at"]
    list_filter = ["operation", "entity_type", "workspace"]
    list_select_related = ["contact"]
    search_fields = ["kind", "contact__email"]
    show_full_result_count = False
    actions = None
    fields = _stored_fields(TimelineEntry)
    readonly_fields = fields

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> TimelineEntry | None:
        # An event's insert entry shows the changes the event row holds (as timeline.list does).
        entry = super().get_object(request, object_id, from_field)
        if entry is not None:
            selectors.with_insert_changes([entry])
        return entry

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
