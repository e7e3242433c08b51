"""A process of its own making random changes to uploads through the services, for the
concurrency test of tests/test_progress.py: python -m tests.progress_burst --seed 1 --changes 300

It works on the database DATABASE_URL names (the test passes its own) and picks among all the
uploads there, so that several such processes collide on the same rows now and then.
"""

import argparse
import os
import random


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--changes", type=int, required=True)
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sirekap_tracker.settings")
    import django

    django.setup()
    burst(seed=options.seed, changes=options.changes)


def burst(*, seed: int, changes: int) -> None:
    from uploads.models import Status, StuckReason, Upload
    from uploads.services.publication import upload_mark_published
    from uploads.services.stuck import upload_mark_stuck
    from uploads.services.transitions import upload_transition

    rng = random.Random(seed)
    upload_ids = list(Upload.objects.values_list("pk", flat=True))
    for _ in range(changes):
        upload_id = rng.choice(upload_ids)
        roll = rng.random()
        if roll < 0.15:
            upload_mark_stuck(upload_id=upload_id, reason=StuckReason.NETWORK)
        elif roll < 0.25:
            upload_mark_published(upload_id=upload_id, images=["page-1.jpg"])
        else:
            upload_transition(
                upload_id=upload_id,
                expected=tuple(Status.values),
                new=rng.choice(Status.values),
                action="burst",
            )


if __name__ == "__main__":
    main()
