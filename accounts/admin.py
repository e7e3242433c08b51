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
