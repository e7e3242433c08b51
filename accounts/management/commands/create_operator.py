from django.core.management.base import BaseCommand, CommandError

from accounts.importers import operator_problems
from accounts.invitations import invitation_link
from accounts.models import Role
from accounts.services import OperatorRefused, operator_create


class Command(BaseCommand):
    help = (
        "Creates a user with a role and a region, without a password, and prints the one-time "
        "link they set their password with (docs/accounts.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument(
            "--region",
            default="",
            help="the area code they work on: none for an admin or national staff, a provinsi "
            "or kabupaten/kota for staff, a kecamatan for ppk, a TPS for kpps",
        )
        parser.add_argument("--email", default="")

    def handle(self, *args, username: str, role: str, region: str, email: str, **options):
        problems = operator_problems(username=username, role=role, region=region, email=email)
        if problems:
            raise CommandError("; ".join(problems))
        try:
            user = operator_create(username=username, role=role, region_code=region, email=email)
        except OperatorRefused as refused:
            raise CommandError(str(refused)) from refused
        self.stdout.write(f"{user.get_username()} {invitation_link(user=user)}")
