from django.urls import path

from operations import views

app_name = "operations"
urlpatterns = [
    # Before the dashboard's /dashboard/<contest>/: "sistem" is no contest kind.
    path("dashboard/sistem/", views.system, name="system"),
]
