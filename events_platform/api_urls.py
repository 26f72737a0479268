"""The public JSON API: Notifuse-style dotted endpoints under /api/."""

from django.urls import include, path

urlpatterns = [
    path("", include("contacts.api.urls")),
]
