from events_platform.workspaces.api import api_paths

from . import views

# Each view at its operation id (/api/segments.get), under its URL name.
urlpatterns = api_paths(
    {
        views.SubscriptionCreateView: "webhooks-create",
        views.SubscriptionListView: "webhooks-list",
        views.SubscriptionGetView: "webhooks-get",
        views.SubscriptionUpdateView: "webhooks-update",
        views.SubscriptionDeleteView: "webhooks-delete",
        views.SubscriptionToggleView: "webhooks-toggle",
        views.SubscriptionRegenerateSecretView: "webhooks-regenerate",
        views.SubscriptionDeliveriesView: "webhooks-deliveries",
        views.SubscriptionAttemptsView: "webhooks-attempts",
        views.SubscriptionTestView: "webhooks-test",
        views.SubscriptionReplayView: "webhooks-replay",
        views.EventTypesView: "webhooks-event-types",
    }
)
