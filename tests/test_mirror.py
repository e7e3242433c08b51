"""The public snapshot mirrored to S3-compatible object storage (public/mirror.py), against a real
S3 API on loopback (moto's threaded server), read back with boto3 and with plain HTTP as a CDN or
a browser would."""

import io
import json
import logging
from pathlib import Path

import boto3
import httpx
import pytest
import time_machine
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone, translation
from moto.server import ThreadedMotoServer
from playwright.sync_api import expect

from operations.board import system_board
from operations.metrics import exposition
from operations.selectors import system_state
from public import mirror, snapshots
from public.entries import LONG_CACHE, SHORT_CACHE
from public.models import MirroredObject
from tests.nginx import NGINX, LocalNginx, free_port
from tests.test_open_data import receive
from tests.world import BABULU, LABANGKA_TPS, move, refresh
from uploads.models import Status

pytestmark = pytest.mark.usefixtures("ppu")
BUCKET = "sirekap-public"
BASE_URL = "https://cdn.example.org"
PPU = "/progress/pkwkk/6409/"
PPU_FILE = "/api/hhcw/pkwkk/64/6409.json"
PUBLIC_READ = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                   "Resource": f"arn:aws:s3:::{BUCKET}/*"}],
}  # fmt: skip
TPS_FILE = f"/api/hhcw/pkwkk/64/6409/640903/6409032002/{LABANGKA_TPS}.json"


@pytest.fixture(scope="module")
def s3_server():
    """One S3 API for the module; each test gets an empty bucket of its own (s3)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=str(root)):
        call_command("collectstatic", "--no-input", verbosity=0)
    return root


@pytest.fixture
def s3(s3_server, static_root, settings, snapshot_root):
    """The mirror on, to an empty bucket; a boto3 client to read it."""
    settings.STATIC_ROOT = str(static_root)
    settings.PUBLIC_S3 = {
        "bucket": BUCKET,
        "endpoint_url": s3_server,
        "region": "us-east-1",
        "access_key": "test",
        "secret_key": "test",
        "base_url": BASE_URL,
    }
    client = boto3.client(
        "s3", endpoint_url=s3_server, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )  # fmt: skip
    httpx.post(f"{s3_server}/moto-api/reset")
    client.create_bucket(Bucket=BUCKET)
    # Anyone may read it, as docs/deploy.md sets the bucket up for a CDN or a static host.
    client.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(PUBLIC_READ))
    mirror._static_wanted_for.clear()
    return client


def push() -> mirror.Push:
    result = mirror.mirror_push(budget_seconds=60)
    assert result is not None
    return result


def keys(s3) -> set[str]:
    found = s3.list_objects_v2(Bucket=BUCKET, MaxKeys=1000).get("Contents", [])
    return {item["Key"] for item in found}


def puts_counted() -> list[str]:
    """The keys of every PutObject our mirror's client sends from now on."""
    sent: list[str] = []
    client = mirror._client(**mirror._client_settings())
    client.meta.events.register(
        "before-call.s3.PutObject", lambda params, **kwargs: sent.append(params["url_path"])
    )
    return sent


def test_pages_polls_and_files_are_mirrored_at_their_public_paths(client, s3, s3_server):
    answers = {
        "progress/pkwkk/6409/index.html": client.get(PPU),
        "progress/pkwkk/6409/live.html": client.get(PPU + "live.html"),
        "en/progress/pkwkk/6409/index.html": client.get("/en" + PPU),
        "api/hhcw/pkwkk/64/6409.json": client.get(PPU_FILE),
        "api/pilkada/hhcw/pkwkk/64/6409.json": client.get("/api/pilkada/hhcw/pkwkk/64/6409.json"),
        "api/progress/pkwkk/6409.csv": client.get("/api/progress/pkwkk/6409.csv"),
        "api/wilayah/pkwkk/64/6409.json": client.get("/api/wilayah/pkwkk/64/6409.json"),
        "index.html": client.get("/"),
    }
    result = push()
    assert result.failed == 0 and result.left == 0
    assert set(answers) <= keys(s3)
    for key, answer in answers.items():
        found = s3.get_object(Bucket=BUCKET, Key=key)
        assert found["Body"].read() == answer.content, key
        assert found["ContentType"] == answer["Content-Type"], key
        assert found["CacheControl"] == SHORT_CACHE == answer["Cache-Control"], key
    csv = s3.head_object(Bucket=BUCKET, Key="api/progress/pkwkk/6409.csv")
    assert csv["ContentDisposition"] == 'inline; filename="progress-pkwkk-6409.csv"'
    # The page's poll asks for an object that exists; the styles and scripts it names too.
    page = answers["progress/pkwkk/6409/index.html"].text
    assert 'hx-get="/progress/pkwkk/6409/live.html"' in page
    assert {"static/css/app.css", "static/js/live.js", "static/vendor/htmx/htmx.min.js"} <= keys(s3)
    css = s3.head_object(Bucket=BUCKET, Key="static/css/app.css")
    assert (css["ContentType"], css["CacheControl"]) == ("text/css", mirror.STATIC_CACHE)

    # As a CDN or a browser reads them: plain GETs, and 304 for the ETag it was given.
    live = httpx.get(f"{s3_server}/{BUCKET}/progress/pkwkk/6409/live.html")
    assert live.status_code == 200
    assert live.headers["content-type"] == "text/html; charset=utf-8"
    assert live.headers["cache-control"] == SHORT_CACHE
    again = httpx.get(live.url, headers={"If-None-Match": live.headers["etag"]})
    assert again.status_code == 304


