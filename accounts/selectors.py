"""Reads about users: who a token belongs to, and where a user may act."""

from accounts.models import ApiToken, Profile
from accounts.services import token_hash


def user_for_token(key: str):
    """The active user a token key belongs to, or None."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=token_hash(key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    return token.user if token else None


def user_may_act_on(user, area_code: str) -> bool:
    """Staff act everywhere; others under the region on their profile (area codes are paths)."""
    if user.is_staff:
        return True
    region = Profile.objects.filter(user=user).values_list("region_id", flat=True).first()
    return bool(region) and area_code.startswith(str(region))
