"""Reads about users: who a token belongs to. (Where a user may act: accounts.scope.)"""

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection

from accounts.models import ApiToken, Profile
from accounts.services import token_hash
from sirekap_tracker import rows


def user_for_token(key: str):
    """The active user a token key belongs to, or None; with the user's profile, so that the
    user's scope (accounts.scope) costs no query of its own.

    Plain SQL (sirekap_tracker.rows): every intake request asks it, and building the ORM's query
    of the token, its user and the profile cost about 1.5 ms of CPU, more than the rest of the
    check (docs/performance.md, "Throughput")."""
    with connection.cursor() as cursor:
        cursor.execute(_token_sql(), [token_hash(key)])
        row = cursor.fetchone()
    if row is None:
        return None
    user, at = rows.built(get_user_model(), row, 0)
    profile, _ = rows.built_if_any(Profile, row, at)
    # As select_related leaves them: a user without a profile has it cached as none.
    get_user_model().profile.related.set_cached_value(user, profile)
    if profile is not None:
        Profile.user.field.set_cached_value(profile, user)
    return user


@cache
def _token_sql() -> str:
    users = get_user_model()
    return f"""
        SELECT {rows.columns(users, "person")}, {rows.columns(Profile, "profile")}
        FROM {ApiToken._meta.db_table} token
        JOIN {users._meta.db_table} person ON person.id = token.user_id
        LEFT JOIN {Profile._meta.db_table} profile ON profile.user_id = person.id
        WHERE token.key_hash = %s AND token.revoked_at IS NULL AND person.is_active
    """
