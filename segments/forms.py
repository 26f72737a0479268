"""Forms of the segments pages: everything about a segment except its rules (the builder reads those)."""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils.text import slugify

from events_platform.workspaces.models import Workspace

from . import rules
from .models import COLOR_VALIDATOR, DEFAULT_COLOR, SEGMENT_SLUG_MAX_LENGTH, SEGMENT_SLUG_VALIDATOR, Segment

TIMEZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones())]


class SegmentMetaForm(forms.Form):
    """Everything about a segment except its rules."""

    name = forms.CharField(label="Name", max_length=255)
    slug = forms.CharField(
        label="Id",
        required=False,
        max_length=SEGMENT_SLUG_MAX_LENGTH,
        validators=[SEGMENT_SLUG_VALIDATOR],
        help_text="Used in the API; lowercase letters, digits and _. Made from the name when left blank.",
    )
    color = forms.CharField(
        label="Colour",
        validators=[COLOR_VALIDATOR],
        initial=DEFAULT_COLOR,
        widget=forms.TextInput(attrs={"type": "color"}),
    )
    timezone = forms.ChoiceField(
        label="Timezone", choices=TIMEZONE_CHOICES, help_text="Dates in the conditions are read in this timezone."
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["slug"].disabled = True

    @classmethod
    def for_segment(cls, segment: Segment | None, workspace: Workspace) -> SegmentMetaForm:
        """The form as the builder opens: the segment's own values, or a new one's defaults."""
        if segment is None:
            return cls(initial={"timezone": workspace.timezone, "color": DEFAULT_COLOR})
        initial = {"name": segment.name, "slug": segment.slug, "color": segment.color, "timezone": segment.timezone}
        return cls(initial=initial, editing=True)

    @classmethod
    def as_typed(
        cls,
        data: QueryDict,
        *,
        segment: Segment | None,
        template_key: str = "",
        templates: Mapping[str, dict[str, Any]] = rules.TEMPLATES,
    ) -> SegmentMetaForm:
        """An unbound form that keeps what was typed (no errors yet for fields not filled in), after
        a structural edit; a template button fills an empty name with the template's name and colour
        (and, for a new segment, an empty id with the template's: its ``slug``, else its key)."""
        initial = data.dict()
        template = templates.get(template_key)
        if template is not None and not initial.get("name"):
            initial |= rules.template_defaults(template)
            if segment is None and not initial.get("slug"):
                initial["slug"] = template.get("slug", template_key)
        if segment is not None:
            initial["slug"] = segment.slug
        return cls(initial=initial, editing=segment is not None)

    def add_service_errors(self, error: ValidationError) -> str:
        """Put a service's refusal next to the field it names (the API's ``id`` is the Id box);
        what names no field of this form (the tree as a whole) is returned for the page's banner."""
        banner: list[str] = []
        for name, messages in error.message_dict.items():
            field = "slug" if name == "id" else name
            if field in self.fields:
                self.add_error(field, messages)
            else:
                banner.extend(messages)
        return " ".join(banner)

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data.get("slug") or ""
        if not slug and self.cleaned_data.get("name"):
            slug = slugify(self.cleaned_data["name"]).replace("-", "_")[:SEGMENT_SLUG_MAX_LENGTH] or "segment"
        return slug
