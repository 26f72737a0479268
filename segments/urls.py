from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("segments/", views.segment_list, name="segment-list"),
    # Segment ids are [a-z0-9_]+, so the hyphen keeps these two pages from ever shadowing a
    # segment's own page (a segment may well be called "new" or "preview").
    path("segments/new-segment/", views.segment_create_view, name="segment-create"),
    path("segments/live-preview/", views.segment_preview_view, name="segment-preview"),
    path("segments/<slug:slug>/", views.segment_detail, name="segment-detail"),
    path("segments/<slug:slug>/edit/", views.segment_edit_view, name="segment-edit"),
    path("segments/<slug:slug>/rebuild/", views.segment_rebuild_view, name="segment-rebuild"),
    path("segments/<slug:slug>/delete/", views.segment_delete_view, name="segment-delete"),
    path("segments/<slug:slug>/export.csv", views.segment_export, name="segment-export"),
]
