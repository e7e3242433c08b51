"""The password login's backend (settings.AUTHENTICATION_BACKENDS, after django-axes's)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class UserWithProfileBackend(ModelBackend):
    """Django's ModelBackend, whose session user comes with their profile in the same statement:
    every staff request asks for the user's role and region (accounts.scope) right after, and on
    a full machine each statement of a request waits its turn in PostgreSQL (docs/performance.md,
    "Fewer round trips per request")."""

    def get_user(self, user_id):
        users = get_user_model()._default_manager
        try:
            user = users.select_related("profile").get(pk=user_id)
        except users.model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
