"""Areas from provinsi down to TPS, keyed by KPU code, and the contests held over them.

The KPU code is a materialized path (2/4/6/10/13 digits): an area's subtree is every code that
starts with its code. The code column uses the C collation so that `LIKE '6409%'` is an index
range scan at national scale; no tree machinery is needed for a fixed-depth hierarchy.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from regions import codes


class Level(models.IntegerChoices):
    PROVINSI = 1, _("Province")
    KABUPATEN = 2, _("Regency/city")
    KECAMATAN = 3, _("District")
    DESA = 4, _("Village")
    TPS = 5, _("Polling station")


# The KPU's own words for the levels, used as they are in both languages (logs, summaries).
LEVEL_WORD = {1: "provinsi", 2: "kabupaten/kota", 3: "kecamatan", 4: "kelurahan/desa", 5: "TPS"}


# What an area is called before its name, by what it is: a kabupaten or a kota (kota codes are
# 71 and up within their provinsi), a kelurahan or a desa (the desa part starts with 1 or 2).
# English puts the word after the name, as the press does ("Penajam Paser Utara Regency").
TITLES = {
    "provinsi": _("%(name)s Province"),
    "kabupaten": _("%(name)s Regency"),
    "kota": _("%(name)s City"),
    "kecamatan": _("%(name)s District"),
    "kelurahan": _("%(name)s Urban Village"),
    "desa": _("%(name)s Village"),
    "tps": "%(name)s",
}


def area_kind(code: str) -> str:
    """What the area of a KPU code is, in the KPU's word: provinsi, kabupaten, kota, kecamatan,
    kelurahan, desa or tps."""
    level = codes.level_of(code)
    if level == Level.KABUPATEN:
        return "kota" if code[2:4] >= "71" else "kabupaten"
    if level == Level.DESA:
        return "kelurahan" if code[6] == "1" else "desa"
    return ("provinsi", "", "kecamatan", "", "tps")[level - 1]


class Area(models.Model):
    code = models.CharField(_("code"), primary_key=True, max_length=13, db_collation="C")
    name = models.CharField(_("name"), max_length=200)
    level = models.PositiveSmallIntegerField(_("level"), choices=Level.choices)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )

    class Meta:
        verbose_name = _("area")
        verbose_name_plural = _("areas")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    code__regex=r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{10}|[0-9]{13})$"
                ),
                name="area_code_is_a_kpu_code",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def title(self) -> str:
        """The heading of its page, by what it is: "Kabupaten PENAJAM PASER UTARA". A name that
        already says it ("KOTA BALIKPAPAN") stands alone."""
        kind = area_kind(self.code)
        if self.name.lower().startswith(f"{kind} "):
            return self.name
        return str(TITLES[kind]) % {"name": self.name}


class ContestKind(models.TextChoices):
    PKWKP = "pkwkp", _("Governor")
    PKWKK = "pkwkk", _("Regent/Mayor")
    PPWP = "ppwp", _("President")
    PDPR = "pdpr", _("DPR")
    PDPD = "pdpd", _("DPD")
    PDPRDP = "pdprdp", _("Provincial DPRD")
    PDPRDK = "pdprdk", _("Regency/city DPRD")


# The level a Pilkada contest covers; the Pemilu ones may be opened over any area.
CONTEST_LEVEL = {ContestKind.PKWKP: Level.PROVINSI, ContestKind.PKWKK: Level.KABUPATEN}


class Contest(models.Model):
    kind = models.CharField(_("contest"), max_length=6, choices=ContestKind.choices)
    region = models.ForeignKey(
        Area, verbose_name=_("region"), on_delete=models.PROTECT, related_name="contests"
    )
    name = models.CharField(_("name"), max_length=200)
    closes_at = models.DateTimeField(_("polls close"), null=True, blank=True)

    class Meta:
        verbose_name = _("contest")
        verbose_name_plural = _("contests")
        ordering = ["kind", "region_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "region"], name="one_contest_per_kind_and_region"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.region_id} {self.name}"


class Candidate(models.Model):
    """One candidate (for a Pilkada, a pair: "pasangan calon", paslon) on the ballot of a contest
    in an area, as the KPU lists them (pilkada/paslon/<contest>.json, docs/regions.md): imported
    whole for a contest kind (regions.services.candidates_import), never edited one by one."""

    contest = models.ForeignKey(
        Contest, verbose_name=_("contest"), on_delete=models.CASCADE, related_name="candidates"
    )
    # The contest's region or an area under it: the key of the KPU's file.
    area = models.ForeignKey(
        Area, verbose_name=_("area"), on_delete=models.PROTECT, related_name="+"
    )
    # The KPU's id of the candidate, digits (its files key vote counts by it).
    kpu_id = models.CharField(_("KPU id"), max_length=20)
    name = models.CharField(_("name"), max_length=500)
    number = models.PositiveSmallIntegerField(_("ballot number"))
    colour = models.CharField(_("colour"), max_length=7)
    # `ts` of the KPU's file: when the KPU last changed the entry.
    listed_at = models.DateTimeField(_("listed at"))

    class Meta:
        verbose_name = _("candidate")
        verbose_name_plural = _("candidates")
        ordering = ["contest", "area", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["contest", "area", "number"], name="one_candidate_per_ballot_number"
            ),
            models.UniqueConstraint(
                fields=["contest", "area", "kpu_id"], name="one_candidate_per_kpu_id"
            ),
            models.CheckConstraint(
                condition=models.Q(number__gte=1), name="candidate_number_is_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number}. {self.name}"
