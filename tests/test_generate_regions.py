"""The synthetic national tree that generate_regions writes for benchmarks."""

import re
from collections import defaultdict
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from regions import synthetic
from regions.models import Area, Level

pytestmark = pytest.mark.django_db

NOT_ZERO_2 = r"(0[1-9]|[1-9]\d)"
NOT_ZERO_3 = r"(00[1-9]|0[1-9]\d|[1-9]\d\d)"
CODE_OF_LEVEL = {
    Level.PROVINSI: r"\d{2}",
    Level.KABUPATEN: r"\d{2}" + NOT_ZERO_2,
    Level.KECAMATAN: r"\d{4}" + NOT_ZERO_2,
    Level.DESA: r"\d{6}[12]" + NOT_ZERO_3,  # kelurahan 1001.., desa 2001..
    Level.TPS: r"\d{10}" + NOT_ZERO_3,
}


def generate_regions(*arguments: str) -> str:
    out = StringIO()
    call_command("generate_regions", *arguments, stdout=out)
    return out.getvalue()


def counts_per_level() -> dict[int, int]:
    return {level: Area.objects.filter(level=level).count() for level in Level}


def fingerprint() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT md5(string_agg(concat_ws('|', code, name, level, parent_id), ',' "
            "ORDER BY code)) FROM regions_area"
        )
        return cursor.fetchone()[0]


def test_a_small_run_builds_the_national_upper_tree_and_exactly_the_tps_asked_for():
    output = generate_regions("--tps", "1000", "--seed", "7")
    assert counts_per_level() == {
        Level.PROVINSI: 38,
        Level.KABUPATEN: 514,
        Level.KECAMATAN: 7277,
        Level.DESA: 83731,
        Level.TPS: 1000,
    }
    assert output.strip() == (
        "generated provinsi 38, kabupaten/kota 514, kecamatan 7277, kelurahan/desa 83731, "
        "TPS 1000 (92560 new, 0 renamed)"
    )
    assert set(Area.objects.filter(level=Level.PROVINSI).values_list("code", flat=True)) == set(
        synthetic.PROVINSI_CODES
    )


def test_every_code_has_the_kpu_shape_of_its_level_under_a_parent_that_exists():
    generate_regions("--tps", "1000")
    areas = {
        code: (name, level, parent)
        for code, name, level, parent in Area.objects.values_list(
            "code", "name", "level", "parent_id"
        )
    }
    tps_numbers = defaultdict(list)
    for code, (name, level, parent) in areas.items():
        assert re.fullmatch(CODE_OF_LEVEL[level], code), code
        assert (parent is None) == (level == Level.PROVINSI)
        assert parent is None or (parent in areas and code.startswith(parent))
        if level == Level.KABUPATEN:
            assert name.startswith("KOTA " if int(code[2:]) > 70 else "KABUPATEN "), name
        if level == Level.TPS:
            assert name == f"TPS {code[-3:]}"
            tps_numbers[parent].append(int(code[-3:]))
    assert all(numbers == list(range(1, len(numbers) + 1)) for numbers in tps_numbers.values())


def test_the_same_seed_gives_the_same_tree_and_another_seed_another():
    generate_regions("--tps", "1000", "--seed", "3")
    first = fingerprint()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM regions_area")
    generate_regions("--tps", "1000", "--seed", "3")
    assert fingerprint() == first
    assert synthetic.national_shape(tps=1000, seed=3) != synthetic.national_shape(tps=1000, seed=4)


def test_a_national_run_gives_every_desa_a_tps_and_none_more_than_999():
    shape = synthetic.national_shape(tps=823_236, seed=1)
    assert sum(shape.tps) == 823_236
    assert min(shape.tps) >= 1
    assert max(shape.tps) <= 999
    largest = synthetic.national_shape(tps=synthetic.MAX_TPS, seed=1)
    assert set(largest.tps) == {999}


@pytest.mark.parametrize("tps", ["0", "-5", str(999 * 83731 + 1)])
def test_a_tps_count_outside_what_the_codes_hold_is_refused(tps):
    with pytest.raises(
        CommandError, match=r"the number of TPS must be between 1 and 83647269 .*, got "
    ):
        generate_regions("--tps", tps)
    assert not Area.objects.exists()


def test_generating_into_a_database_that_has_areas_is_refused_and_changes_nothing():
    call_command("load_demo", stdout=StringIO())
    before = fingerprint()
    with pytest.raises(CommandError, match=r"already has 353 areas; .* fresh database"):
        generate_regions("--tps", "1000")
    assert fingerprint() == before
