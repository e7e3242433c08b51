"""No public answer sets a cookie or varies on one, whatever cookies the request carries, so
that a CDN keeps every public page and open-data file for everyone; the staff pages still hand
out and check their CSRF token and drop a dead session, as Django does.

Through the whole middleware stack, with the CSRF check on, as a browser or a client of the
KPU's files meets it."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django.utils import timezone

from tests.documents import page_file
from tests.world import BABULU, LABANGKA, LABANGKA_TPS, move
from uploads.models import Status
from uploads.progress.services import timeline_point_take
from uploads.services.intake import upload_receive

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ppu")]

TPS_FILE = f"64/6409/{BABULU}/{LABANGKA}/{LABANGKA_TPS}.json"
PAGES = [
    "/",
    "/en/",
    "/progress/pkwkk/",
    "/en/progress/pkwkp/",
    "/progress/pkwkk/64/",
    "/progress/pkwkk/6409/",
    "/progress/pkwkk/6409/?part=live",
    "/progress/pkwkk/6409/?part=timeline",
    "/en/progress/pkwkk/6409/?sort=progress",
    f"/progress/pkwkk/{BABULU}/",
    f"/en/progress/pkwkk/{LABANGKA}/",
    f"/progress/pkwkk/{LABANGKA_TPS}/",
    f"/en/progress/pkwkk/{LABANGKA_TPS}/?part=live",
    # Their errors
    "/progress/pkwkk/6499/",
    "/en/progress/xx/",
    "/progress/pkwkk/64090/",
    "/progress/pkwkk/6409/?part=nothing",
    "/progress/pkwkk/6409/a/b/",
]
FILES = [
    "/api/hhcw/pkwkk.json",
    "/api/hhcw/pkwkk/64.json",
    "/api/hhcw/pkwkk/64/6409.json",
    f"/api/hhcw/pkwkk/64/6409/{BABULU}.json",
    f"/api/hhcw/pkwkk/64/6409/{BABULU}/{LABANGKA}.json",
    f"/api/hhcw/pkwkk/{TPS_FILE}",
    f"/api/pilkada/hhcw/pkwkp/{TPS_FILE}",
    "/api/wilayah/pkwkk/0.json",
    f"/api/wilayah/pkwkk/64/6409/{BABULU}/{LABANGKA}.json",
    "/api/wilayah/pilkada/pkwkp/64.json",
    "/api/progress/pkwkk.csv",
    f"/api/progress/pkwkk/{BABULU}.csv",
    "/api/paslon/pkwkk.json",
    "/api/pilkada/paslon/pkwkp.json",
    # Their errors, and what no route answers
    "/api/hhcw/pkwkx.json",
    "/api/hhcw/pkwkk/64/6499.json",
    "/api/hhcw/pkwkk/64/6509.json",
    "/api/wilayah/pkwkk.json",
    "/api/progress/pkwkk/6409.json",
    "/api/dokumen/999999.jpg",
    "/api/dokumen/abc.jpg",
    "/api/paslon/ppwp.json",
    "/api/pilkada/paslon/ppwp.json",
    "/api/paslon/pkwkk/64.json",
    "/api",
    "/api/nothing.json",
    "/en/api/hhcw/pkwkk.json",
    "/nothing/here/",
]


def the_cookies(kpu_staff) -> dict[str, dict[str, str]]:
    """What a browser may send: a session id that never was, one of a session that expired, one
    of a live staff session; a malformed CSRF token, and a good one."""
    logged_in = Client()
    logged_in.force_login(kpu_staff)
    expired = Client()
    expired.force_login(kpu_staff)
    expired_key = expired.cookies["sessionid"].value
    Session.objects.filter(pk=expired_key).update(expire_date=timezone.now() - timedelta(hours=1))
    return {
        "an invalid session id": {"sessionid": "not-a-session"},
        "an expired session's id": {"sessionid": expired_key},
        "a logged-in session's id": {"sessionid": logged_in.cookies["sessionid"].value},
        "a malformed CSRF token": {"csrftoken": "bad"},
        "a valid CSRF token": {"csrftoken": _get_new_csrf_string()},
    }


def published_page(kpu_staff) -> str:
    receipt = upload_receive(
        tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=kpu_staff
    )
    move(LABANGKA_TPS, Status.PUBLISHED)
    return f"/api/dokumen/{receipt.document.pages.get().pk}.jpg"


def test_no_public_answer_sets_a_cookie_or_varies_on_one_whatever_the_request_carries(kpu_staff):
    timeline_point_take()
    urls = [*PAGES, *FILES, published_page(kpu_staff)]
    anonymous = Client(enforce_csrf_checks=True)
    methods = [(url, "get") for url in urls] + [(url, "head") for url in FILES[:3]]
    methods += [(url, "post") for url in [PAGES[0], PAGES[5], FILES[0], FILES[-3]]]
    methods += [(url, "options") for url in FILES[:2]]
    expected = {(url, method): getattr(anonymous, method)(url) for url, method in methods}
    bodies = {asked: response.getvalue() for asked, response in expected.items()}
    assert {response.status_code for response in expected.values()} >= {200, 204, 400, 403, 404}
    for case, cookies in the_cookies(kpu_staff).items():
        client = Client(enforce_csrf_checks=True)
        for name, value in cookies.items():
            client.cookies[name] = value
        for (url, method), plain in expected.items():
            response = getattr(client, method)(url)
            where = (case, method, url)
            assert response.status_code == plain.status_code, where
            assert "Set-Cookie" not in response.headers, where
            assert not response.cookies, where
            assert "Cookie" not in response.get("Vary", ""), where
            for header in ("Cache-Control", "ETag", "Content-Type", "Access-Control-Allow-Origin"):
                assert response.get(header) == plain.get(header), (*where, header)
            if method == "get":
                assert response.getvalue() == bodies[url, method], where


def test_a_staff_page_still_replaces_a_bad_csrf_token_and_drops_a_dead_session(kpu_staff):
    client = Client(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = "bad"
    client.cookies["sessionid"] = "not-a-session"
    login_page = client.get("/en/masuk/")
    assert login_page.cookies["sessionid"].value == ""  # deleted
    token = login_page.cookies["csrftoken"].value
    assert len(token) == 32
    assert "Cookie" in login_page["Vary"]
    refused = Client(enforce_csrf_checks=True).post(
        "/en/masuk/", {"username": "kpu", "password": "rahasia-sekali"}
    )
    assert refused.status_code == 403
    logged_in = client.post(
        "/en/masuk/",
        {"username": "kpu", "password": "rahasia-sekali", "csrfmiddlewaretoken": token},
    )
    assert logged_in.status_code == 302
    assert logged_in.cookies["sessionid"].value
    assert client.get("/en/dashboard/").status_code in (200, 302)
    dashboard = client.get("/en/dashboard/pkwkk/6409/")
    assert dashboard.status_code == 200
    assert "Cookie" in dashboard["Vary"]
