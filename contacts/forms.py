"""Forms of the contacts pages: the date range shared by the timeline and events filters, and each page's filter."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from events_platform.workspaces.models import Workspace

from . import presenters, selectors
from .models import EVENT_NAME_MAX_LENGTH, GoalType


def _day_start(day: date | None, workspace: Workspace) -> datetime | None:
    """Midnight of ``day`` in the workspace's timezone: dates on the page are the workspace's dates."""
    if day is None:
        return None
    return datetime.combine(day, time.min, tzinfo=zoneinfo.ZoneInfo(workspace.timezone))


# Dates a filter can take: the range is read as [since, until + 1 day) in the workspace's
# timezone, which must stay inside what Python and the database represent.
DATE_BOUNDS = (date(1, 1, 2), date(9998, 12, 31))
_DATE_BOUNDS_ATTRS = {"type": "date", "min": DATE_BOUNDS[0].isoformat(), "max": DATE_BOUNDS[1].isoformat()}


class DateRangeForm(forms.Form):
    since = forms.DateField(
        required=False,
        label="From",
        widget=forms.DateInput(attrs=_DATE_BOUNDS_ATTRS),
        validators=[MinValueValidator(DATE_BOUNDS[0]), MaxValueValidator(DATE_BOUNDS[1])],
    )
    until = forms.DateField(
        required=False,
        label="To",
        widget=forms.DateInput(attrs=_DATE_BOUNDS_ATTRS),
        validators=[MinValueValidator(DATE_BOUNDS[0]), MaxValueValidator(DATE_BOUNDS[1])],
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return data

    def bounds(self, workspace: Workspace) -> tuple[datetime | None, datetime | None]:
        """[since, until) in the workspace's timezone; the end date is included."""
        if not self.is_valid():
            return None, None
        until = self.cleaned_data.get("until")
        return (
            _day_start(self.cleaned_data.get("since"), workspace),
            _day_start(until + timedelta(days=1) if until else None, workspace),
        )


class ContactFilterForm(forms.Form):
    """The contacts list's search, segment and sort (the sort is set by the column headers)."""

    q = forms.CharField(
        required=False,
        label="Search by email or name",
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "id": "contact-q",
                "placeholder": "jane@example.com or Jane Doe",
                "autocomplete": "off",
            }
        ),
    )
    # Any slug is taken as given (one no longer there matches nobody); the choices are for the select.
    segment = forms.CharField(required=False, label="Segment", widget=forms.Select(attrs={"id": "contact-segment"}))
    sort = forms.ChoiceField(
        required=False, choices=[(key, key) for key in selectors.CONTACT_SORTS], widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, segments: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["segment"].widget.choices = [("", "All contacts"), *segments]

    def filters(self) -> dict[str, str]:
        """The selector's search, segment and sort; a part that does not validate is left at its default."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {
            "search": (data.get("q") or "").strip(),
            "segment_slug": (data.get("segment") or "").strip(),
            "sort": data.get("sort") or selectors.DEFAULT_CONTACT_SORT,
        }


class TimelineFilterForm(DateRangeForm):
    kind = forms.ChoiceField(required=False, label="Show")

    field_order = ["kind", "since", "until"]

    def __init__(self, *args: Any, kinds: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        prefix = presenters.EVENT_KIND_PREFIX
        events = [(kind, kind.removeprefix(prefix)) for kind in kinds if kind.startswith(prefix)]
        others = [(kind, presenters.kind_label(kind)) for kind in kinds if not kind.startswith(prefix)]
        choices: list[Any] = [("", "Everything"), (presenters.ALL_EVENTS_KIND, "All custom events")]
        if events:
            choices.append(("Event name", events))
        if others:
            choices.append(("Other entries", others))
        kind_field = self.fields["kind"]
        assert isinstance(kind_field, forms.ChoiceField)
        kind_field.choices = choices


class EventFilterForm(DateRangeForm):
    event_name = forms.CharField(
        required=False,
        label="Event name",
        max_length=EVENT_NAME_MAX_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": "order.completed or order.*", "autocomplete": "off"}),
    )
    goal_type = forms.ChoiceField(required=False, label="Goal type", choices=[("", "Any"), *GoalType.choices])
    deleted = forms.ChoiceField(
        required=False, label="Status", choices=selectors.DeletedFilter.CHOICES, initial=selectors.DeletedFilter.LIVE
    )

    field_order = ["event_name", "goal_type", "deleted", "since", "until"]

    def filters(self, workspace: Workspace) -> dict[str, Any]:
        """The selector's filters for what was typed; nothing filters while the form is invalid."""
        if not self.is_valid():
            return {}
        since, until = self.bounds(workspace)
        return {
            "event_name": self.cleaned_data["event_name"].strip(),
            "goal_type": self.cleaned_data["goal_type"],
            "deleted": self.cleaned_data["deleted"] or selectors.DeletedFilter.LIVE,
            "since": since,
            "until": until,
        }
