"""The public JSON API: Notifuse-style dotted endpoints under /api/."""

from django.urls import include, path, re_path

from .exceptions import api_not_found

urlpatterns = [
    # segments first: it extends contacts.get with segment membership.
    path("", include("segments.api.urls")),
    path("", include("contacts.api.urls")),
    re_path(r"^.*$", api_not_found),
]
