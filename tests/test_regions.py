"""Importing the area hierarchy, opening contests, the PPU demo and the area pages."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from regions import demo
from regions.models import Area, Contest, Level
from uploads.models import Upload

pytestmark = pytest.mark.django_db


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def import_regions(*paths) -> str:
    from io import StringIO

    out = StringIO()
    call_command("import_regions", *map(str, paths), stdout=out)
    return out.getvalue()


SMALL_CSV = """kode,nama
64.09.01.1011.001,TPS 001
64,KALIMANTAN TIMUR
6409,PENAJAM PASER UTARA
640901,PENAJAM
64.09.01.1011,Penajam
6409011011002,TPS 002
"""


def tree() -> list[tuple]:
    return list(Area.objects.order_by("code").values_list("code", "name", "level", "parent_id"))


def test_csv_rows_in_any_order_build_the_tree_with_dotted_and_undotted_codes(tmp_path):
    output = import_regions(write(tmp_path / "areas.csv", SMALL_CSV))
    assert tree() == [
        ("64", "KALIMANTAN TIMUR", 1, None),
        ("6409", "PENAJAM PASER UTARA", 2, "64"),
        ("640901", "PENAJAM", 3, "6409"),
        ("6409011011", "Penajam", 4, "640901"),
        ("6409011011001", "TPS 001", 5, "6409011011"),
        ("6409011011002", "TPS 002", 5, "6409011011"),
    ]
    assert output.strip() == (
        "imported provinsi 1, kabupaten/kota 1, kecamatan 1, kelurahan/desa 1, TPS 2 "
        "(6 new, 0 renamed)"
    )


def test_a_byte_order_mark_is_accepted(tmp_path):
    import_regions(write(tmp_path / "bom.csv", "\ufeff" + SMALL_CSV))
    assert Area.objects.count() == 6


def test_reimporting_is_idempotent_and_updates_names(tmp_path):
    path = write(tmp_path / "areas.csv", SMALL_CSV)
    import_regions(path)
    before = tree()
    assert "(0 new, 0 renamed)" in import_regions(path)
    assert tree() == before
    renamed = write(tmp_path / "renamed.csv", "kode,nama\n640901,PENAJAM KOTA\n")
    assert "(0 new, 1 renamed)" in import_regions(renamed)
    assert Area.objects.get(code="640901").name == "PENAJAM KOTA"
    assert Area.objects.count() == 6


def kpu_json_folder(root: Path) -> Path:
    files = {
        "0.json": [{"nama": "KALIMANTAN TIMUR", "id": 1, "kode": "64", "tingkat": 1}],
        "64.json": [{"nama": "PENAJAM PASER UTARA", "id": 2, "kode": "6409", "tingkat": 2}],
        "64/6409.json": [{"nama": "PENAJAM", "id": 3, "kode": "640901", "tingkat": 3}],
        "64/6409/640901.json": [{"nama": "Penajam", "id": 4, "kode": "6409011011", "tingkat": 4}],
        "64/6409/640901/6409011011.json": [
            {"nama": "TPS 001", "id": 5, "kode": "6409011011001", "tingkat": 5},
            {"nama": "TPS 002", "id": 6, "kode": "6409011011002", "tingkat": 5},
        ],
    }
    for name, entries in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entries, indent=1))
    return root


def test_the_kpu_json_folder_and_the_csv_give_the_same_tree(tmp_path):
    import_regions(write(tmp_path / "areas.csv", SMALL_CSV))
    from_csv = tree()
    for level in reversed(Level):
        Area.objects.filter(level=level).delete()
    import_regions(kpu_json_folder(tmp_path / "wilayah"))
    assert tree() == from_csv


BAD_CSV = [
    ("kode,nama\n64,A\n6409x,B\n", "bad.csv:3: code '6409x' must contain digits only"),
    ("kode,nama\n64,A\n64091,B\n", "bad.csv:3: code '64091' has 5 digits"),
    ("kode,nama\n64,A\n6409012,B\n", "bad.csv:3: code '6409012' has 7 digits, like a BPS code"),
    ("kode,nama\n64,A\n640901,B\n", "bad.csv:3: the parent 6409 of 640901 is neither"),
    ("kode,nama\n64,A\n6409,B\n64,C\n", "bad.csv:4: code 64 is named 'C' here but 'A' at"),
    ("", "bad.csv:1: the file is empty"),
    ("kode,nama\n", "bad.csv:2: the file has a header but no rows"),
    ("code,name\n64,A\n", "bad.csv:1: expected the header 'kode,nama'"),
    ("kode,nama\n64,A,extra\n", "bad.csv:2: expected 2 columns"),
    ("kode,nama\n64,\n", "bad.csv:2: area 64 has no name"),
]


@pytest.mark.parametrize(("content", "message"), BAD_CSV)
def test_one_bad_csv_row_aborts_the_import_and_writes_nothing(tmp_path, content, message):
    good = write(tmp_path / "good.csv", "kode,nama\n99,LUAR NEGERI\n")
    bad = write(tmp_path / "bad.csv", content)
    with pytest.raises(CommandError) as raised:
        import_regions(good, bad)
    assert message in str(raised.value)
    assert str(raised.value).startswith(str(tmp_path))
    assert str(raised.value).endswith("(nothing imported)")
    assert Area.objects.count() == 0


def test_a_non_utf8_file_is_refused_with_its_line(tmp_path):
    bad = write(
        tmp_path / "bad.csv",
        "kode,nama\n64,KALIMANTAN TIMUR\n6409,PENAJAM PASER\xdaUTARA\n",
        "latin-1",
    )
    with pytest.raises(CommandError, match=r"bad.csv:3: not UTF-8"):
        import_regions(bad)
    assert Area.objects.count() == 0


@pytest.mark.parametrize(
    ("file_name", "entries", "message"),
    [
        (
            "64.json",
            [{"nama": "X", "kode": "6409", "tingkat": 3}],
            "64.json:2: tingkat 3 disagrees",
        ),
        (
            "64.json",
            [{"nama": "X", "kode": "6509", "tingkat": 2}],
            "is not a child of the file of 64",
        ),
        ("64.json", [{"kode": "6409"}], "64.json:2: expected an object with 'kode' and 'nama'"),
        ("64.json", [], "64.json:1: the array is empty"),
    ],
)
def test_bad_kpu_json_aborts_the_import(tmp_path, file_name, entries, message):
    folder = kpu_json_folder(tmp_path / "wilayah")
    (folder / file_name).write_text(json.dumps(entries, indent=1))
    with pytest.raises(CommandError, match=message):
        import_regions(folder)
    assert Area.objects.count() == 0


def test_malformed_json_names_its_line(tmp_path):
    folder = kpu_json_folder(tmp_path / "wilayah")
    (folder / "0.json").write_text('[\n{"nama": "KALIMANTAN TIMUR", "kode": "64",\n}\n]')
    with pytest.raises(CommandError, match=r"0.json:\d+: invalid JSON"):
        import_regions(folder)
    assert Area.objects.count() == 0


def load_demo() -> None:
    from io import StringIO

    call_command("load_demo", stdout=StringIO())


def test_the_demo_is_ppu_with_its_real_counts_and_is_idempotent():
    load_demo()
    load_demo()
    counts = {level: Area.objects.filter(level=level).count() for level in Level}
    assert counts == {
        Level.PROVINSI: 1,
        Level.KABUPATEN: 1,
        Level.KECAMATAN: 4,
        Level.DESA: 54,
        Level.TPS: 293,
    }
    per_kecamatan = {
        code: Area.objects.filter(level=Level.TPS, code__startswith=code).count()
        for code in ["640901", "640902", "640903", "640904"]
    }
    assert per_kecamatan == {"640901": 141, "640902": 30, "640903": 61, "640904": 61}
    assert Upload.objects.count() == 586
    assert set(Contest.objects.values_list("kind", "region_id")) == {
        ("pkwkp", "64"),
        ("pkwkk", "6409"),
    }
    assert Area.objects.get(code="6409032002").name == "LABANGKA"


def test_the_proportional_split_adds_up_and_leaves_no_desa_empty():
    babulu = [30, 12, 13, 10, 7, 6, 6, 4, 5, 7, 8, 9]
    split = demo.split_proportionally(61, babulu)
    assert sum(split) == 61
    assert split[0] == 16  # Babulu Darat: 61 * 30 / 117 = 15.6
    assert all(count > 0 for count in split)
    assert demo.split_proportionally(3, [1, 1, 1]) == [1, 1, 1]


def test_opening_a_contest_again_adds_only_the_new_tps(tmp_path):
    load_demo()
    write(tmp_path / "new.csv", "kode,nama\n6409032002901,TPS 901\n")
    import_regions(tmp_path / "new.csv")
    from io import StringIO

    out = StringIO()
    call_command("open_contest", "pkwkk", "--region", "6409", stdout=out)
    assert "1 new expected uploads, 294 in all" in out.getvalue()
    assert Upload.objects.filter(tps_id="6409032002901").count() == 1  # pkwkk only so far


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["pkwkk", "--region", "64"], "pkwkk covers a kabupaten/kota, but 64 is a provinsi"),
        (["pkwkp", "--region", "77"], "no area with code '77'"),
        (["pkwkk", "--region", "6409", "--closes-at", "tomorrow"], "--closes-at: 'tomorrow'"),
    ],
)
def test_open_contest_refuses_what_does_not_fit(arguments, message):
    load_demo()
    with pytest.raises(CommandError, match=message):
        call_command("open_contest", *arguments)


def test_an_area_page_has_its_breadcrumb_and_children_by_code(
    client, django_assert_max_num_queries
):
    load_demo()
    with django_assert_max_num_queries(3):
        response = client.get("/wilayah/640903/")
    assert response.status_code == 200
    crumbs = [crumb.name for crumb in response.context["breadcrumb"]]
    assert crumbs == ["KALIMANTAN TIMUR", "PENAJAM PASER UTARA", "BABULU"]
    children = [child.code for child in response.context["children"]]
    assert children == sorted(children) and len(children) == 12
    assert "BABULU DARAT" in response.text
    assert client.get("/wilayah/6409039999/").status_code == 404
