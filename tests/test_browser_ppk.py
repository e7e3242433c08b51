"""The Babulu story as its PPK operator lives it, in a real Chromium, while the real pipeline runs.

Three Babulu TPS are left: two uploaded but still in the server queue, flagged stuck, and one in
Labangka whose officers could not upload at all (no network). The operator logs in, sees the
three on the work queue, takes the Labangka one, flags it stuck "jaringan", uploads its form on
its behalf, and watches it go to the server queue and be published, the history naming each
step and who did it. Out of their kecamatan they are refused. Screenshots go to test-artifacts/.
"""

import re

import pytest
from playwright.sync_api import expect

from simulator.kpps import form_png
from tests.conftest import wait_until
from tests.test_browser_dashboard import ARTIFACTS
from tests.test_pipeline import pipeline_env, start_beat, start_worker, world  # noqa: F401
from tests.world import BABULU, LABANGKA, SEPAKU, SEPAKU_TPS, move, person, publish_all_but
from uploads.models import Status, StuckReason, Upload
from uploads.services.intake import upload_receive
from uploads.services.stuck import upload_mark_stuck

pytestmark = [pytest.mark.browser, pytest.mark.pipeline, pytest.mark.django_db(transaction=True)]
LABANGKA_LEFT = f"{LABANGKA}003"
IN_SERVER_QUEUE = ["6409032001004", "6409032012002"]  # Babulu Darat, Labangka Barat


@pytest.fixture
def night(world, publication_server_factory, start_process, tmp_path):  # noqa: F811
    """Every TPS published but three of Babulu in the pkwkk; the worker, beat and the stand-in
    run."""
    publish_all_but(kind="pkwkp")
    publish_all_but(LABANGKA_LEFT, *IN_SERVER_QUEUE)
    for tps in IN_SERVER_QUEUE:
        kpps = person(f"kpps-{tps}", "kpps", tps)
        upload_receive(tps_code=tps, kind="pkwkk", files=[_photo(tps)], user=kpps)
        move(tps, Status.DELIVERED)
        upload_mark_stuck(
            upload_id=_upload(tps).pk, reason=StuckReason.SERVER_QUEUE, note="antrian server"
        )
    operator = person("ppk-babulu", "ppk", BABULU, password="sandi-babulu-2024")
    server = publication_server_factory(publish_delay_s=0)
    env = pipeline_env(world, server)
    worker = start_worker(start_process, env)
    beat = start_beat(start_process, env, tmp_path)
    wait_until(lambda: "ready." in worker.output(), timeout=60)
    wait_until(lambda: "Sending due task" in beat.output(), timeout=60)
    return operator


def _upload(tps: str) -> Upload:
    return Upload.objects.get(tps_id=tps, contest__kind="pkwkk")


def _photo(tps: str):
    from tests.documents import page_file

    return page_file(form_png(f"pkwkk/{tps}"), "c-hasil.png", "image/png")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"ppk-{name}.png", full_page=True)


def test_the_babulu_operator_pushes_a_stuck_tps_through_by_hand(
    browser, page, live_server, night, tmp_path
):
    url = live_server.url
    page.goto(f"{url}/masuk/?next=/ppk/")
    page.get_by_label("Nama pengguna").fill("ppk-babulu")
    page.get_by_label("Sandi").fill("sandi-babulu-2024")
    page.get_by_role("button", name="Masuk").click()
    page.wait_for_url(re.compile(r"/ppk/$"))

    # The three Babulu TPS, the two stuck ones first; the Labangka one missing after the close.
    counts = page.locator(".work-counts")
    expect(counts).to_contain_text("2 Macet")
    expect(counts).to_contain_text("1 Belum masuk setelah pemungutan ditutup")
    rows = page.locator("table.work tbody tr")
    expect(rows).to_have_count(3)
    assert [rows.nth(i).get_attribute("id") for i in range(3)][2] == (
        f"work-{_upload(LABANGKA_LEFT).pk}"
    )
    shot(page, "queue")

    # Take the Labangka one, flag it stuck "jaringan" (inline, no reload).
    page.locator(f"#work-{_upload(LABANGKA_LEFT).pk} a").first.click()
    page.wait_for_url(re.compile(rf"/dashboard/pkwkk/{LABANGKA_LEFT}/$"))
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Saya tangani").click()
    expect(page.locator(".actions .outcome")).to_contain_text("Anda menanganinya")
    page.locator("select[name=reason]").select_option("network")
    page.locator("form.mark-stuck input[name=note]").fill("sinyal hilang sejak sore")
    page.get_by_role("button", name="Tandai macet").click()
    expect(page.locator(".actions .outcome")).to_contain_text("Ditandai macet")
    assert page.evaluate("window.notReloaded") is True
    shot(page, "taken-and-flagged")

    # Upload its form on its behalf: the form opens on this TPS and contest.
    page.get_by_role("link", name="Unggah atas namanya").click()
    expect(page.locator("input[name=tps]")).to_have_value(LABANGKA_LEFT)
    form = tmp_path / "c-hasil.png"
    form.write_bytes(form_png(f"pkwkk/{LABANGKA_LEFT}/ppk"))
    # The upload page keeps the photo on this computer until the server has it, and sends it
    # over tus (docs/uploads.md).
    page.locator(".phone-files").set_input_files(str(form))
    page.get_by_role("button", name="Unggah").click()
    expect(page.locator(".phone-document")).to_contain_text("Diterima server", timeout=15_000)
    shot(page, "uploaded")

    # The worker delivers it and the poller finds it published on the stand-in's public site.
    wait_until(lambda: _upload(LABANGKA_LEFT).status == Status.PUBLISHED, timeout=60)
    page.get_by_role("link", name="Pantau TPS ini").click()
    history = page.locator("table.history tbody")
    expect(page.locator(".big-status")).to_contain_text("terpublikasi")
    # Each step, oldest first, with who did it: the operator's own three, then the system's.
    lines = [line.lower() for line in history.inner_text().splitlines() if line.strip()]
    steps = ["mulai ditangani", "ditandai macet", "dokumen diterima", "diterima ke antrean server"]
    steps.append("terpublikasi di situs publik")
    found = [next(i for i, line in enumerate(lines) if step in line) for step in steps]
    assert found == sorted(found), lines
    for step in steps[:3]:
        assert next(line for line in lines if step in line).endswith("ppk-babulu"), lines
    assert "sinyal hilang sejak sore" in history.inner_text()
    shot(page, "published")

    # Outside Babulu: Sepaku's dashboard is not there for them, and acting on its TPS is refused.
    missing = page.goto(f"{url}/dashboard/pkwkk/{SEPAKU}/")
    assert missing.status == 404
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    refused = page.request.post(
        f"{url}/dashboard/pkwkk/{SEPAKU_TPS}/aksi/",
        form={"action": "take", "csrfmiddlewaretoken": csrf},
        headers={"Referer": f"{url}/ppk/"},
    )
    assert refused.status == 403
