from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    name = "events_platform.workspaces"
    label = "workspaces"
    verbose_name = "Workspaces"
