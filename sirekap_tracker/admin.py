"""What the apps' admin pages share."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows to read, never added, changed or deleted in the admin: something else writes them."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
