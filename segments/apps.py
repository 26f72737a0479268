from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects the contacts_changed receiver)
