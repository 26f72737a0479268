from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from contacts import refresh
        from contacts.signals import demo_workspace_ready
        from rfm.services import model_computed

        from .api import schema  # noqa: F401  (registers the OpenAPI description of rule trees)
        from .receivers import demo_segments_create, evaluate_drained_contacts, rebuild_after_rfm_run

        # Contacts drained from the refresh queue are re-evaluated in the drain's transaction.
        refresh.register_drain_hook("segments.evaluate", evaluate_drained_contacts, phase=refresh.Phase.EVALUATE)
        demo_workspace_ready.connect(demo_segments_create, dispatch_uid="segments.demo")
        # After a full RFM run (scores of everyone changed), segments using its model rebuild.
        model_computed.connect(rebuild_after_rfm_run, dispatch_uid="segments.rebuild_after_rfm_run")
