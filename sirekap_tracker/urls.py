from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path

from public import urls as public_urls
from public import views as public_views
from sirekap_tracker import views
from uploads import tus
from uploads import views as upload_views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("livez", views.livez, name="livez"),
    path("admin/", admin.site.urls),
    path("api/uploads/", upload_views.api_upload, name="api-uploads"),
    # Resumable uploads (tus 1.0), before the state of an upload whose path they would match.
    path("api/uploads/tus/", tus.tus_uploads, name="tus-uploads"),
    path("api/uploads/tus/<str:upload_id>", tus.tus_upload, name="tus-upload"),
    path(
        "api/uploads/<slug:kind>/<str:code>/",
        upload_views.api_upload_state,
        name="api-upload-state",
    ),
    path(
        "api/uploads/<slug:kind>/<str:code>/actions/",
        upload_views.api_upload_action,
        name="api-upload-actions",
    ),
    # The open data: no language prefix, no cookies (docs/api.md).
    path("", include("public.urls")),
]

# Indonesian at /, English at /en/: the language is in the URL, never in a cookie, so every
# cache can keep public pages.
urlpatterns += i18n_patterns(
    # The public progress of the home area; the same page also lives at /progress/....
    path("", public_views.home, name="home"),
    path("", include(public_urls.pages)),
    path("", include("regions.urls")),
    path("", include("uploads.urls")),
    path("", include("accounts.urls")),
    path("", include("operations.urls")),
    path("", include("dashboard.urls")),
    prefix_default_language=False,
)

handler400 = views.bad_request
handler403 = views.permission_denied
handler404 = views.page_not_found
handler500 = views.server_error
