from django.urls import path

from . import views

urlpatterns = [
    path("rfmModels.create", views.RfmModelCreateView.as_view(), name="rfm-models-create"),
    path("rfmModels.update", views.RfmModelUpdateView.as_view(), name="rfm-models-update"),
    path("rfmModels.delete", views.RfmModelDeleteView.as_view(), name="rfm-models-delete"),
    path("rfmModels.get", views.RfmModelGetView.as_view(), name="rfm-models-get"),
    path("rfmModels.list", views.RfmModelListView.as_view(), name="rfm-models-list"),
    path("rfmModels.recompute", views.RfmModelRecomputeView.as_view(), name="rfm-models-recompute"),
    path("rfmModels.preview", views.RfmModelPreviewView.as_view(), name="rfm-models-preview"),
    path("rfm.distribution", views.RfmDistributionView.as_view(), name="rfm-distribution"),
    path("rfm.transitions", views.RfmTransitionsView.as_view(), name="rfm-transitions"),
    path("rfm.contacts", views.RfmContactsView.as_view(), name="rfm-contacts"),
]
