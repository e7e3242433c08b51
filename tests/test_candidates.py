"""Candidate lists: `import_candidates <contest> FILE` reads the KPU's pilkada/paslon/<contest>.json
(all or nothing, each error naming the line of the key it is about), and the open data serves
the list back at the KPU's path and ours, from the snapshot, rebuilt when an import changes it."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from public import snapshots
from public.entries import CANDIDATES
from public.services import snapshot_candidates_rebuild, snapshot_rebuild_all
from public.snapshots import Key
from regions.models import Candidate
from tests.conftest import wait_until
from tests.world import LABANGKA_TPS, move, refresh
from uploads.models import Status
from uploads.services.contests import contest_open

SHORT_CACHE = "public, max-age=5, stale-while-revalidate=30, stale-if-error=600"
# Line by line as the KPU's files are laid out: errors name these lines.
GOOD = """{
  "6409": {
    "1001": {
      "nama": "ANDI - BUDI",
      "nomor_urut": 1,
      "warna": "#1F77B4",
      "ts": "2024-09-23 10:00:00"
    },
    "1002": {
      "nama": "CITRA  -  DEWI",
      "nomor_urut": 2,
      "warna": "#d62728",
      "ts": "2024-09-23T03:00:00Z",
      "foto": "https://example.org/2.jpg"
    }
  }
}
"""
# What the open data says of GOOD: the name's spaces tidied, the time in WIB as the KPU writes
# it, the keys a client of the KPU's file reads and no others.
SERVED = {
    "6409": {
        "1001": {
            "nama": "ANDI - BUDI",
            "nomor_urut": 1,
            "warna": "#1F77B4",
            "ts": "2024-09-23 10:00:00",
        },
        "1002": {
            "nama": "CITRA - DEWI",
            "nomor_urut": 2,
            "warna": "#d62728",
            "ts": "2024-09-23 10:00:00",
        },
    }
}
OTHER = {
    "6409": {
        "1003": {
            "nama": "EKA - FITRI",
            "nomor_urut": 1,
            "warna": "#2CA02C",
            "ts": "2024-09-24 09:00:00",
        }
    }
}


def import_text(tmp_path, text: str | bytes, kind: str = "pkwkk", name: str = "paslon.json"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = StringIO()
    call_command("import_candidates", kind, str(path), stdout=out)
    return out.getvalue().strip()


def listed() -> set[tuple[str, str, int]]:
    return set(Candidate.objects.values_list("area_id", "kpu_id", "number"))


# --- Importing


@pytest.mark.usefixtures("small_world")
def test_an_import_says_what_it_did_and_again_that_nothing_changed(tmp_path):
    assert import_text(tmp_path, GOOD) == "imported pkwkk: 2 candidates in 1 area (replacing 0)"
    assert import_text(tmp_path, GOOD) == "imported pkwkk: 2 candidates in 1 area (unchanged)"
    assert listed() == {("6409", "1001", 1), ("6409", "1002", 2)}


@pytest.mark.usefixtures("small_world")
def test_a_new_file_replaces_the_whole_list_of_the_contest(tmp_path):
    import_text(tmp_path, GOOD)
    import_text(tmp_path, json.dumps({"64": OTHER["6409"]}), kind="pkwkp")
    said = import_text(tmp_path, json.dumps(OTHER))
    assert said == "imported pkwkk: 1 candidate in 1 area (replacing 2)"
    assert listed() == {("6409", "1003", 1), ("64", "1003", 1)}  # pkwkp's list kept


def good_with(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


NAME = "A" * 501
WHOLE = "11: 6409.1002.nomor_urut: expected a whole number from 1 to 32767, got"
COLOUR = '12: 6409.1002.warna: expected a colour like "#1F77B4", got'
TIME = (
    '13: 6409.1002.ts: expected a time like "2024-09-23 10:00:00" (WIB, as the KPU writes it) or '
    "one with its offset, got"
)
TS = '"2024-09-23T03:00:00Z"'
NO_CONTEST = "no {} contest is open over this area; open it first (open_contest)"
NOT_JSON = "invalid JSON:"
AREAS = '1: expected a JSON object of areas: {"<area code>": {"<candidate id>": {...}}}'
NOT_UTF_8 = good_with('"ANDI - BUDI"', '"ANDI #ff - BUDI"').encode().replace(b"#ff", b"\xff")
# (the file, the kind imported, what is wrong at which line of it)
ERRORS = [
    (good_with('"nomor_urut": 2', '"nomor_urut": 0'), "pkwkk", f"{WHOLE} 0"),
    (good_with('"nomor_urut": 2', '"nomor_urut": "2"'), "pkwkk", f'{WHOLE} "2"'),
    (good_with('"nomor_urut": 2', '"nomor_urut": true'), "pkwkk", f"{WHOLE} true"),
    (good_with('"nomor_urut": 2', '"nomor_urut": 1.5'), "pkwkk", f"{WHOLE} 1.5"),
    (good_with('"nomor_urut": 2', '"nomor_urut": 32768'), "pkwkk", f"{WHOLE} 32768"),
    (
        good_with('"nomor_urut": 2', '"nomor_urut": 1'),
        "pkwkk",
        "11: 6409.1002.nomor_urut: 1 is also the number of 1001 (line 5)",
    ),
    (good_with('"#d62728"', '"blue"'), "pkwkk", f'{COLOUR} "blue"'),
    (good_with('"#d62728"', '"#d6272"'), "pkwkk", f'{COLOUR} "#d6272"'),
    (good_with(TS, '"kemarin"'), "pkwkk", f'{TIME} "kemarin"'),
    (good_with(TS, '"2024-13-45 10:00:00"'), "pkwkk", f'{TIME} "2024-13-45 10:00:00"'),
    (good_with(TS, "null"), "pkwkk", f"{TIME} null"),
    (good_with('"CITRA  -  DEWI"', '" "'), "pkwkk", "10: 6409.1002.nama: the name is empty"),
    (
        good_with('"CITRA  -  DEWI"', "42"),
        "pkwkk",
        "10: 6409.1002.nama: expected the name as text, got 42",
    ),
    (
        good_with('"CITRA  -  DEWI"', f'"{NAME}"'),
        "pkwkk",
        "10: 6409.1002.nama: the name is longer than 500 characters",
    ),
    (good_with('      "warna": "#d62728",\n', ""), "pkwkk", "9: 6409.1002: missing warna"),
    (
        good_with('"1002": {', '"10a2": {'),
        "pkwkk",
        "9: 6409.10a2: a candidate's id is digits (at most 20), like 1001084",
    ),
    (
        good_with('"1002": {', '"1001": {'),
        "pkwkk",
        "9: 6409.1001: the same key again (first at line 3)",
    ),
    (
        good_with('"ts": "2024-09-23 10:00:00"', '"ts": "2024-09-23 10:00:00", "ts": "x"'),
        "pkwkk",
        "7: 6409.1001.ts: the same key again (first at line 7)",
    ),
    (
        good_with('"6409": {', '"64x9": {'),
        "pkwkk",
        "2: 64x9: not an area code (2, 4, 6, 10 or 13 digits)",
    ),
    (
        good_with('"6409": {', '"6499": {'),
        "pkwkk",
        "2: 6499: no such area; import the regions first",
    ),
    (good_with('"6409": {', '"64": {'), "pkwkk", f"2: 64: {NO_CONTEST.format('pkwkk')}"),
    (GOOD, "ppwp", f"2: 6409: {NO_CONTEST.format('ppwp')}"),
    (
        '{\n  "6409": {"1001": [1, 2]}\n}',
        "pkwkk",
        "2: 6409.1001: expected an object with nama, nomor_urut, warna and ts",
    ),
    ('{\n  "6409": [1]\n}', "pkwkk", "2: 6409: expected an object of candidates by their id"),
    ('{\n  "6409": {}\n}', "pkwkk", "2: 6409: no candidates"),
    (
        '{\n  "6409": ' + json.dumps(OTHER["6409"]) + ',\n  "6409": {}\n}',
        "pkwkk",
        "3: 6409: the same key again (first at line 2)",
    ),
    (
        '{\n  "6409": {"1001": {}},\n  "6409": {}\n}',
        "pkwkk",
        "2: 6409.1001: missing nama, nomor_urut, warna, ts",
    ),
    (good_with(f"{TS},", f"{TS},,"), "pkwkk", f"13: {NOT_JSON} Expecting value"),
    (good_with('"https://example.org/2.jpg"', '"x",'), "pkwkk", f"15: {NOT_JSON} Expecting value"),
    (
        good_with('"nama": "ANDI - BUDI"', '"nama" "ANDI - BUDI"'),
        "pkwkk",
        f"4: {NOT_JSON} expected ':' after a key",
    ),
    (
        good_with('"nomor_urut": 1,', '"nomor_urut": 1'),
        "pkwkk",
        f"6: {NOT_JSON} expected ',' or '}}'",
    ),
    ("{\n  6409: {}\n}", "pkwkk", f"2: {NOT_JSON} expected a key in double quotes"),
    ("[]", "pkwkk", AREAS),
    ("{}", "pkwkk", "1: no areas in the file"),
    (" \n", "pkwkk", "1: the file is empty"),
    (GOOD + "{}", "pkwkk", "18: text after the object"),
    (NOT_UTF_8, "pkwkk", "4: not UTF-8; save the file as UTF-8"),
]


@pytest.mark.parametrize(("text", "kind", "error"), ERRORS)
@pytest.mark.usefixtures("small_world")
def test_a_bad_file_is_refused_whole_saying_what_is_wrong_at_which_line(
    tmp_path, text, kind, error
):
    import_text(tmp_path, json.dumps(OTHER))
    with pytest.raises(CommandError) as refused:
        import_text(tmp_path, text, kind=kind, name="bad.json")
    assert str(refused.value) == f"{tmp_path / 'bad.json'}:{error} (nothing imported)"
    assert listed() == {("6409", "1003", 1)}


@pytest.mark.usefixtures("small_world")
def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CommandError) as refused:
        call_command("import_candidates", "pkwkk", str(tmp_path / "nothing.json"))
    assert str(refused.value) == f"{tmp_path / 'nothing.json'}: no such file (nothing imported)"


def test_the_demo_has_the_candidates_of_both_its_contests(client, ppu):
    governor = client.get("/api/pilkada/paslon/pkwkp.json").json()
    regent = client.get("/api/pilkada/paslon/pkwkk.json").json()
    assert [candidate["nomor_urut"] for candidate in governor["64"].values()] == [1, 2]
    assert [candidate["nomor_urut"] for candidate in regent["6409"].values()] == [1, 2, 3]
    assert list(governor) == ["64"] and list(regent) == ["6409"]
    out = StringIO()
    call_command("load_demo", stdout=out)
    assert "pkwkk candidates: 3 candidates in 1 area (unchanged)" in out.getvalue()


# --- Serving


@pytest.mark.usefixtures("small_world")
def test_the_list_is_served_as_the_kpus_file_at_its_path_and_ours(client, tmp_path):
    import_text(tmp_path, GOOD)
    ours = client.get("/api/paslon/pkwkk.json")
    kpus = client.get("/api/pilkada/paslon/pkwkk.json")
    assert ours.status_code == kpus.status_code == 200
    assert ours.json() == SERVED
    assert kpus.content == ours.content
    assert ours["Content-Type"] == "application/json"
    assert ours["Cache-Control"] == SHORT_CACHE
    assert ours["Access-Control-Allow-Origin"] == "*"
    again = client.get("/api/paslon/pkwkk.json", headers={"If-None-Match": ours["ETag"]})
    assert again.status_code == 304


@pytest.mark.usefixtures("small_world")
def test_an_open_contest_without_candidates_has_an_empty_list_and_a_closed_one_none(client):
    empty = client.get("/api/pilkada/paslon/pkwkp.json")
    assert empty.status_code == 200
    assert empty.json() == {}
    nowhere = client.get("/api/paslon/ppwp.json")
    assert nowhere.status_code == 404
    assert nowhere.json() == {"error": "no ppwp contest is open over or under the nation"}


@pytest.mark.usefixtures("small_world")
def test_a_pemilu_list_is_served_at_our_path_only_in_the_pilkada_shape(client, tmp_path):
    contest_open(kind="ppwp", region_code="64")
    import_text(tmp_path, GOOD, kind="ppwp")
    assert client.get("/api/paslon/ppwp.json").json() == SERVED
    kpu_path = client.get("/api/pilkada/paslon/ppwp.json")
    assert kpu_path.status_code == 404
    assert kpu_path.json() == {"error": "unknown contest 'ppwp'; one of pkwkk, pkwkp"}


ONE_FILE = "one file per contest"


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/api/paslon/pkwkk", "the path must end in .json"),
        ("/api/paslon/pkwkk/6409.json", f"expected <contest>.json, as in pkwkk.json: {ONE_FILE}"),
        ("/api/pilkada/paslon/pkwkk.csv", "the path must end in .json"),
    ],
)  # fmt: skip
@pytest.mark.usefixtures("small_world")
def test_a_malformed_path_is_a_json_400(client, path, error):
    response = client.get(path)
    assert response.status_code == 400
    assert response.json() == {"error": error}


@pytest.mark.usefixtures("small_world")
def test_the_file_is_built_once_then_read_without_a_query(client, tmp_path):
    import_text(tmp_path, GOOD)
    with CaptureQueriesContext(connection) as queries:
        built = client.get("/api/paslon/pkwkk.json")
    assert len(queries) == 5  # the nation's contests and counts (as its hhcw file), the list
    with CaptureQueriesContext(connection) as queries:
        again = client.get("/api/paslon/pkwkk.json")
    assert len(queries) == 0
    assert again.content == built.content


@pytest.mark.usefixtures("small_world")
def test_the_rebuild_after_an_import_writes_the_file_even_if_nobody_asked_for_it(tmp_path):
    import_text(tmp_path, GOOD)
    key = Key("pkwkk", "", CANDIDATES)
    assert snapshots.entry_read(key) is None
    snapshot_candidates_rebuild("pkwkk")
    assert json.loads(snapshots.entry_read(key).body) == SERVED


@pytest.mark.usefixtures("small_world")
def test_the_refresh_leaves_the_list_alone_and_rebuilding_everything_rebuilds_it(client, tmp_path):
    import_text(tmp_path, GOOD)
    assert client.get("/api/paslon/pkwkk.json").json() == SERVED
    client.get("/api/hhcw/pkwkk.json")
    Candidate.objects.filter(kpu_id="1001").update(name="CHANGED BEHIND THE IMPORT")
    move(LABANGKA_TPS, Status.PUBLISHED)
    with CaptureQueriesContext(connection) as queries:
        refresh()
    assert client.get("/api/hhcw/pkwkk.json").json()["progres"]["progres"] == 1
    assert client.get("/api/paslon/pkwkk.json").json() == SERVED
    assert "regions_candidate" not in " ".join(query["sql"] for query in queries)
    snapshot_rebuild_all()
    renamed = client.get("/api/paslon/pkwkk.json").json()
    assert renamed["6409"]["1001"]["nama"] == "CHANGED BEHIND THE IMPORT"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("small_world")
def test_an_import_changes_the_served_file_within_seconds_through_the_workers(
    client, tmp_path, celery_worker
):
    import_text(tmp_path, GOOD)
    assert client.get("/api/paslon/pkwkk.json").json() == SERVED
    import_text(tmp_path, json.dumps(OTHER))
    wait_until(lambda: client.get("/api/paslon/pkwkk.json").json() == OTHER, timeout=30)
