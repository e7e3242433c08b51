"""Error pages in the reader's language, Indonesian first: an address nothing answers, a refusal,
a form whose CSRF token expired, and our own error, as a browser gets them through the whole
middleware stack. A public 404 sets no cookie (a CDN keeps it)."""

import pytest
from django.test import Client, RequestFactory
from django.utils import translation

from sirekap_tracker import views

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "heading", "home"),
    [
        ("/tidak-ada/", "Halaman tidak ditemukan", "/"),
        ("/en/no-such-page/", "Page not found", "/en/"),
    ],
)
def test_an_unknown_address_answers_a_page_in_the_readers_language(client, path, heading, home):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert f"<h1>{heading}</h1>" in page
    assert f'href="{home}"' in page  # a way on: the national progress, in the same language
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")


def test_a_form_sent_with_an_expired_csrf_token_says_what_to_do():
    browser = Client(enforce_csrf_checks=True)
    response = browser.post("/masuk/", {"username": "kpu", "password": "x"})
    assert response.status_code == 403
    page = response.content.decode()
    assert "Formulir ini sudah kedaluwarsa" in page
    assert "muat ulang halamannya" in page


def test_a_refusal_says_so_in_indonesian_and_in_english(kpu_staff):
    request = RequestFactory().get("/dashboard/")
    request.user = kpu_staff
    with translation.override("id"):
        indonesian = views.permission_denied(request, PermissionError()).content.decode()
    with translation.override("en"):
        english = views.permission_denied(request, PermissionError()).content.decode()
    assert "<h1>Tidak diizinkan</h1>" in indonesian
    assert "<h1>Not allowed</h1>" in english


def test_our_own_error_is_a_page_that_needs_no_request_in_both_languages():
    request = RequestFactory().get("/")
    with translation.override("id"):
        indonesian = views.server_error(request)
    with translation.override("en"):
        english = views.server_error(request)
    assert indonesian.status_code == 500
    assert "Terjadi kesalahan di pihak kami" in indonesian.content.decode()
    assert "Something went wrong on our side" in english.content.decode()
