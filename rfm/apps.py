from django.apps import AppConfig


class RfmConfig(AppConfig):
    name = "rfm"
    verbose_name = "RFM"

    def ready(self) -> None:
        from contacts import refresh

        from .receivers import rescore_drained_contacts

        # Drained contacts are re-scored in the drain's transaction, before segments evaluate them.
        refresh.register_drain_hook("rfm.rescore", rescore_drained_contacts, phase=refresh.Phase.SCORE)
