"""Forms of the segments pages: everything about a segment except its rules (the builder reads those)."""

from __future__ import annotations

import zoneinfo
from typing import Any

from django import forms
from django.utils.text import slugify

from .models import COLOR_VALIDATOR, DEFAULT_COLOR, SEGMENT_SLUG_MAX_LENGTH, SEGMENT_SLUG_VALIDATOR

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

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data.get("slug") or ""
        if not slug and self.cleaned_data.get("name"):
            slug = slugify(self.cleaned_data["name"]).replace("-", "_")[:SEGMENT_SLUG_MAX_LENGTH] or "segment"
        return slug
