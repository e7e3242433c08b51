"""Kabupaten Penajam Paser Utara (PPU), Kalimantan Timur, for the demo and the tests.

Codes and names are the real Kemendagri/KPU ones. The Pilkada 2024 TPS count per kecamatan is
real (PENAJAM 141, WARU 30, BABULU 61, SEPAKU 61: 293). The KPU did not publish Pilkada counts
per desa, so the split of each kecamatan's TPS over its desa is ILLUSTRATIVE: proportional to the
real Pemilu 2024 counts per desa (largest remainder).

The candidates (CANDIDATES) are partly ILLUSTRATIVE, see there.
"""

import json

from regions.importers import AreaRow, CandidateRow, parse_candidates
from regions.models import Level

PROVINSI = ("64", "KALIMANTAN TIMUR")
KABUPATEN = ("6409", "PENAJAM PASER UTARA")

# kecamatan code, name, Pilkada 2024 TPS, [(desa suffix, name, Pemilu 2024 TPS), ...]
KECAMATAN = [
    (
        "640901",
        "PENAJAM",
        141,
        [
            ("1001", "Tanjung Tengah", 8),
            ("1002", "Salo Loang", 7),
            ("1003", "Petung", 26),
            ("1004", "Lawe-lawe", 8),
            ("1005", "Pejala", 3),
            ("1006", "Kampung Baru", 2),
            ("1007", "Sesumpu", 3),
            ("1008", "Sungai Parit", 9),
            ("1009", "Nipah-Nipah", 10),
            ("1010", "Nenang", 20),
            ("1011", "Penajam", 36),
            ("1012", "Gunung Seteleng", 18),
            ("1013", "Buluminung", 10),
            ("1014", "Sotek", 16),
            ("1015", "Sepan", 6),
            ("1016", "Riko", 6),
            ("1017", "Gersik", 10),
            ("1018", "Jenebora", 11),
            ("1019", "Pantai Lango", 5),
            ("2020", "Giri Mukti", 20),
            ("2021", "Bukit Subur", 3),
            ("2022", "Sidorejo", 7),
            ("2023", "Giri Purwa", 11),
        ],
    ),
    (
        "640902",
        "WARU",
        30,
        [
            ("1003", "Waru", 24),
            ("2001", "Api-api", 7),
            ("2002", "Sesulu", 10),
            ("2004", "Bangun Mulya", 13),
        ],
    ),
    (
        "640903",
        "BABULU",
        61,
        [
            ("2001", "Babulu Darat", 30),
            ("2002", "Labangka", 12),
            ("2003", "Babulu Laut", 13),
            ("2004", "Gunung Intan", 10),
            ("2005", "Gunung Makmur", 7),
            ("2006", "Sebakung Jaya", 6),
            ("2007", "Rawa Mulia", 6),
            ("2008", "Sri Raharja", 4),
            ("2009", "Sumber Sari", 5),
            ("2010", "Rintik", 7),
            ("2011", "Gunung Mulia", 8),
            ("2012", "Labangka Barat", 9),
        ],
    ),
    (
        "640904",
        "SEPAKU",
        61,
        [
            ("1005", "Sepaku", 6),
            ("1006", "Pemaluan", 5),
            ("1007", "Maridan", 12),
            ("1008", "Mentawir", 2),
            ("2001", "Tengin Baru", 12),
            ("2002", "Bukit Raya", 8),
            ("2003", "Suka Raja", 12),
            ("2004", "Bumi Harapan", 6),
            ("2009", "Argo Mulyo", 9),
            ("2010", "Semoi Dua", 11),
            ("2011", "Suko Mulyo", 6),
            ("2012", "Wono Sari", 4),
            ("2013", "Karang Jinawi", 3),
            ("2014", "Binuang", 6),
            ("2015", "Telemow", 12),
        ],
    ),
]

CONTESTS = [
    ("pkwkp", PROVINSI[0], "Pemilihan Gubernur dan Wakil Gubernur Kalimantan Timur 2024"),
    ("pkwkk", KABUPATEN[0], "Pemilihan Bupati dan Wakil Bupati Penajam Paser Utara 2024"),
]
# The candidates, in the shape of the KPU's pilkada/paslon/<contest>.json. Kalimantan Timur's
# Gubernur 2024 had two pairs and PPU's Bupati 2024 three. The Gubernur pairs' names and ballot
# numbers are as the press reported them; the Bupati pairs' names are ILLUSTRATIVE placeholders,
# and every candidate id, colour and time is ILLUSTRATIVE too (not the KPU's).
CANDIDATES_TS = "2024-09-23 10:00:00"
CANDIDATES = {
    "pkwkp": {
        "64": {
            "1001064": {
                "nama": "ISRAN NOOR - HADI MULYADI",
                "nomor_urut": 1,
                "warna": "#1F77B4",
                "ts": CANDIDATES_TS,
            },
            "1001065": {
                "nama": "RUDY MAS'UD - SENO AJI",
                "nomor_urut": 2,
                "warna": "#D62728",
                "ts": CANDIDATES_TS,
            },
        }
    },
    "pkwkk": {
        "6409": {
            f"10064090{number}": {
                "nama": f"PASANGAN CALON NOMOR URUT {number} (ILUSTRASI)",
                "nomor_urut": number,
                "warna": colour,
                "ts": CANDIDATES_TS,
            }
            for number, colour in [(1, "#2CA02C"), (2, "#FF7F0E"), (3, "#9467BD")]
        }
    },
}
# The seed story: by the next morning, the last three TPS of the kabupaten were in Kecamatan
# Babulu, one each in desa Babulu Darat, Labangka and Sebakung Jaya (poor network). The demo's
# simulator gives one TPS of each a network that keeps failing.
BABULU = "640903"
STUCK_DESA = ("6409032001", "6409032002", "6409032006")
POLLS_CLOSE = "2024-11-27T13:00:00+08:00"  # 13:00 WITA, local time in PPU


def split_proportionally(total: int, weights: list[int]) -> list[int]:
    """Largest-remainder split of total in proportion to weights; the parts add up to total."""
    whole = sum(weights)
    exact = [total * weight / whole for weight in weights]
    parts = [int(share) for share in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - parts[i], reverse=True)
    for index in by_remainder[: total - sum(parts)]:
        parts[index] += 1
    return parts


def rows() -> list[AreaRow]:
    source = "demo:PPU"
    result = [
        AreaRow(PROVINSI[0], PROVINSI[1], Level.PROVINSI, source),
        AreaRow(KABUPATEN[0], KABUPATEN[1], Level.KABUPATEN, source),
    ]
    for code, name, tps_total, villages in KECAMATAN:
        result.append(AreaRow(code, name, Level.KECAMATAN, source))
        counts = split_proportionally(tps_total, [pemilu for _suffix, _name, pemilu in villages])
        for (suffix, village, _pemilu), count in zip(villages, counts, strict=True):
            desa = code + suffix
            result.append(AreaRow(desa, village.upper(), Level.DESA, source))
            result.extend(
                AreaRow(f"{desa}{number:03d}", f"TPS {number:03d}", Level.TPS, source)
                for number in range(1, count + 1)
            )
    return result


def candidate_rows(kind: str) -> list[CandidateRow]:
    """The demo's candidates of a contest kind, read as an import reads the KPU's file."""
    return parse_candidates(json.dumps(CANDIDATES[kind], indent=1), name=f"demo:{kind}")
