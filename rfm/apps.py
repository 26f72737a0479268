from django.apps import AppConfig


class RfmConfig(AppConfig):
    name = "rfm"
    verbose_name = "RFM"

    def ready(self) -> None:
        from contacts import refresh
        from contacts.panels import register_contact_panel
        from contacts.signals import demo_workspace_ready

        from .demo import demo_model_create
        from .receivers import rescore_drained_contacts
        from .views import contact_card

        # Drained contacts are re-scored in the drain's transaction, before segments evaluate them.
        refresh.register_drain_hook("rfm.rescore", rescore_drained_contacts, phase=refresh.Phase.SCORE)
        # The contact page's RFM card (current and previous group, history): rfm/views.py.
        register_contact_panel("rfm", template="rfm/_contact_card.html", context=contact_card)
        demo_workspace_ready.connect(demo_model_create, dispatch_uid="rfm.demo")
