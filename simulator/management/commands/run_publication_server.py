import argparse

from django.core.management.base import BaseCommand
from django.db import connection

from simulator.publication.catalog import catalog_fingerprint, catalog_load
from simulator.publication.server import serve
from simulator.publication.site import PublicationSite, SiteConfig


def probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability from 0 to 1, got {text}")
    return value


def not_negative(convert):
    def parse(text: str):
        value = convert(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"expected 0 or more, got {text}")
        return value

    return parse


class Command(BaseCommand):
    help = (
        "Runs a stand-in for the KPU's publication server and its public JSON site over HTTP "
        "(see docs/publication-server.md). Prints `listening on http://HOST:PORT`; SIGTERM or "
        "SIGINT stops it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--fail-rate", type=probability, default=0.0)
        parser.add_argument("--latency-ms", type=not_negative(int), default=0)
        parser.add_argument("--publish-delay-s", type=not_negative(float), default=0.0)
        parser.add_argument("--reject-rate", type=probability, default=0.0)
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, **options):
        config = SiteConfig(
            fail_rate=options["fail_rate"],
            reject_rate=options["reject_rate"],
            latency_ms=options["latency_ms"],
            publish_delay_s=options["publish_delay_s"],
            seed=options["seed"],
        )
        contests, fingerprint = catalog_load(), catalog_fingerprint()
        connection.close()
        site = PublicationSite(config, contests)
        site.catalog_fingerprint = fingerprint
        serve(site, options["host"], options["port"], self.announce)

    def announce(self, url: str) -> None:
        self.stdout.write(f"listening on {url}")
        self.stdout.flush()
