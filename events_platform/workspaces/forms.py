"""Forms of the workspaces pages."""

from django import forms

from .models import ApiKey


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=ApiKey._meta.get_field("name").max_length, help_text="Who or what will use it."
    )
