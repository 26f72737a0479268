from django.urls import path

from . import views

urlpatterns = [
    path("webhooks/", views.webhook_list, name="webhook-list"),
    path("webhooks/<str:public_id>/deliveries/", views.subscription_deliveries, name="webhook-deliveries"),
    path(
        "webhooks/<str:public_id>/deliveries/<str:message_id>/",
        views.delivery_detail,
        name="webhook-delivery-detail",
    ),
    path(
        "webhooks/<str:public_id>/<str:action>/",
        views.subscription_action,
        name="webhook-action",
    ),
]
