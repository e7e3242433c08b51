from django.core.management.base import BaseCommand, CommandError

from regions.synthetic import areas_generate


class Command(BaseCommand):
    help = (
        "Generates a synthetic national tree for benchmarks into an empty database: 38 provinsi, "
        "514 kabupaten/kota, 7,277 kecamatan, 83,731 kelurahan/desa (made-up names, KPU-shaped "
        "codes) and --tps TPS spread over the desa. Refuses if any area exists."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tps", type=int, required=True, help="how many TPS, e.g. 823236")
        parser.add_argument("--seed", type=int, default=1, help="same seed, same tree (default 1)")

    def handle(self, *args, tps: int, seed: int, **options):
        try:
            summary = areas_generate(tps=tps, seed=seed)
        except ValueError as error:
            raise CommandError(f"{error} (nothing generated)") from None
        self.stdout.write(f"generated {summary}")
