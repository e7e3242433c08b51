"""The catalog: which TPS each contest covers, read from the database."""

from collections import defaultdict

from django.db import connection
from django.db.models import Q

from regions.models import Area, Contest
from simulator.publication.kpu_files import ContestTree, lineage, tree_build
from simulator.publication.site import PublicationSite


def catalog_load() -> dict[str, ContestTree]:
    """Every contest kind that has a Contest row, with its tree: two queries."""
    regions = defaultdict(set)
    for kind, region in Contest.objects.values_list("kind", "region_id"):
        regions[kind].add(region)
    every = set().union(*regions.values())
    # A region under another one is already fetched with it.
    roots = {code for code in every if not any(p in every for p in lineage(code)[1:-1])}
    wanted = Q(code__in={prefix for code in roots for prefix in lineage(code) if prefix})
    for root in roots:
        wanted |= Q(code__startswith=root)
    names = dict(Area.objects.filter(wanted).values_list("code", "name")) if roots else {}
    return {kind: tree_build(codes, names) for kind, codes in regions.items()}


def catalog_refresh(site: PublicationSite) -> None:
    """Reloads the contests from the database; the connection is closed so that an idle server
    holds none (tests drop and flush their databases under it)."""
    try:
        site.catalog_replace(catalog_load())
    finally:
        connection.close()
