from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("masuk/", views.LoginView.as_view(), name="login"),
    path("masuk/kode/", views.login_code, name="login-code"),
    path("keluar/", auth_views.LogoutView.as_view(), name="logout"),
    path("akun/dua-langkah/", views.two_factor, name="two-factor"),
    path("atur-sandi/<uidb64>/<token>/", views.SetPasswordView.as_view(), name="set-password"),
]
