"""The open data API (`urlpatterns`), outside i18n_patterns: no language prefix (docs/api.md).
Each prefix catches everything under it, so that a malformed path is answered by the view with a
JSON 400 rather than by Django's HTML 404 page.

The public progress pages (`pages`), inside i18n_patterns: Indonesian at /progress/..., English
at /en/progress/.... The home page (/) is the root URLconf's.
"""

from django.urls import path, re_path

from public import views

app_name = "public"
urlpatterns = [
    # The KPU's own paths under its data root, so that a client configured with one data root
    # (pilkada/hhcw/..., pilkada/paslon/..., wilayah/pilkada/...) needs only that root changed
    # to /api/. Before wilayah/ below, which would take "pilkada" for a contest.
    re_path(r"^api/pilkada/hhcw/(?P<rest>.*)\Z", views.hhcw, {"kinds": views.PILKADA}),
    re_path(r"^api/pilkada/paslon/(?P<rest>.*)\Z", views.candidates, {"kinds": views.PILKADA}),
    re_path(r"^api/wilayah/pilkada/(?P<rest>.*)\Z", views.wilayah, {"kinds": views.PILKADA}),
    re_path(r"^api/hhcw/(?P<rest>.*)\Z", views.hhcw, name="hhcw"),
    re_path(r"^api/wilayah/(?P<rest>.*)\Z", views.wilayah, name="wilayah"),
    re_path(r"^api/progress/(?P<rest>.*)\Z", views.progress, name="progress"),
    re_path(r"^api/dokumen/(?P<name>.*)\Z", views.document_page, name="document-page"),
    re_path(r"^api/paslon/(?P<rest>.*)\Z", views.candidates, name="candidates"),
    # Anything else under /api/ (the intake, /api/uploads/, is routed before these), and /api
    # itself: a JSON 404, as every answer of the API is JSON. Also what Django's APPEND_SLASH
    # would redirect (/api to /api/): a redirected POST loses its body, the 404 says why.
    re_path(r"^api/(?P<rest>.*)\Z", views.api_unknown),
    re_path(r"^api\Z", views.api_unknown),
]

pages = (
    [
        path("progress/<slug:kind>/", views.progress_page, name="nation"),
        path("progress/<slug:kind>/<slug:file>.html", views.progress_page, name="nation-file"),
        path("progress/<slug:kind>/<str:code>/", views.progress_page, name="area"),
        path(
            "progress/<slug:kind>/<str:code>/<slug:file>.html",
            views.progress_page,
            name="area-file",
        ),
    ],
    "progress",
)
