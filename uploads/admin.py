"""Read-friendly admin. Statuses change only through the services, so they are read-only here."""

from django.contrib import admin

from uploads.models import Document, Page, PublicAreaProgress, Upload, UploadEvent


class EventInline(admin.TabularInline):
    model = UploadEvent
    extra = 0
    can_delete = False
    readonly_fields = [
        "created_at",
        "action",
        "old_status",
        "new_status",
        "actor",
        "source",
        "reason",
    ]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ["tps", "contest", "status", "stuck", "stuck_reason", "attempts", "status_since"]
    list_filter = ["status", "stuck", "contest__kind"]
    search_fields = ["^tps__code", "tps__name"]
    show_full_result_count = False
    list_select_related = ["tps", "contest"]
    inlines = [EventInline]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Upload._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


class PageInline(admin.TabularInline):
    model = Page
    extra = 0
    can_delete = False
    readonly_fields = ["number", "file", "sha256", "size", "content_type"]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["upload", "sha256", "source", "uploaded_by", "created_at"]
    search_fields = ["sha256", "^upload__tps__code"]
    readonly_fields = ["upload", "sha256", "source", "uploaded_by", "idempotency_key", "created_at"]
    inlines = [PageInline]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(PublicAreaProgress)
class PublicAreaProgressAdmin(admin.ModelAdmin):
    list_display = ["kind", "area_code", "progres", "total", "site_ts", "fetched_at"]
    list_filter = ["kind"]
    search_fields = ["^area_code"]
