from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from contacts import refresh

        from .api import schema  # noqa: F401  (registers the OpenAPI description of rule trees)
        from .receivers import evaluate_drained_contacts

        # Contacts drained from the refresh queue are re-evaluated in the drain's transaction.
        refresh.register_drain_hook("segments.evaluate", evaluate_drained_contacts, phase=refresh.Phase.EVALUATE)
