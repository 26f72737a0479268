from events_platform.workspaces.api import api_paths

from . import views

# Each view at its operation id (/api/segments.get), under its URL name.
urlpatterns = api_paths(
    {
        views.SegmentCreateView: "segments-create",
        views.SegmentUpdateView: "segments-update",
        views.SegmentDeleteView: "segments-delete",
        views.SegmentRebuildView: "segments-rebuild",
        views.SegmentGetView: "segments-get",
        views.SegmentListView: "segments-list",
        views.SegmentPreviewView: "segments-preview",
        views.SegmentContactsView: "segments-contacts",
        views.SegmentExportView: "segments-export",
        views.SegmentExplainView: "segments-explain",
        views.SegmentTemplatesView: "segments-templates",
    }
)
