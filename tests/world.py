"""The shared world of the tests: the PPU demo (tests/conftest.py `ppu`), the places in it that
tests name, moves in it, and reading a page as a person does."""

import re

from accounts.services import operator_create
from public.services import snapshot_refresh_all
from regions.models import Area, Level
from uploads.models import Status, Upload
from uploads.services.transitions import upload_transition

# Kabupaten Penajam Paser Utara and the places of the seed story (regions/demo.py).
PPU = "6409"
PENAJAM = "640901"  # a kecamatan that ends complete
BABULU = "640903"  # the kecamatan of the last three TPS
SEPAKU = "640904"  # another kecamatan of PPU
LABANGKA = "6409032002"  # a desa of Babulu
LABANGKA_TPS = "6409032002001"
SEPAKU_TPS = "6409041005001"  # TPS 001 of Sepaku, the desa


def person(username: str, role: str, region: str = "", password: str | None = None):
    """A user of a role and region, as create_operator makes them (region "" is the nation)."""
    return operator_create(username=username, role=role, region_code=region, password=password)


def move(tps: str, new: str, kind: str = "pkwkk") -> None:
    """Puts a TPS's upload of the contest in a status, from whatever status it is in."""
    upload = Upload.objects.get(tps_id=tps, contest__kind=kind)
    upload_transition(upload_id=upload.pk, expected=tuple(Status.values), new=new, action="test")


def publish_all_but(*left: str, kind: str = "pkwkk") -> None:
    """Publishes every TPS of the contest except `left`, as the night would."""
    for upload in Upload.objects.filter(contest__kind=kind).exclude(tps_id__in=left):
        move(upload.tps_id, Status.PUBLISHED, kind)


def babulu_tps(count: int) -> list[str]:
    """The first `count` TPS codes of Kecamatan Babulu."""
    rows = Area.objects.filter(level=Level.TPS, code__startswith=BABULU).order_by("code")
    return list(rows.values_list("code", flat=True)[:count])


def text(response) -> str:
    """The page as a person reads it: tags gone, white space collapsed."""
    return text_of(response.content.decode())


def text_of(html: str) -> str:
    """HTML as a person reads it: tags gone, white space collapsed."""
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def refresh() -> None:
    """What the workers do every few seconds: rebuild the public snapshot's entries of what
    changed (public.services.snapshot_refresh), all of it, for each contest kind."""
    refreshed = snapshot_refresh_all(budget_seconds=float("inf"))
    assert None not in refreshed.values(), refreshed


def log_in(client, user) -> None:
    """Logs a user in with their second factor given, as the login page would: an admin owes
    one (accounts.two_factor), so they get a confirmed TOTP device if they have none."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.two_factor import second_factor_owed, totp_device_of

    client.force_login(user)
    if second_factor_owed(user):
        device = totp_device_of(user) or TOTPDevice.objects.create(
            user=user, name="test", confirmed=True
        )
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
