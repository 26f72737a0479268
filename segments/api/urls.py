from django.urls import path

from . import views

urlpatterns = [
    path("segments.create", views.SegmentCreateView.as_view(), name="segments-create"),
    path("segments.update", views.SegmentUpdateView.as_view(), name="segments-update"),
    path("segments.delete", views.SegmentDeleteView.as_view(), name="segments-delete"),
    path("segments.rebuild", views.SegmentRebuildView.as_view(), name="segments-rebuild"),
    path("segments.get", views.SegmentGetView.as_view(), name="segments-get"),
    path("segments.list", views.SegmentListView.as_view(), name="segments-list"),
    path("segments.preview", views.SegmentPreviewView.as_view(), name="segments-preview"),
    path("segments.contacts", views.SegmentContactsView.as_view(), name="segments-contacts"),
    path("segments.export", views.SegmentExportView.as_view(), name="segments-export"),
    path("segments.explain", views.SegmentExplainView.as_view(), name="segments-explain"),
    path("segments.templates", views.SegmentTemplatesView.as_view(), name="segments-templates"),
]
