"""The catalog: which TPS each contest covers, read from the database."""

from collections import defaultdict

from django.db import connection
from django.db.models import Q

from regions.models import Area, Contest
from simulator.publication.kpu_files import ContestTree, lineage, tree_build
from simulator.publication.site import PublicationSite


def catalog_load() -> dict[str, ContestTree]:
    """Every contest kind that has a Contest row, with its tree: two queries. Kinds over the same
    regions (the five of a general election) share one tree."""
    regions = _regions()
    every = set().union(*regions.values())
    # A region under another one is already fetched with it.
    roots = {code for code in every if not any(p in every for p in lineage(code)[1:-1])}
    wanted = Q(code__in={prefix for code in roots for prefix in lineage(code) if prefix})
    for root in roots:
        wanted |= Q(code__startswith=root)
    names = dict(Area.objects.filter(wanted).values_list("code", "name")) if roots else {}
    trees: dict[frozenset, ContestTree] = {}
    for codes in regions.values():
        if frozenset(codes) not in trees:
            trees[frozenset(codes)] = tree_build(codes, names)
    return {kind: trees[frozenset(codes)] for kind, codes in regions.items()}


def catalog_fingerprint() -> tuple:
    """What the catalog is made of, asked cheaply: the contests and how many areas there are.
    At national scale a load reads 900,000 areas, so the periodic refresh asks this first."""
    return tuple(sorted(_regions().items())), Area.objects.count()


def catalog_refresh(site: PublicationSite, *, unless_unchanged: bool = False) -> None:
    """Reloads the contests from the database (with unless_unchanged, only when their
    fingerprint changed); the connection is closed so that an idle server holds none (tests
    drop and flush their databases under it)."""
    try:
        fingerprint = catalog_fingerprint()
        if not (unless_unchanged and fingerprint == site.catalog_fingerprint):
            site.catalog_replace(catalog_load())
            site.catalog_fingerprint = fingerprint
    finally:
        connection.close()


def _regions() -> dict[str, frozenset[str]]:
    regions = defaultdict(set)
    for kind, region in Contest.objects.values_list("kind", "region_id"):
        regions[kind].add(region)
    return {kind: frozenset(codes) for kind, codes in regions.items()}
