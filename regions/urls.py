from django.urls import path

from regions import views

app_name = "regions"
urlpatterns = [
    path("wilayah/", views.area_index, name="index"),
    path("wilayah/<str:code>/", views.area_detail, name="area"),
]
