"""The RFM page's query forms: a heatmap cell, and the two dates of the transition matrix."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator


class CellForm(forms.Form):
    """``?r=&f=``: one R x F cell of the model's scale."""

    r = forms.IntegerField(min_value=1)
    f = forms.IntegerField(min_value=1)

    def __init__(self, *args: Any, scale: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("r", "f"):
            self.fields[name].validators.append(MaxValueValidator(scale))


class TransitionForm(forms.Form):
    """``?since=&until=``: two dates (the end of each day in the model's timezone). Not before the
    model's first full run (its change log starts there), not after today; out of range or in the
    wrong order, the field says so and the nearest valid date is used."""

    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data: Any, *, first: dt.date, today: dt.date) -> None:
        super().__init__({"since": data.get("since", ""), "until": data.get("until", "")})
        self.first, self.today = first, today
        for name in ("since", "until"):
            self.fields[name].widget.attrs.update(min=first.isoformat(), max=today.isoformat())

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since is not None and since < self.first:
            self.add_error("since", f"The history starts with the first full run, on {self.first:%Y-%m-%d}.")
        if until is not None and until > self.today:
            self.add_error("until", "Not after today.")
        if since is not None and until is not None and since > until:
            self.add_error("until", "Must be on or after the first date.")
        return data

    def days(self) -> tuple[dt.date, dt.date]:
        """The two days to compare: the valid ones given, else 30 days ago (or the first run) and today."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        until = data.get("until") if "until" not in self.errors else None
        since = data.get("since") if "since" not in self.errors else None
        until = min(max(until or self.today, self.first), self.today)
        since = min(max(since or self.today - dt.timedelta(days=30), self.first), until)
        return since, until
