from django.urls import path

from dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("dashboard/", views.home, name="home"),
    path("dashboard/<slug:kind>/", views.area, name="nation"),
    path("dashboard/<slug:kind>/<str:code>/", views.area, name="area"),
]
