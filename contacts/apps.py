from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"
    verbose_name = "Contacts and events"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects the signal receivers)
