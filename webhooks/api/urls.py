from django.urls import path

from . import views

P = "webhookSubscriptions"
urlpatterns = [
    path(f"{P}.create", views.SubscriptionCreateView.as_view(), name="webhooks-create"),
    path(f"{P}.list", views.SubscriptionListView.as_view(), name="webhooks-list"),
    path(f"{P}.get", views.SubscriptionGetView.as_view(), name="webhooks-get"),
    path(f"{P}.update", views.SubscriptionUpdateView.as_view(), name="webhooks-update"),
    path(f"{P}.delete", views.SubscriptionDeleteView.as_view(), name="webhooks-delete"),
    path(f"{P}.toggle", views.SubscriptionToggleView.as_view(), name="webhooks-toggle"),
    path(f"{P}.regenerateSecret", views.SubscriptionRegenerateSecretView.as_view(), name="webhooks-regenerate"),
    path(f"{P}.deliveries", views.SubscriptionDeliveriesView.as_view(), name="webhooks-deliveries"),
    path(f"{P}.attempts", views.SubscriptionAttemptsView.as_view(), name="webhooks-attempts"),
    path(f"{P}.test", views.SubscriptionTestView.as_view(), name="webhooks-test"),
    path(f"{P}.replay", views.SubscriptionReplayView.as_view(), name="webhooks-replay"),
    path(f"{P}.eventTypes", views.EventTypesView.as_view(), name="webhooks-event-types"),
]
