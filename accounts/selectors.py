"""Reads about users: who a token belongs to. (Where a user may act: accounts.scope.)"""

from accounts.models import ApiToken
from accounts.services import token_hash


def user_for_token(key: str):
    """The active user a token key belongs to, or None."""
    token = (
        # The profile with it: the user's scope (accounts.scope) then costs no query of its own.
        ApiToken.objects.select_related("user__profile")
        .filter(key_hash=token_hash(key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    return token.user if token else None
