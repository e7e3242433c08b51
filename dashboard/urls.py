from django.urls import path

from dashboard import audit_views, views, work_views

app_name = "dashboard"
urlpatterns = [
    path("dashboard/", views.home, name="home"),
    path("dashboard/<slug:kind>/", views.area, name="nation"),
    path("dashboard/<slug:kind>/<str:code>/", views.area, name="area"),
    path("dashboard/<slug:kind>/<str:code>/aksi/", work_views.act, name="act"),
    path("ppk/", work_views.work, name="work"),
    path("ppk/<str:code>/", work_views.work, name="work-area"),
    path("audit/", audit_views.audit, name="audit"),
    path("audit/csv", audit_views.audit_csv, name="audit-csv"),
]
