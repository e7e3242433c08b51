from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.invitations import invitation_link


class Command(BaseCommand):
    help = (
        "Prints a new one-time link to set a password, for users whose invitation expired or "
        "who forgot their password; any earlier link stops working once one is used."
    )

    def add_arguments(self, parser):
        parser.add_argument("usernames", nargs="+", metavar="USERNAME")

    def handle(self, *args, usernames: list[str], **options):
        users = {
            user.get_username(): user
            for user in get_user_model().objects.filter(username__in=usernames)
        }
        missing = [name for name in usernames if name not in users]
        if missing:
            raise CommandError(f"no user named {', '.join(map(repr, missing))}")
        for name in usernames:
            self.stdout.write(f"{name} {invitation_link(user=users[name])}")