def test_only_what_changed_is_put_again(client, s3):
    for url in (PPU, PPU_FILE, "/progress/pkwkk/640902/", "/api/hhcw/pkwkk/64/6409/640902.json"):
        client.get(url)
    refresh()  # the refreshers' state, as beat's would be
    push()
    sent = puts_counted()
    refresh()  # nothing changed
    assert push().put == 0 and sent == []
    before = s3.head_object(Bucket=BUCKET, Key="progress/pkwkk/640902/index.html")["ETag"]
    move(LABANGKA_TPS, Status.PUBLISHED)  # in Babulu: PPU changes, Waru (640902) does not
    refresh()
    push()
    assert sorted(sent) == [
        "/api/hhcw/pkwkk/64/6409.json",
        "/api/pilkada/hhcw/pkwkk/64/6409.json",
        "/progress/pkwkk/6409/index.html",
        "/progress/pkwkk/6409/live.html",  # its poll
    ]
    assert s3.head_object(Bucket=BUCKET, Key="progress/pkwkk/640902/index.html")["ETag"] == before
    page = s3.get_object(Bucket=BUCKET, Key="progress/pkwkk/6409/index.html")["Body"].read()
    assert "1 dari 293 TPS terpublikasi" in " ".join(page.decode().split())


def test_a_tps_file_links_its_pages_at_the_public_address_and_they_are_mirrored(
    client, s3, kpu_staff
):
    receive(kpu_staff)
    move(LABANGKA_TPS, Status.PUBLISHED)
    ours = client.get(TPS_FILE).json()
    push()
    mirrored = s3.get_object(Bucket=BUCKET, Key=TPS_FILE.lstrip("/"))["Body"].read()
    (image,) = httpx.Response(200, content=mirrored).json()["images"]
    path = image.removeprefix(BASE_URL)
    assert image.startswith(BASE_URL + "/api/dokumen/") and ours["images"] == [
        "http://testserver" + path
    ]
    found = s3.get_object(Bucket=BUCKET, Key=path.lstrip("/"))
    assert found["Body"].read() == b"".join(client.get(path).streaming_content)
    assert (found["ContentType"], found["CacheControl"]) == ("image/jpeg", LONG_CACHE)


def test_after_a_deploy_the_new_build_writes_what_is_on_the_bucket_unasked(
    client, s3, settings, tmp_path
):
    """The CDN keeps answering from the bucket and never asks us: a new build of the code must
    take over every mirrored entry itself, not wait for requests."""
    client.get(PPU)
    refresh()
    push()
    move(LABANGKA_TPS, Status.PUBLISHED)
    settings.STATIC_ROOT = str(tmp_path)  # a deploy: other static names, another build
    (tmp_path / "staticfiles.json").write_text('{"paths": {"css/app.css": "css/app.2222.css"}}')
    snapshots.build.cache_clear()
    try:
        refresh()
        push()
    finally:
        snapshots.build.cache_clear()
    page = s3.get_object(Bucket=BUCKET, Key="progress/pkwkk/6409/index.html")["Body"].read()
    assert "1 dari 293 TPS terpublikasi" in " ".join(page.decode().split())
    assert "static/css/app.css" in keys(s3)  # the earlier build's files stay


def test_before_the_night_what_the_public_reads_first_is_put_on_the_bucket_unasked(client, s3):
    call_command("refresh_public_snapshot", "--build-down-to", "kabupaten", stdout=io.StringIO())
    result = push()
    assert result.failed == 0 and result.left == 0
    found = keys(s3)
    assert {
        "index.html",
        "progress/pkwkk/index.html",
        "progress/pkwkp/64/index.html",
        "progress/pkwkk/6409/index.html",
        "progress/pkwkk/6409/live.html",
        "en/progress/pkwkk/6409/index.html",
        "en/progress/pkwkk/6409/live.html",
        "api/hhcw/pkwkk/64/6409.json",
        "api/wilayah/pkwkk/64/6409.json",
        "api/progress/pkwkk/6409.csv",
    } <= found
    assert not [key for key in found if BABULU in key]  # a kecamatan: below the level asked
    page = s3.get_object(Bucket=BUCKET, Key="progress/pkwkk/6409/index.html")["Body"].read()
    assert page == client.get(PPU).content


