import datetime
import os

from django.core.management.base import BaseCommand
from django.db import transaction

from regions import demo
from regions.services import areas_import, candidates_import
from simulator.demo_accounts import demo_accounts_make
from uploads.services.contests import contest_open


class Command(BaseCommand):
    help = (
        "Loads Kabupaten Penajam Paser Utara: its 4 kecamatan, 54 kelurahan/desa and 293 Pilkada "
        "2024 TPS (per-desa split illustrative), with pkwkp and pkwkk opened and their "
        "candidates (partly illustrative). Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--accounts",
            action="store_true",
            help="Also the demo's PPK operator of Babulu and KPU staff of the kabupaten, each "
            "with a new password, printed (make run's plain-HTTP demo only).",
        )

    @transaction.atomic
    def handle(self, *args, accounts=False, **options):
        summary = areas_import(rows=demo.rows())
        self.stdout.write(f"areas: {summary}")
        closes_at = datetime.datetime.fromisoformat(demo.POLLS_CLOSE)
        for kind, region, name in demo.CONTESTS:
            opened = contest_open(kind=kind, region_code=region, name=name, closes_at=closes_at)
            total, new = opened.total_uploads, opened.new_uploads
            self.stdout.write(f"{kind} {region}: {total} expected uploads ({new} new)")
        for kind in demo.CANDIDATES:
            listed = candidates_import(kind=kind, rows=demo.candidate_rows(kind))
            self.stdout.write(f"{kind} candidates: {listed}")
        if accounts:
            self._accounts_print(demo_accounts_make())

    def _accounts_print(self, accounts) -> None:
        login = f"http://127.0.0.1:{os.environ.get('WEB_PORT', '8000')}/masuk/"
        self.stdout.write(f"\nDemo accounts / Akun demo (log in at / masuk di {login}):")
        for account in accounts:
            self.stdout.write(
                f"  {account.username:<12} {account.password:<14} {account.role} {account.region}"
            )
        self.stdout.write("")
