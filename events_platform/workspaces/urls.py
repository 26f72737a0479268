from django.urls import path

from . import views

urlpatterns = [
    path("workspace/switch/", views.workspace_switch, name="workspace-switch"),
]
