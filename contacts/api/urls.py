from events_platform.workspaces.api import api_paths

from . import views

# Each view at its operation id (/api/segments.get), under its URL name.
urlpatterns = api_paths(
    {
        views.EventUpsertView: "custom-events-upsert",
        views.EventImportView: "custom-events-import",
        views.EventGetView: "custom-events-get",
        views.EventListView: "custom-events-list",
        views.ContactUpsertView: "contacts-upsert",
        views.ContactGetView: "contacts-get",
        views.ContactGetByEmailView: "contacts-get-by-email",
        views.ContactGetByExternalIdView: "contacts-get-by-external-id",
        views.ContactCountView: "contacts-count",
        views.ContactImportView: "contacts-import",
        views.ContactListView: "contacts-list",
        views.ContactDeleteView: "contacts-delete",
        views.TimelineListView: "timeline-list",
    }
)
