from events_platform.workspaces.api import api_paths

from . import views

# Each view at its operation id (/api/segments.get), under its URL name.
urlpatterns = api_paths(
    {
        views.RfmModelCreateView: "rfm-models-create",
        views.RfmModelUpdateView: "rfm-models-update",
        views.RfmModelDeleteView: "rfm-models-delete",
        views.RfmModelGetView: "rfm-models-get",
        views.RfmModelListView: "rfm-models-list",
        views.RfmModelRecomputeView: "rfm-models-recompute",
        views.RfmModelPreviewView: "rfm-models-preview",
        views.RfmDistributionView: "rfm-distribution",
        views.RfmTransitionsView: "rfm-transitions",
        views.RfmContactsView: "rfm-contacts",
    }
)
