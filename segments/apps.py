from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects the contacts_changed receiver)
        from .api import schema  # noqa: F401  (registers the OpenAPI description of rule trees)
