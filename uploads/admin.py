"""Read-friendly admin. Statuses change only through the services, so they are read-only here,
and nothing of an upload's history (uploads, documents, events) can be added or deleted. Each
list holds the rows of the user's region only (accounts.scope). Times are shown in the zone of
the upload's area (WIB, WITA or WIT), as on every other page."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from regions.zones import in_zone_text, zone_of_area
from uploads.models import (
    Document,
    Page,
    PublicAreaProgress,
    TusDocument,
    TusUpload,
    Upload,
    UploadEvent,
)


def _in_area_zone(moment, area_code: str) -> str:
    return in_zone_text(moment, zone_of_area(area_code)) or "\N{EN DASH}"


class _History(admin.ModelAdmin):
    """An admin of rows in areas: the user's region only, never added or deleted here."""

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)  # type: ignore[attr-defined]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class EventInline(admin.TabularInline):
    model = UploadEvent
    extra = 0
    can_delete = False
    readonly_fields = (
        "time", "action", "old_status", "new_status", "actor", "actor_role", "ip", "source",
        "reason",
    )  # fmt: skip
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("time"))
    def time(self, event: UploadEvent) -> str:
        return _in_area_zone(event.created_at, event.upload.tps_id)


@admin.register(Upload)
class UploadAdmin(_History):
    list_display = ["tps", "contest", "status", "stuck", "stuck_reason", "attempts", "since"]
    list_filter = ["status", "stuck", "contest__kind"]
    search_fields = ["^tps__code", "tps__name"]
    show_full_result_count = False
    list_select_related = ["tps", "contest"]
    inlines = [EventInline]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Upload._meta.fields]

    @admin.display(description=_("status since"), ordering="status_since")
    def since(self, upload: Upload) -> str:
        return _in_area_zone(upload.status_since, upload.tps_id)


class PageInline(admin.TabularInline):
    model = Page
    extra = 0
    can_delete = False
    readonly_fields = ["number", "file", "sha256", "size", "content_type", "original_sha256"]


@admin.register(Document)
class DocumentAdmin(_History):
    list_display = ["upload", "sha256", "source", "uploaded_by", "uploaded_at"]
    search_fields = ["sha256", "^upload__tps__code"]
    readonly_fields = [
        "upload",
        "sha256",
        "source",
        "uploaded_by",
        "idempotency_key",
        "uploaded_at",
    ]
    inlines = [PageInline]
    list_select_related = ["upload", "uploaded_by"]

    @admin.display(description=_("uploaded at"), ordering="created_at")
    def uploaded_at(self, document: Document) -> str:
        return _in_area_zone(document.created_at, document.upload.tps_id)


@admin.register(PublicAreaProgress)
class PublicAreaProgressAdmin(admin.ModelAdmin):
    list_display = ["kind", "area_code", "published", "total", "site_ts", "fetched"]
    list_filter = ["kind"]
    search_fields = ["^area_code"]

    @admin.display(description=_("fetched at"), ordering="fetched_at")
    def fetched(self, figure: PublicAreaProgress) -> str:
        return _in_area_zone(figure.fetched_at, figure.area_code)


class TusUploadInline(admin.TabularInline):
    model = TusUpload
    extra = 0
    can_delete = False
    readonly_fields = (
        "id", "page", "filename", "state", "offset", "length", "received", "original_sha256",
    )  # fmt: skip
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TusDocument)
class TusDocumentAdmin(_History):
    """Documents on their way in over tus (docs/uploads.md): which pages arrived, and what became
    of the document, for whoever helps a KPPS whose phone says it is stuck."""

    list_display = ["key", "upload", "owner", "pages", "taken_at", "refusal_status", "expires"]
    search_fields = ["key", "^upload__tps__code", "owner__username"]
    list_select_related = ["upload", "owner"]
    inlines = [TusUploadInline]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in TusDocument._meta.fields]

    @admin.display(description=_("expires at"), ordering="expires_at")
    def expires(self, tus_document: TusDocument) -> str:
        return _in_area_zone(tus_document.expires_at, tus_document.upload.tps_id)
