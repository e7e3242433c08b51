"""The fault suite: what a security probe checked, kept as tests so that it keeps holding.

Every URL pattern anonymously and with a NUL in every part, every admin page, the open redirect,
/healthz towards the public, and no personal data in what the public reads. The fixes of the
probe's findings are tested beside their code (test_documents, test_intake_limits, test_requests,
test_gunicorn, test_nginx); this file walks the whole surface.
"""

import re

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLResolver, get_resolver

from accounts.models import ApiToken
from accounts.services import api_token_create
from regions import demo
from regions.services import candidates_import
from tests.documents import page_file
from tests.world import LABANGKA_TPS, log_in, move, person
from uploads.models import PublicAreaProgress, Status, Upload
from uploads.services.intake import upload_receive
from uploads.services.stuck import upload_mark_stuck
from uploads.services.tus import PageSpec, tus_upload_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("small_world")]

# What each named part of a URL pattern is filled with: a value that exists where one can.
SAMPLES = {
    "kind": "pkwkk",
    "code": "6409",
    "pk": "1",
    "object_id": "1",
    "content_type_id": "1",
    "id": "1",
    "app_label": "regions",
    "rest": "pkwkk/64.json",
    "name": "1.jpg",
    "file": "live",
    "url": "nothing/here/",
    "uidb64": "MQ",
    "token": "cm1234-0123456789abcdef",
    "upload_id": "0123456789abcdef0123456789abcdef",
}
# Anyone may read these (the public site, open data and the rest of /api/ but the intake,
# health, the login pages, the set-password page of an invitation, the upload page's service
# worker: a script naming static files).
PUBLIC = re.compile(
    r"^/(en/)?($|progress/|wilayah/|masuk/|atur-sandi/|unggah/sw\.js$)"
    r"|^/api(/(?!uploads/)|$)|^/(healthz|livez)$|^/admin/login/$"
)


def routes(patterns=None, prefix: str = "") -> list[str]:
    """Every URL pattern as a path, its parts filled from SAMPLES (or with `fill`)."""
    found = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += routes(pattern.url_patterns, route)
        else:
            found.append(route)
    return found


def paths(fill=None) -> list[str]:
    def value(name: str) -> str:
        return fill(SAMPLES[name]) if fill else SAMPLES[name]

    result = set()
    for route in routes():
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: value(m[1]), route)
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: value(m[1]), path)
        path = "/" + path.lstrip("^").removesuffix("\\Z").removesuffix("$").replace("^", "")
        result.add(path)
        if not path.startswith(("/admin/", "/api", "/healthz", "/livez")):
            result.add("/en" + path)
    return sorted(result)


ALL_PATHS = paths()


def test_the_walk_covers_every_kind_of_page():
    assert {"/", "/en/progress/pkwkk/6409/", "/dashboard/pkwkk/6409/", "/unggah/"} <= set(ALL_PATHS)
    assert {"/api/uploads/", "/api/hhcw/pkwkk/64.json", "/admin/uploads/upload/1/change/"} <= set(
        ALL_PATHS
    )


def test_every_page_answers_an_anonymous_get_as_designed_never_500(client):
    for path in ALL_PATHS:
        response = client.get(path)
        status = response.status_code
        assert status < 500 or path == "/healthz", (path, status)
        if PUBLIC.search(path):
            continue
        if status == 302:  # to a login page keeping where they were going, or into the admin
            login = r"^/(en/)?masuk/\?next=|^/admin/login/\?next=|^/admin/$"
            assert re.match(login, response["Location"]), (path, response["Location"])
        else:
            assert status in (401, 403, 405), (path, status)


def test_every_page_refuses_an_anonymous_post_never_500():
    client = Client(enforce_csrf_checks=True)
    for path in ALL_PATHS:
        status = client.post(path, {"tps": LABANGKA_TPS, "contest": "pkwkk"}).status_code
        # 412: the tus endpoint, to a request that does not speak tus (no Tus-Resumable).
        assert status in (302, 400, 401, 403, 404, 405, 412), (path, status)


def test_a_nul_in_every_part_of_every_address_is_a_400_even_for_a_superuser(client):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.test"))
    nul_paths = [path for path in paths(lambda sample: sample[:2] + "%00") if "%00" in path]
    assert len(nul_paths) > 30
    for path in nul_paths:
        assert client.get(path).status_code == 400, path


# --- The admin


@pytest.fixture
def superuser_client(client, kpu):
    # With their second factor given (tests.world.log_in): the admin asks it of a superuser.
    log_in(client, get_user_model().objects.create_superuser("root", "root@example.test"))
    return client


