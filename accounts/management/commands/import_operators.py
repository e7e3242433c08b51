from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.importers import OperatorImportError, operator_rows_read
from accounts.invitations import invitation_link
from accounts.services import OperatorRefused, operators_create


class Command(BaseCommand):
    help = (
        "Creates the users of a CSV file (header username,role,region,email), all or none, and "
        "prints each one's one-time link to set their password (docs/accounts.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options):
        try:
            rows = operator_rows_read(file)
        except OperatorImportError as refused:
            for problem in refused.problems:
                self.stderr.write(problem)
            raise CommandError(
                f"{len(refused.problems)} problem(s) in {file}: nothing was written"
            ) from refused
        try:
            users = operators_create(operators=rows)
        except OperatorRefused as refused:
            raise CommandError(f"{refused}: nothing was written") from refused
        for user in users:
            self.stdout.write(f"{user.get_username()} {invitation_link(user=user)}")
