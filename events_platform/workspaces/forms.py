"""Forms of the workspaces pages."""

from django import forms

from .models import API_KEY_NAME_MAX_LENGTH


class ApiKeyForm(forms.Form):
    name = forms.CharField(label="Name", max_length=API_KEY_NAME_MAX_LENGTH, help_text="Who or what will use it.")
