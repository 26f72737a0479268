from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    name = "events_platform.workspaces"
    label = "workspaces"
    verbose_name = "Workspaces"

    def ready(self) -> None:
        from . import checks, schema  # noqa: F401  (register the system checks and the OpenAPI extension)
