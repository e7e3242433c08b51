"""Indonesian first (at /), English second (at /en/), chosen by URL and not by cookie."""

import gettext
import re

import pytest
from django.contrib.auth import get_user_model

from tests.conftest import PROJECT_DIR

CATALOGUE = PROJECT_DIR / "locale" / "id" / "LC_MESSAGES"


def po_entries(path, *, plural: bool = False) -> dict[str, str]:
    """msgid: msgstr of the singular entries, or of the plural ones (keyed by the English
    singular and plural forms, each with the one Indonesian form: Indonesian has nplurals=1)."""
    text = path.read_text(encoding="utf-8")
    entries = {}
    pattern = r'msgid ((?:".*"\n)+)(?:msgid_plural ((?:".*"\n)+))?msgstr(?:\[0\])? ((?:".*"\n)+)'
    for block in re.findall(pattern, text):
        msgid, plural_form, msgstr = ("".join(re.findall(r'"(.*)"', part)) for part in block)
        if msgid and bool(plural_form) == plural:
            entries[msgid] = msgstr
            if plural_form:
                entries[plural_form] = msgstr
    return entries


def every_entry() -> dict[str, str]:
    path = CATALOGUE / "django.po"
    return po_entries(path) | po_entries(path, plural=True)


def test_every_interface_string_has_an_indonesian_translation():
    entries = every_entry()
    assert entries
    assert "#, fuzzy" not in (CATALOGUE / "django.po").read_text()
    untranslated = [msgid for msgid, msgstr in entries.items() if not msgstr]
    assert untranslated == []


def test_the_compiled_catalogue_matches_the_source():
    with open(CATALOGUE / "django.mo", "rb") as compiled:
        catalogue = gettext.GNUTranslations(compiled)
    for msgid, msgstr in po_entries(CATALOGUE / "django.po").items():
        assert catalogue.gettext(msgid.replace('\\"', '"')) == msgstr.replace('\\"', '"')


def test_home_is_indonesian_at_the_root_and_english_under_en(client, ppu):
    indonesian = client.get("/", headers={"accept-language": "en"})
    english = client.get("/en/")
    assert indonesian.status_code == english.status_code == 200
    assert '<html lang="id">' in indonesian.text
    assert "0 dari 293 TPS terpublikasi" in indonesian.text
    assert '<html lang="en">' in english.text
    assert "0 of 293 TPS published" in english.text
    assert "django_language" not in indonesian.cookies
    assert "Accept-Language" not in indonesian.get("Vary", "")


@pytest.mark.django_db
def test_before_any_contest_the_home_page_says_what_the_site_is(client):
    assert "Progres unggah dokumen hasil TPS" in client.get("/").text
    assert "Upload progress of polling station result documents" in client.get("/en/").text


# --- No English on an Indonesian page


def english_fragments() -> set[str]:
    """The English text of every catalogue entry translated into something else: the pieces
    between its placeholders, those long enough to be English rather than a shared word."""
    fragments = set()
    for msgid, msgstr in every_entry().items():
        if msgstr == msgid:
            continue
        for piece in re.split(r"%\(\w+\)[sd]|%[sd]|\{\w*\}", msgid.replace('\\"', '"')):
            piece = piece.strip(" .,:;()·")
            words = re.findall(r"[A-Za-z]+", piece)
            if len(words) >= 2 or (words and len(words[0]) >= 7):
                fragments.add(piece)
    return fragments


@pytest.fixture
def night(ppu, kpu_staff, time_machine):
    """PPU late on the night: most published, some on their way or failing, one stuck with a
    delivery error, the public site read, a timeline with a past."""
    from datetime import timedelta

    from django.utils import timezone

    from tests.documents import page_file
    from tests.world import babulu_tps, move, publish_all_but
    from uploads.delivery import Outcome
    from uploads.models import PublicAreaProgress, Status, StuckReason
    from uploads.progress.services import timeline_point_take
    from uploads.services.delivery import upload_claim, upload_record_outcome
    from uploads.services.intake import upload_receive
    from uploads.services.stuck import upload_mark_stuck

    left = babulu_tps(6)
    timeline_point_take(at=timezone.now() - timedelta(minutes=40))
    publish_all_but(*left)
    move(left[0], Status.DELIVERED)
    move(left[1], Status.REJECTED)
    receipt = upload_receive(tps_code=left[2], kind="pkwkk", files=[page_file()], user=kpu_staff)
    lease = upload_claim(upload_id=receipt.upload.pk)
    error = Outcome("transient", "connection: Server disconnected without sending a response.")
    upload_record_outcome(lease=lease, outcome=error)
    upload_mark_stuck(upload_id=receipt.upload.pk, reason=StuckReason.NETWORK)
    PublicAreaProgress.objects.create(
        kind="pkwkk", area_code="6409", total=293, published=287, site_ts="2024-11-28 06:10:00"
    )
    return left


def indonesian_pages(client, tps: list[str]) -> dict[str, str]:
    """The text of the pages a person reads, in Indonesian; what sits behind a details element
    (a server's raw words, for those who need them) left out."""
    from tests.world import text_of

    desa, kecamatan = tps[2][:10], tps[2][:6]
    public = ["/", f"/progress/pkwkk/{kecamatan}/", f"/progress/pkwkk/{desa}/"]
    public += [f"/progress/pkwkk/{tps[2]}/", f"/progress/pkwkk/{tps[0]}/", "/progress/pkwkk/"]
    staff = ["/dashboard/pkwkk/6409/", f"/dashboard/pkwkk/{desa}/", f"/dashboard/pkwkk/{tps[2]}/"]
    staff += ["/unggah/"]
    pages = {url: client.get(url) for url in public}
    client.force_login(get_user_model().objects.get(username="kpu"))
    pages |= {url: client.get(url) for url in staff}
    assert all(response.status_code == 200 for response in pages.values()), pages
    return {
        url: text_of(re.sub(r"<details.*?</details>", " ", response.text, flags=re.S))
        for url, response in pages.items()
    }


def test_no_english_text_of_the_catalogue_is_left_on_an_indonesian_page(client, night):
    fragments = english_fragments()
    assert len(fragments) > 100, "the catalogue was read"
    for url, page in indonesian_pages(client, night).items():
        left = sorted(fragment for fragment in fragments if fragment in page)
        assert left == [], url


def test_the_candidates_are_listed_in_indonesian_in_the_admin(client, ppu):
    from tests.world import log_in, text

    log_in(client, get_user_model().objects.create_superuser("root", "root@example.test"))
    page = text(client.get("/admin/regions/candidate/"))
    for heading in (
        "Nomor urut",
        "Nama",
        "ID KPU",
        "Wilayah",
        "Pemilihan",
        "Warna",
        "Dicatat pada",
    ):
        assert heading in page
    assert "ISRAN NOOR - HADI MULYADI" in page
    assert "Tambah calon" not in page  # imported whole, never added one by one
