"""KPU area codes, read the same way everywhere.

A code is a materialized path: provinsi 2 digits, kabupaten/kota 4, kecamatan 6, kelurahan/desa
10, TPS 13 (Kemendagri codes without their dots: `64.09.03.2002` is `6409032002`). An area's
subtree is every code that starts with its own; "" stands for the nation. Levels are numbered
as the KPU's `tingkat`: 1 provinsi ... 5 TPS (regions.models.Level names them).
"""

import itertools
from collections.abc import Sequence

PROVINSI, KABUPATEN, KECAMATAN, DESA, TPS = 1, 2, 3, 4, 5
LENGTHS = (2, 4, 6, 10, 13)
LENGTH = dict(zip((PROVINSI, KABUPATEN, KECAMATAN, DESA, TPS), LENGTHS, strict=True))
LEVEL_OF_LENGTH = {length: level for level, length in LENGTH.items()}
TPS_LENGTH = LENGTH[TPS]
DESA_LENGTH = LENGTH[DESA]
# The length of a code's children's codes, by the length of the code ("" is the nation).
CHILD_LENGTH = dict(zip((0, *LENGTHS), LENGTHS, strict=False))

# The KPU's election families, as its paths name them (pilkada/hhcw/..., wilayah/pemilu/...).
PILKADA_KINDS = frozenset({"pkwkp", "pkwkk"})
PEMILU_KINDS = frozenset({"ppwp", "pdpr", "pdpd", "pdprdp", "pdprdk"})


def is_code(text: str, lengths: Sequence[int] = LENGTHS) -> bool:
    """ASCII digits only, of one of the lengths (by default, any level's)."""
    return text.isascii() and text.isdigit() and len(text) in lengths


def level_of(code: str) -> int:
    """The level of a code (1 provinsi ... 5 TPS); 0 for the nation ("")."""
    return LEVEL_OF_LENGTH.get(len(code), 0)


def lineage(code: str) -> list[str]:
    """The codes from the provinsi down to the code itself ([] for the nation)."""
    return [code[:length] for length in LENGTHS if length <= len(code)]


def parent_code(code: str) -> str:
    """The code one level up; "" (the nation) for a provinsi."""
    above = lineage(code)[:-1]
    return above[-1] if above else ""


def child_code_length(code: str) -> int:
    """The length of the codes one level below ("" is the nation: provinsi codes). ValueError
    for anything but the nation or a provinsi ... desa code."""
    if code and not is_code(code, LENGTHS[:-1]):
        raise ValueError(f"not the nation ('') nor a provinsi ... desa code: {code!r}")
    return CHILD_LENGTH[len(code)]


def is_chain(codes: Sequence[str], deepest: int = TPS) -> bool:
    """Whether codes go down one level at a time from a provinsi, each starting with the one
    before, at most `deepest` levels deep, as the KPU's paths do (64/6409/640903)."""
    return len(codes) <= deepest and all(
        is_code(code, [LENGTHS[depth]]) and code.startswith(codes[depth - 1] if depth else "")
        for depth, code in enumerate(codes)
    )


def parent_code_sql(column: str) -> str:
    """parent_code in SQL, for a column of codes below the provinsi."""
    cases = " ".join(
        f"WHEN {child} THEN left({column}, {parent})"
        for parent, child in itertools.pairwise(LENGTHS)
    )
    return f"CASE length({column}) {cases} END"


def election_of(kind: str) -> str | None:
    """The KPU's path word for a contest kind: "pilkada" or "pemilu" (None: not a kind)."""
    if kind in PILKADA_KINDS:
        return "pilkada"
    return "pemilu" if kind in PEMILU_KINDS else None
