from django.urls import path

from . import views

urlpatterns = [
    path("customEvents.upsert", views.EventUpsertView.as_view(), name="custom-events-upsert"),
    path("customEvents.import", views.EventImportView.as_view(), name="custom-events-import"),
    path("customEvents.get", views.EventGetView.as_view(), name="custom-events-get"),
    path("customEvents.list", views.EventListView.as_view(), name="custom-events-list"),
    path("contacts.upsert", views.ContactUpsertView.as_view(), name="contacts-upsert"),
    path("contacts.get", views.ContactGetView.as_view(), name="contacts-get"),
    path("contacts.getByEmail", views.ContactGetByEmailView.as_view(), name="contacts-get-by-email"),
    path("contacts.getByExternalID", views.ContactGetByExternalIdView.as_view(), name="contacts-get-by-external-id"),
    path("contacts.count", views.ContactCountView.as_view(), name="contacts-count"),
    path("contacts.import", views.ContactImportView.as_view(), name="contacts-import"),
    path("contacts.list", views.ContactListView.as_view(), name="contacts-list"),
    path("contacts.delete", views.ContactDeleteView.as_view(), name="contacts-delete"),
    path("timeline.list", views.TimelineListView.as_view(), name="timeline-list"),
]