@pytest.fixture
def kpu():
    user = person("kpu", "staff", "6409")
    user.groups.add(Group.objects.create(name="KPU Kabupaten"))
    api_token_create(username="kpu")
    upload_receive(tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=user)
    spec = PageSpec(LABANGKA_TPS, "pkwkk", "phone-1", page=1, pages=1, filename="c-hasil.jpg")
    tus_upload_create(user=user, spec=spec, length=2048, metadata="")
    PublicAreaProgress.objects.create(kind="pkwkk", area_code="6409", total=3, published=0)
    candidates_import(kind="pkwkk", rows=demo.candidate_rows("pkwkk"))
    return user


def admin_url(model, view: str, *args) -> str:
    from django.urls import reverse

    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize(
    "model", list(admin.site._registry), ids=lambda model: model._meta.label_lower
)
def test_every_admin_page_of_every_model_answers_a_superuser_without_error(superuser_client, model):
    some = model.objects.order_by("pk").first()
    assert some is not None, f"no {model._meta.label} to open"
    pages = [
        admin_url(model, "changelist"),
        admin_url(model, "changelist") + "?q=6409",
        admin_url(model, "change", some.pk),
        admin_url(model, "history", some.pk),
    ]
    for url in pages:
        assert superuser_client.get(url).status_code == 200, url
    # An empty add form is shown again with its errors (or refused): never saved half-made.
    for method in (superuser_client.get, superuser_client.post):
        assert method(admin_url(model, "add")).status_code in (200, 403), method


def test_api_tokens_are_not_added_in_the_admin_but_by_the_command(superuser_client):
    assert superuser_client.get(admin_url(ApiToken, "add")).status_code == 403
    changelist = superuser_client.get(admin_url(ApiToken, "changelist")).text
    assert admin_url(ApiToken, "add") not in changelist


# --- Logging in


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "https:evil.example",
        "///evil",
    ],
)
def test_logging_in_never_sends_anyone_to_another_site(client, settings, target):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    person("kpu", "staff", password="rahasia")
    response = client.post(
        "/masuk/?next=" + target, {"username": "kpu", "password": "rahasia", "next": target}
    )
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"


# --- /healthz towards the public


def test_healthz_tells_a_visitor_through_nginx_only_ok_or_fail(client):
    through_nginx = client.get("/healthz", headers={"X-Forwarded-For": "36.80.1.9"})
    from_outside = client.get("/healthz", REMOTE_ADDR="36.80.1.9")
    forged = client.get("/healthz", REMOTE_ADDR="36.80.1.9", headers={"X-Forwarded-For": "::1"})
    for response in (through_nginx, from_outside, forged):
        assert response.json() == {"status": "fail"}  # no worker runs in this test
        assert response.status_code == 503


def test_healthz_gives_the_details_to_internal_callers_and_staff(client):
    internal = client.get("/healthz", REMOTE_ADDR="10.0.0.5").json()
    client.force_login(person("kpu", "staff"))
    staff = client.get("/healthz", REMOTE_ADDR="36.80.1.9").json()
    for body in (internal, staff):
        assert body["status"] == "fail"
        assert body["database"]["ok"] is True and body["workers"]["ok"] is False


# --- Personal data


def test_nothing_personal_reaches_what_the_public_reads(client, settings):
    user = person("siti.rahma", "ppk", "640903")
    user.email, user.first_name, user.last_name = "siti.rahma@example.test", "Siti", "Rahmawati"
    user.save()
    key = api_token_create(username="siti.rahma")
    receipt = upload_receive(
        tps_code=LABANGKA_TPS,
        kind="pkwkk",
        files=[page_file()],
        user=user,
        idempotency_key="kpps-siti-0812",
    )
    upload = Upload.objects.get(pk=receipt.upload.pk)
    upload_mark_stuck(upload_id=upload.pk, reason="device", actor=user, note="HP 0812-3456-7890")
    move("6409032002002", Status.PUBLISHED)
    secrets = ["siti", "Rahmawati", "example.test", "0812", key[:8], "kpps-siti"]
    urls = [
        f"/progress/pkwkk/{LABANGKA_TPS}/",
        f"/en/progress/pkwkk/{LABANGKA_TPS}/",
        "/progress/pkwkk/6409032002/",
        "/en/progress/pkwkk/6409/?part=live",
        f"/api/hhcw/pkwkk/64/6409/640903/6409032002/{LABANGKA_TPS}.json",
        "/api/hhcw/pkwkk/64/6409/640903/6409032002.json",
        "/api/progress/pkwkk/6409032002.csv",
        "/api/wilayah/pkwkk/64/6409/640903/6409032002.json",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        text = response.content.decode().lower()
        assert [secret for secret in secrets if secret.lower() in text] == [], url
