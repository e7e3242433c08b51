"""What the night is made of: which TPS upload which forms in which order, their KPPS accounts,
the uploads the publication server never accepts, and the staff account the prober logs in with.

Django's modules are imported inside the functions: the replay sets Django up on its throwaway
database first (benchmarks.throwaway).
"""

import math
import random
import secrets
from dataclasses import dataclass
from pathlib import Path

from benchmarks.progress import KINDS

STAFF_USERNAME = "replay-staff"
# Each never-accepted upload's deliveries are answered with these, in turn, far more often than
# it can be tried in a night (at most once per DELIVERY_BACKOFF_CAP_SECONDS once it is stuck).
NEVER_ACCEPTED = [{"status": "drop"}, {"status": 503}]
NEVER_ACCEPTED_ANSWERS = 400


@dataclass(frozen=True)
class Plan:
    uploads: list[tuple[str, str]]  # (TPS code, contest kind), in the order they arrive
    never: list[tuple[str, str]]  # those the publication server never accepts
    tokens: dict[str, str]  # TPS code -> its KPPS account's API token


def plan_make(*, uploads: int, never_rate: float, seed: int) -> Plan:
    """`uploads` uploads from random TPS, each TPS sending its five forms one after the other,
    as a KPPS does after counting; `never_rate` of them are never accepted."""
    from regions.models import Area, Level

    rng = random.Random(seed)
    codes = list(Area.objects.filter(level=Level.TPS).values_list("code", flat=True))
    wanted = min(math.ceil(uploads / len(KINDS)), len(codes))
    chosen = rng.sample(codes, wanted)
    planned = [(tps, kind) for tps in chosen for kind in KINDS][:uploads]
    never = rng.sample(planned, round(len(planned) * never_rate))
    return Plan(planned, never, kpps_accounts_make(sorted(chosen)))


def kpps_accounts_make(tps_codes: list[str]) -> dict[str, str]:
    """One KPPS account per TPS (kpps-<code>, its region the TPS) with an API token, as the
    simulator's (simulator.kpps.kpps_tokens) but in bulk: a national night has tens of
    thousands of them, and making them is not what the replay measures."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from accounts.models import ApiToken, Profile, Role
    from accounts.services import token_hash
    from simulator.kpps import SIMULATOR_USER

    model = get_user_model()
    tokens = {code: secrets.token_urlsafe(32) for code in tps_codes}
    with transaction.atomic():
        users = [model(username=SIMULATOR_USER + code) for code in tps_codes]
        for user in users:
            user.set_unusable_password()
        users = model.objects.bulk_create(users, batch_size=5000)
        pairs = list(zip(users, tps_codes, strict=True))
        Profile.objects.bulk_create(
            [Profile(user=user, role=Role.KPPS, region_id=code) for user, code in pairs],
            batch_size=5000,
        )
        ApiToken.objects.bulk_create(
            [
                ApiToken(user=user, key_hash=token_hash(tokens[code]), prefix=tokens[code][:8])
                for user, code in pairs
            ],
            batch_size=5000,
        )
    return tokens


def staff_make() -> tuple[str, str]:
    """A national KPU staff account with a password, for the prober's dashboard requests."""
    from accounts.services import operator_create

    password = secrets.token_urlsafe(16)
    operator_create(username=STAFF_USERNAME, role="staff", password=password)
    return STAFF_USERNAME, password


def client_address(tps: str) -> str:
    """A phone's address for a TPS (10.x.y.z), passed as nginx would in X-Forwarded-For: the
    intake's per-address limit counts each phone, not the replay's one loopback address."""
    number = int(tps) % (2**24)
    return f"10.{number >> 16}.{(number >> 8) & 255}.{number & 255}"


def plan_write(plan: Plan, path: Path) -> None:
    """The load generator's input (benchmarks.election.load): one upload a line."""
    with path.open("w") as out:
        for tps, kind in plan.uploads:
            out.write(f"{tps}\t{kind}\t{plan.tokens[tps]}\t{client_address(tps)}\n")


def never_accepted_script(client, plan: Plan) -> None:
    """Tells the stand-in to answer every delivery of the never-accepted uploads with a
    dropped connection or a 503, turn about: they retry until flagged stuck, and on."""
    answers = (NEVER_ACCEPTED * NEVER_ACCEPTED_ANSWERS)[:NEVER_ACCEPTED_ANSWERS]
    for tps, kind in plan.never:
        body = {"path": f"/documents/{kind}/{tps}", "responses": answers}
        client.post("/_control/script", json=body).raise_for_status()
