from django.urls import path

from . import views

urlpatterns = [
    path("rfm/", views.rfm_list, name="rfm-list"),
    # Model ids are [a-z0-9_]+, so the hyphen keeps this page from shadowing a model's own page.
    path("rfm/new-model/", views.rfm_create_preset, name="rfm-create-preset"),
    path("rfm/<slug:slug>/", views.rfm_detail, name="rfm-detail"),
    path("rfm/<slug:slug>/recompute/", views.rfm_recompute, name="rfm-recompute"),
]
