"""Writes to accounts: API tokens."""

import hashlib
import secrets

from django.contrib.auth import get_user_model

from accounts.models import ApiToken


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, username: str) -> str:
    """Creates a token for an existing user and returns its key, which is shown only once."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValueError(f"no user named {username!r}; create it first (manage.py createsuperuser)")
    key = secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, key_hash=token_hash(key), prefix=key[:8])
    return key
