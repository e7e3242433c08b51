import datetime

from django.core.management.base import BaseCommand
from django.db import transaction

from regions import demo
from regions.services import areas_import
from uploads.services.contests import contest_open


class Command(BaseCommand):
    help = (
        "Loads Kabupaten Penajam Paser Utara: its 4 kecamatan, 54 kelurahan/desa and 293 Pilkada "
        "2024 TPS (per-desa split illustrative), with pkwkp and pkwkk opened. Idempotent."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        summary = areas_import(rows=demo.rows())
        self.stdout.write(f"areas: {summary}")
        closes_at = datetime.datetime.fromisoformat(demo.POLLS_CLOSE)
        for kind, region, name in demo.CONTESTS:
            opened = contest_open(kind=kind, region_code=region, name=name, closes_at=closes_at)
            total, new = opened.total_uploads, opened.new_uploads
            self.stdout.write(f"{kind} {region}: {total} expected uploads ({new} new)")
