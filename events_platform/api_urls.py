"""The public JSON API: Notifuse-style dotted endpoints under /api/."""

from django.urls import include, path, re_path

from .exceptions import api_not_found

urlpatterns = [
    # Each path is served by one view of one app: contacts (customEvents.*, contacts.*, timeline.*)
    # and segments (segments.*); contacts.get lists segment memberships itself (reverse relation).
    path("", include("contacts.api.urls")),
    path("", include("segments.api.urls")),
    path("", include("rfm.api.urls")),
    path("", include("webhooks.api.urls")),
    re_path(r"^.*$", api_not_found),
]
