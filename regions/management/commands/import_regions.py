from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from regions.importers import RegionImportError, read_paths
from regions.services import areas_import


class Command(BaseCommand):
    help = (
        "Imports areas from CSV files (header kode,nama; dotted or undotted KPU codes) and/or "
        "folders of the KPU's region-list JSON. All or nothing; re-importing is idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path, help="CSV files or JSON folders")

    def handle(self, *args, paths: list[Path], **options):
        try:
            summary = areas_import(rows=read_paths(paths))
        except RegionImportError as error:
            raise CommandError(f"{error} (nothing imported)") from None
        self.stdout.write(f"imported {summary}")
