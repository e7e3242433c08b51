from django.urls import path

from uploads import views

app_name = "uploads"
urlpatterns = [
    path("unggah/", views.upload_form, name="form"),
    path("unggah/sw.js", views.upload_service_worker, name="service-worker"),
    path("dokumen/halaman/<int:pk>/", views.document_page_file, name="document-page"),
]
