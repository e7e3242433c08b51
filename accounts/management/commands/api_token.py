from django.core.management.base import BaseCommand, CommandError

from accounts.services import api_token_create


class Command(BaseCommand):
    help = "Creates an API token for an existing user and prints it (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        try:
            key = api_token_create(username=username)
        except ValueError as error:
            raise CommandError(error) from error
        self.stdout.write(key)
