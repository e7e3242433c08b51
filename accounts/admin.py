from django.contrib import admin

from accounts.models import ApiToken, Profile


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "region"]
    search_fields = ["user__username", "^region__code"]
    raw_id_fields = ["region"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "prefix", "created_at", "revoked_at"]
    readonly_fields = ["user", "key_hash", "prefix", "created_at"]
    search_fields = ["user__username", "prefix"]

    def has_add_permission(self, request) -> bool:
        # A key is shown once, when it is made: `manage.py api_token USERNAME` prints it. The
        # admin only lists tokens and revokes them (revoked_at).
        return False
