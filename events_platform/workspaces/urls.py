from django.urls import path

from . import views

urlpatterns = [
    path("workspace/switch/", views.workspace_switch, name="workspace-switch"),
    path("settings/api-keys/", views.api_keys, name="api-keys"),
    path("settings/api-keys/<int:pk>/revoke/", views.api_key_revoke_view, name="api-key-revoke"),
]
