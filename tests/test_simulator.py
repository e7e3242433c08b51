"""The upload simulator of `make run`: real uploads through the API, a few unlucky Babulu TPS."""

import struct
import zlib
from io import StringIO

import httpx
import pytest
from django.core.management import call_command

from simulator import kpps
from tests.conftest import child_env
from tests.test_pipeline import start_web
from uploads.models import Status, Upload

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_form_pictures_are_valid_pngs_that_differ_per_tps():
    first, second = kpps.form_png("pkwkk/6409032002001"), kpps.form_png("pkwkk/6409032002002")
    assert first.startswith(b"\x89PNG\r\n\x1a\n") and first != second
    _length, kind = struct.unpack(">I4s", first[8:16])
    width, height = struct.unpack(">II", first[16:24])
    assert (kind, width, height) == (b"IHDR", 240, 160)
    idat = first.index(b"IDAT")
    size = struct.unpack(">I", first[idat - 4 : idat])[0]
    assert len(zlib.decompress(first[idat + 4 : idat + 4 + size])) == (240 + 1) * 160


def test_the_simulator_uploads_through_the_api_and_gives_babulu_a_bad_network(
    settings, tmp_path, start_process, publication_server_factory
):
    call_command("load_demo", stdout=StringIO())
    server = publication_server_factory()
    settings.PUBLICATION_URL = server.url
    web = start_web(start_process, child_env(MEDIA_ROOT=str(tmp_path / "media")))
    out = StringIO()
    call_command(
        "simulate_uploads", "--url", web, "--minutes", "0.05", "--limit", "12",
        "--unlucky", "2", "--drops", "5", stdout=out,
    )  # fmt: skip
    assert "done: 12 of 12 uploads taken" in out.getvalue()
    queued = Upload.objects.filter(status=Status.QUEUED, source="kpps")
    assert queued.count() == 12
    # Each by its own TPS's KPPS account, as in the field.
    assert all(
        upload.document.uploaded_by.username == f"kpps-{upload.tps_id}"
        for upload in queued.select_related("document__uploaded_by")
    )
    unlucky = out.getvalue().split("bad network at TPS ")[1].split("\n")[0].split(", ")
    assert len(unlucky) == 2 and all(code.startswith("640903") for code in unlucky)

    # The stand-in now drops deliveries of the unlucky TPS's own photo without an answer; a
    # photo sent on its behalf goes in.
    def deliver(photo: bytes, key: str):
        return server.client.put(
            f"/documents/pkwkk/{unlucky[0]}",
            files={"file": ("p.png", photo, "image/png")},
            headers={"Idempotency-Key": key},
        )

    with pytest.raises(httpx.TransportError):
        deliver(kpps.form_png(f"pkwkk/{unlucky[0]}"), "own")
    assert deliver(kpps.form_png("taken again by the PPK"), "ppk").status_code == 201


def test_a_simulated_officer_told_to_slow_down_waits_and_sends_again():
    """A 429 from the intake (its rate limit) is waited out as Retry-After says."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answers = [429, 201]

    class Intake(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(answers.pop(0))
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Intake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}") as client:
            assert kpps.upload_send(client, "6409032002001", "pkwkk") == 201
    finally:
        server.shutdown()
        server.server_close()
    assert answers == []