def test_what_no_longer_exists_is_deleted(client, s3):
    from regions.models import Contest
    from uploads.models import Upload

    client.get("/progress/pkwkp/64/")
    client.get("/api/hhcw/pkwkp/64.json")
    push()
    assert {"progress/pkwkp/64/index.html", "api/hhcw/pkwkp/64.json"} <= keys(s3)
    # The governor's contest withdrawn before anything came in.
    Upload.objects.filter(contest__kind="pkwkp").delete()
    Contest.objects.filter(kind="pkwkp").delete()
    call_command("refresh_public_snapshot", "--all", stdout=io.StringIO())
    result = push()
    # The page and its polls (live.html, timeline.html), the file and its pilkada path.
    assert result.deleted == 5
    assert not {"progress/pkwkp/64/index.html", "api/hhcw/pkwkp/64.json"} & keys(s3)
    assert not MirroredObject.objects.filter(key__contains="pkwkp").exists()


def test_a_failing_bucket_keeps_what_waits_and_puts_it_once_back(client, s3, settings):
    client.get(PPU)
    up = settings.PUBLIC_S3
    settings.PUBLIC_S3 = {**up, "endpoint_url": f"http://127.0.0.1:{free_port()}"}  # nobody there
    down = push()
    # One round of puts, all refused: the bucket is down, the run stops there.
    assert down.put == 0 and down.failed == mirror.PUT_THREADS
    failing = MirroredObject.objects.filter(pending=True).exclude(last_error="")
    assert failing.count() == mirror.PUT_THREADS
    assert "Could not connect" in failing.first().last_error
    # Seen on the system page and in /metrics.
    with translation.override("en"):
        (section,) = [s for s in system_board(system_state()) if "object storage" in s.title]
    failing_row = next(row for row in section.rows if row.label == "Failing puts, retried")
    assert failing_row.light == "amber" and "Could not connect" in failing_row.value
    assert f"sirekap_mirror_failing_objects {mirror.PUT_THREADS}.0".encode() in exposition()
    # The local snapshot goes on meanwhile.
    move(LABANGKA_TPS, Status.PUBLISHED)
    refresh()
    assert "1 dari 293" in " ".join(client.get(PPU).content.decode().split())

    settings.PUBLIC_S3 = up
    # Each failed one is tried again once its wait is over.
    with time_machine.travel(timezone.now() + mirror.RETRY_CAP, tick=True):
        back = push()
    assert back.failed == 0 and back.left == 0
    page = s3.get_object(Bucket=BUCKET, Key="progress/pkwkk/6409/index.html")["Body"].read()
    assert "1 dari 293" in " ".join(page.decode().split())


def static_host(*, port: int, bucket_url: str) -> str:
    """nginx as a CDN in front of the bucket (docs/deploy.md): a URL ending in / is its
    index.html, the rest the object of that path; conditional GETs go through."""
    return f"""server {{
        listen 127.0.0.1:{port};
        location / {{
            rewrite ^/$ /{BUCKET}/index.html break;
            rewrite ^/(.*)/$ /{BUCKET}/$1/index.html break;
            rewrite ^/(.*)$ /{BUCKET}/$1 break;
            proxy_pass {bucket_url};
        }}
    }}"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not NGINX.exists(), reason=f"{NGINX} is missing: `make test` as root has it")
def test_a_page_served_from_the_bucket_polls_it_and_shows_a_publication(
    client, s3, s3_server, browser, tmp_path
):
    client.get(PPU)
    refresh()
    push()
    port = free_port()
    requests: list[tuple[str, int]] = []
    with LocalNginx(tmp_path / "nginx", [static_host(port=port, bucket_url=s3_server)], [port]):
        context = browser.new_context()
        page = context.new_page()
        page.on("response", lambda answer: requests.append((answer.url, answer.status)))
        page.goto(f"http://127.0.0.1:{port}{PPU}")
        big = page.locator(".big-percent")
        assert big.inner_text() == "0,00%"
        # Styled and live from the bucket alone: its style sheet and scripts are objects too.
        assert page.evaluate("getComputedStyle(document.body).margin") != "8px"
        move(LABANGKA_TPS, Status.PUBLISHED)
        refresh()
        push()
        # The next poll (every 15 s) asks the bucket for live.html and brings the change.
        expect(big).to_have_text("0,34%", timeout=25_000)
        context.close()
    polls = [status for url, status in requests if url.endswith(f"{PPU}live.html")]
    assert polls and set(polls) <= {200, 304}
    assert not [url for url, status in requests if status >= 400]
