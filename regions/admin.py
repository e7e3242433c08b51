from django.contrib import admin

from regions.models import Area, Candidate, Contest
from sirekap_tracker.admin import ReadOnlyAdmin


@admin.register(Area)
class AreaAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "level", "parent"]
    list_filter = ["level"]
    # "^code": a code prefix search stays an index range scan.
    search_fields = ["^code", "name"]
    raw_id_fields = ["parent"]
    list_select_related = ["parent"]
    # At national scale (900,000 areas) an exact count on every page view is wasted work.
    show_full_result_count = False


@admin.register(Contest)
class ContestAdmin(admin.ModelAdmin):
    list_display = ["kind", "region", "name", "closes_at"]
    list_filter = ["kind"]
    search_fields = ["region__code", "region__name", "name"]
    raw_id_fields = ["region"]
    list_select_related = ["region"]


@admin.register(Candidate)
class CandidateAdmin(ReadOnlyAdmin):
    """To look at: a kind's candidates are replaced whole by `import_candidates`, so that the
    public file of the list (/api/paslon/<contest>.json) follows every change."""

    list_display = ["number", "name", "kpu_id", "area", "contest", "colour", "listed_at"]
    list_filter = ["contest__kind"]
    search_fields = ["^area__code", "name", "kpu_id"]
    list_select_related = ["area", "contest"]
