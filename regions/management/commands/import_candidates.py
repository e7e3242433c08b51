from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from regions.importers import CandidateImportError, read_candidates
from regions.models import ContestKind
from regions.services import candidates_import


class Command(BaseCommand):
    help = (
        "Imports the candidates of a contest kind from a file in the KPU's shape "
        '(pilkada/paslon/<contest>.json: {"<area code>": {"<candidate id>": {"nama", '
        '"nomor_urut", "warna", "ts"}}}). All or nothing; the file replaces the list.'
    )

    def add_arguments(self, parser):
        parser.add_argument("contest", choices=ContestKind.values)
        parser.add_argument("file", type=Path, help="e.g. paslon/pkwkk.json")

    def handle(self, *args, contest: str, file: Path, **options):
        try:
            summary = candidates_import(kind=contest, rows=read_candidates(file))
        except CandidateImportError as error:
            raise CommandError(f"{error} (nothing imported)") from None
        self.stdout.write(f"imported {contest}: {summary}")
