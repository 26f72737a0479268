from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("segments/", views.segment_list, name="segment-list"),
    path("segments/new/", views.segment_create_view, name="segment-create"),
    path("segments/preview/", views.segment_preview_view, name="segment-preview"),
    path("segments/<slug:slug>/", views.segment_detail, name="segment-detail"),
    path("segments/<slug:slug>/edit/", views.segment_edit_view, name="segment-edit"),
    path("segments/<slug:slug>/rebuild/", views.segment_rebuild_view, name="segment-rebuild"),
    path("segments/<slug:slug>/delete/", views.segment_delete_view, name="segment-delete"),
    path("segments/<slug:slug>/export.csv", views.segment_export, name="segment-export"),
]
