from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from events_platform.pages import favicon_redirect

urlpatterns = [
    path("favicon.ico", favicon_redirect),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The Swagger UI draws its icons as data: SVG images; only this page's policy allows them.
    path(
        "api/docs/",
        csp_update({"img-src": ["data:"]})(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("api/", include("events_platform.api_urls")),
    path("", include("events_platform.workspaces.urls")),
    path("", include("contacts.urls")),
    path("", include("segments.urls")),
    path("", include("rfm.urls")),
    path("", include("webhooks.urls")),
]

# Django's own error answers: JSON in the API's format under /api/, the pages' templates elsewhere.
handler400 = "events_platform.middleware.bad_request"
handler403 = "events_platform.middleware.permission_denied"
handler404 = "events_platform.middleware.page_not_found"
handler500 = "events_platform.middleware.server_error"
