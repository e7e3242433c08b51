"""Indonesian first (at /), English second (at /en/), chosen by URL and not by cookie."""

import gettext
import re

import pytest

from tests.conftest import PROJECT_DIR

CATALOGUE = PROJECT_DIR / "locale" / "id" / "LC_MESSAGES"


def po_entries(path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    entries = {}
    for block in re.findall(r'msgid ((?:".*"\n)+)msgstr ((?:".*"\n)+)', text):
        msgid, msgstr = ("".join(re.findall(r'"(.*)"', part)) for part in block)
        if msgid:
            entries[msgid] = msgstr
    return entries


def test_every_interface_string_has_an_indonesian_translation():
    entries = po_entries(CATALOGUE / "django.po")
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
