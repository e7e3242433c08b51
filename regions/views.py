from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from regions.models import Area
from regions.selectors import area_breadcrumb, area_children


@require_GET
def area_index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "regions/area.html",
        {"area": None, "breadcrumb": [], "children": area_children(None)},
    )


@require_GET
def area_detail(request: HttpRequest, code: str) -> HttpResponse:
    area = get_object_or_404(Area, code=code)
    context = {"area": area, "breadcrumb": area_breadcrumb(area), "children": area_children(code)}
    return render(request, "regions/area.html", context)
