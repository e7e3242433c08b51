"""Accounts: operators made by command with a one-time invitation link, the set-password page and
its validators, login throttling by (username, address), idle and 12-hour sessions, the second
factor (TOTP) owed by admins, access events for logins, and the admin's users by scope."""

import re
from datetime import UTC, datetime, timedelta
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AccessEvent, AccessKind, Role
from accounts.scope import Scope, scope_of, users_managed_by
from regions import codes
from regions.importers import AreaRow
from regions.services import areas_import
from tests.world import log_in, person, text

pytestmark = pytest.mark.usefixtures("small_world")

User = get_user_model()
PASSWORD = "kalimantan-timur-2024"
OFFICE = "36.80.1.9"  # one kecamatan office's NAT address
ELSEWHERE = "114.4.2.7"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """MD5 instead of the default hasher's second per password: logins are what is tested."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def paser():
    """Kabupaten Paser beside PPU (6408), with a kecamatan: beside the PPU staff, not below."""
    rows = [("6408", "PASER"), ("640801", "BATU SOPANG")]
    areas_import(rows=[AreaRow(code, name, codes.level_of(code), "test") for code, name in rows])


def with_password(user, password: str = PASSWORD):
    user.set_password(password)
    user.save()
    return user


def log_in_by_form(client, username: str, password: str = PASSWORD, ip: str = OFFICE, path="/en/"):
    """The login page as a browser posts it, from an address (through our proxy)."""
    return client.post(
        f"{path}masuk/",
        {"username": username, "password": password},
        headers={"X-Forwarded-For": ip},
    )


def code_now(device: TOTPDevice) -> str:
    """What the user's authenticator app shows at this moment."""
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def events(kind: str) -> list[AccessEvent]:
    return list(AccessEvent.objects.filter(kind=kind).order_by("id"))


# --- Operators and invitations


def create_operator(*args: str) -> tuple[str, str]:
    out = StringIO()
    call_command("create_operator", *args, stdout=out)
    username, link = out.getvalue().split()
    return username, link


def test_create_operator_prints_a_link_that_sets_a_password_once(client):
    username, link = create_operator(
        "siti", "--role", "ppk", "--region", "640903", "--email", "siti@example.test"
    )
    assert username == "siti"
    assert re.fullmatch(r"http://127\.0\.0\.1:8000/atur-sandi/[\w-]+/[\w-]+/", link)
    siti = User.objects.get(username="siti")
    assert not siti.has_usable_password()
    assert scope_of(siti) == Scope(role=Role.PPK, region="640903")
    assert not siti.is_staff

    path = "/en" + urlsplit(link).path
    opened = client.get(path)
    assert opened.status_code == 302  # the token leaves the address bar (and any Referer)
    form = client.get(opened["Location"])
    assert "Choose the password you will log in with as siti" in text(form)
    new = {"new_password1": PASSWORD, "new_password2": PASSWORD}
    done = client.post(opened["Location"], new)
    assert done.status_code == 302 and done["Location"] == "/en/masuk/"
    assert "Your password is set" in text(client.get(done["Location"]))
    assert User.objects.get(username="siti").check_password(PASSWORD)

    again = client.get(path)
    assert again.status_code == 200
    assert "This link no longer works: it was already used, or it expired." in text(again)
    assert "for a new invitation link" in text(again)
    assert log_in_by_form(Client(), "siti").status_code == 302


def test_an_invitation_opens_in_indonesian_by_default_and_expires(client, settings):
    _, link = create_operator("budi", "--role", "kpps", "--region", "6409032002001")
    opened = client.get(urlsplit(link).path)
    assert opened["Location"].startswith("/atur-sandi/")
    assert '<html lang="id">' in client.get(opened["Location"]).text
    settings.PASSWORD_RESET_TIMEOUT = -1  # every link made before now has expired
    expired = Client().get("/en" + urlsplit(link).path)
    assert "This link no longer works" in text(expired)


def test_the_password_1_is_refused_on_the_set_password_page(client):
    _, link = create_operator("siti", "--role", "ppk", "--region", "640903")
    opened = client.get("/en" + urlsplit(link).path)
    refused = client.post(opened["Location"], {"new_password1": "1", "new_password2": "1"})
    assert refused.status_code == 200
    page = text(refused)
    assert "This password is too short. It must contain at least 10 characters." in page
    assert "This password is entirely numeric." in page
    common = client.post(
        opened["Location"], {"new_password1": "password123", "new_password2": "password123"}
    )
    assert "This password is too common." in text(common)
    assert not User.objects.get(username="siti").has_usable_password()


def test_create_operator_refuses_a_region_that_does_not_fit_the_role():
    with pytest.raises(CommandError, match="region: a ppk works on a kecamatan, got '6409'"):
        create_operator("siti", "--role", "ppk", "--region", "6409")
    with pytest.raises(CommandError, match="username: 'si ti' may only have"):
        create_operator("si ti", "--role", "kpps", "--region", "6409032002001")
    assert not User.objects.exists()


def test_invite_operator_prints_a_new_link_that_ends_the_old_one(client):
    _, first = create_operator("siti", "--role", "ppk", "--region", "640903")
    out = StringIO()
    call_command("invite_operator", "siti", stdout=out)
    username, second = out.getvalue().split()
    assert username == "siti"
    opened = client.get("/en" + urlsplit(second).path)
    client.post(opened["Location"], {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert "This link no longer works" in text(Client().get("/en" + urlsplit(first).path))


def write_csv(tmp_path, text: str, name: str = "operators.csv", bom: bool = False):
    path = tmp_path / name
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


def test_import_operators_with_one_bad_row_writes_nothing_and_names_file_and_line(tmp_path):
    path = write_csv(
        tmp_path,
        "username,role,region,email\n"
        "siti,ppk,640903,siti@example.test\n"
        "andi,ppk,6409,\n"
        "budi,kpps,6409032002001,\n",
    )
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was written"):
        call_command("import_operators", str(path), stdout=StringIO(), stderr=err)
    assert err.getvalue().splitlines() == [
        f"{path}:3: region: a ppk works on a kecamatan, got '6409'"
    ]
    assert not User.objects.exists()


def test_import_operators_reports_every_bad_row_and_duplicates_in_the_file_or_database(tmp_path):
    person("andi", "ppk", "640901")
    path = write_csv(
        tmp_path,
        "username,role,region,email\n"
        "siti,ppk,640903,\n"
        "andi,ppk,640903,\n"
        "siti,kpps,6409032002001,\n"
        "rudi,boss,640903,rudi@\n"
        "tono,kpps\n",
    )
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_operators", str(path), stdout=StringIO(), stderr=err)
    assert err.getvalue().splitlines() == [
        f"{path}:3: username: 'andi' is taken",
        f"{path}:4: username: 'siti' is also on line 2",
        f"{path}:5: role: 'boss' is not one of admin, staff, ppk, kpps",
        f"{path}:5: email: 'rudi@' is not an email address",
        f"{path}:6: row: expected 4 fields, got 2",
    ]
    assert list(User.objects.values_list("username", flat=True)) == ["andi"]


def test_import_operators_refuses_another_header(tmp_path):
    path = write_csv(tmp_path, "user,role,region\nsiti,ppk,640903\n")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_operators", str(path), stdout=StringIO(), stderr=err)
    expected = "'username,role,region,email', got 'user,role,region'"
    assert err.getvalue().strip() == f"{path}:1: header: expected {expected}"


def test_import_operators_takes_a_bom_and_crlf_and_prints_a_link_for_each(tmp_path, client):
    path = write_csv(
        tmp_path,
        "username,role,region,email\r\n"
        "siti,ppk,640903,siti@example.test\r\n"
        "\r\n"
        "kab.ppu,staff,6409,\r\n",
        bom=True,
    )
    out = StringIO()
    call_command("import_operators", str(path), stdout=out)
    lines = [line.split() for line in out.getvalue().splitlines()]
    assert [username for username, _ in lines] == ["siti", "kab.ppu"]
    assert scope_of(User.objects.get(username="kab.ppu")) == Scope(role="staff", region="6409")
    assert User.objects.get(username="kab.ppu").is_staff
    for _, link in lines:
        assert client.get(urlsplit(link).path).status_code == 302  # a working invitation


# --- Lockout by (username, address)


def test_five_wrong_passwords_lock_that_name_from_that_address_only(small_world):
    with_password(person("siti", "ppk", "640903"))
    with_password(person("andi", "ppk", "640903"))
    office = Client()
    for _ in range(4):
        assert log_in_by_form(office, "siti", "wrong-password").status_code == 200
    locked = log_in_by_form(office, "siti", "wrong-password")
    assert locked.status_code == 429
    assert "Too many failed logins" in text(locked)
    assert "Try again in 15 minutes." in text(locked)
    # Locked: the right password from the same address is refused too...
    assert log_in_by_form(Client(), "siti").status_code == 429
    # ... but the same operator elsewhere, and a colleague in the same office, get in.
    assert log_in_by_form(Client(), "siti", ip=ELSEWHERE).status_code == 302
    assert log_in_by_form(Client(), "andi", ip=OFFICE).status_code == 302

    failed = events(AccessKind.LOGIN_FAILED)
    assert [(e.username, e.ip, e.path) for e in failed[:5]] == [("siti", OFFICE, "/en/masuk/")] * 5
    assert {(e.username, e.ip) for e in events(AccessKind.LOCKED_OUT)} == {("siti", OFFICE)}


def test_the_lockout_page_is_in_indonesian_at_the_root_and_ends_after_the_cool_off(
    small_world, time_machine
):
    time_machine.move_to(datetime(2024, 11, 27, 14, tzinfo=UTC), tick=False)
    with_password(person("siti", "ppk", "640903"))
    for _ in range(5):
        locked = log_in_by_form(Client(), "siti", "wrong-password", path="/")
    assert locked.status_code == 429
    assert '<html lang="id">' in locked.text
    time_machine.shift(timedelta(minutes=10))
    assert "Try again in 5 minutes." in text(log_in_by_form(Client(), "siti", path="/en/"))
    time_machine.shift(timedelta(minutes=6))
    assert log_in_by_form(Client(), "siti").status_code == 302


# --- Sessions: idle timeout, 12 hours at most


@pytest.fixture
def kabupaten_staff():
    return person("kab.ppu", "staff", "6409")


def test_an_idle_session_is_logged_out_and_an_htmx_poll_does_not_keep_it_alive(
    client, kabupaten_staff, time_machine
):
    time_machine.move_to(datetime(2024, 11, 27, 14, tzinfo=UTC), tick=False)
    client.force_login(kabupaten_staff)
    assert client.get("/admin/").status_code == 200
    time_machine.shift(timedelta(minutes=20))
    page = "/en/akun/dua-langkah/"
    poll = {"HX-Request": "true", "HX-Current-URL": "http://testserver/en/dashboard/pkwkk/6409/"}
    assert client.get(page + "?part=live", headers=poll).status_code == 200  # not activity
    time_machine.shift(timedelta(minutes=11))  # 31 minutes after the last page view
    expired = client.get(page + "?part=live", headers=poll)
    # The page stops polling and goes to the login page, which says why.
    assert expired.status_code == 200
    assert expired["HX-Redirect"] == "/en/masuk/?next=%2Fen%2Fdashboard%2Fpkwkk%2F6409%2F"
    assert "30 minutes without activity" in text(client.get("/en/masuk/"))
    assert client.get("/admin/")["Location"].startswith("/admin/login/")
    assert [event.username for event in events(AccessKind.LOGOUT)] == ["kab.ppu"]


def test_the_phone_page_waiting_for_a_publication_does_not_keep_its_session_alive(
    client, time_machine
):
    """The upload page checks every 15 s on a document taken in until it is published; a phone
    left on it must still be logged out after 30 idle minutes (its JavaScript sends X-Poll)."""
    time_machine.move_to(datetime(2024, 11, 27, 14, tzinfo=UTC), tick=False)
    client.force_login(person("kpps.001", "kpps", "6409032002001"))
    assert client.get("/unggah/").status_code == 200
    state = "/api/uploads/pkwkk/6409032002001/"
    for _ in range(3):
        time_machine.shift(timedelta(minutes=10))
        assert client.get(state, headers={"X-Poll": "1"}).status_code == 200
    time_machine.shift(timedelta(minutes=1))  # 31 minutes after the page was opened
    assert client.get(state, headers={"X-Poll": "1"}).status_code == 401
    assert [event.username for event in events(AccessKind.LOGOUT)] == ["kpps.001"]


def test_checking_a_document_while_sending_it_is_activity(client, time_machine):
    time_machine.move_to(datetime(2024, 11, 27, 14, tzinfo=UTC), tick=False)
    client.force_login(person("kpps.001", "kpps", "6409032002001"))
    for _ in range(3):
        time_machine.shift(timedelta(minutes=25))
        assert client.get("/api/uploads/pkwkk/6409032002001/").status_code == 200


def test_a_page_view_is_activity_and_a_post_by_htmx_too(client, kabupaten_staff, time_machine):
    time_machine.move_to(datetime(2024, 11, 27, 14, tzinfo=UTC), tick=False)
    client.force_login(kabupaten_staff)
    for _ in range(3):
        time_machine.shift(timedelta(minutes=25))
        assert client.get("/admin/").status_code == 200
    time_machine.shift(timedelta(minutes=25))
    client.post("/admin/", headers={"HX-Request": "true"})
    time_machine.shift(timedelta(minutes=25))
    assert client.get("/admin/").status_code == 200


def test_a_session_ends_twelve_hours_after_its_login_however_active(
    client, kabupaten_staff, time_machine
):
    time_machine.move_to(datetime(2024, 11, 27, 14, tzinfo=UTC), tick=False)
    client.force_login(kabupaten_staff)
    for _ in range(28):  # 11 h 40 min of work, a page every 25 minutes
        time_machine.shift(timedelta(minutes=25))
        assert client.get("/admin/").status_code == 200
    time_machine.shift(timedelta(minutes=25))
    assert client.get("/en/akun/dua-langkah/").status_code == 302
    assert "a session lasts at most 12 hours" in text(client.get("/en/masuk/"))


def test_sessions_are_cookies_of_the_browser_session_of_twelve_hours_at_most(settings):
    assert settings.SESSION_COOKIE_AGE == 12 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE


# --- The second factor


@pytest.fixture
def root():
    """A KPU admin (an admin is a superuser) with a password and no device yet."""
    return with_password(person("root", "admin"))


def test_an_admin_without_a_device_is_sent_to_set_one_up_first(client, root, time_machine):
    time_machine.move_to(datetime(2024, 11, 27, 14, tzinfo=UTC), tick=False)
    assert log_in_by_form(client, "root").status_code == 302
    for path in ["/admin/", "/dashboard/", "/en/audit/", "/ppk/"]:
        sent = client.get(path)
        assert sent.status_code == 302, path
        assert sent["Location"].split("?")[0] in ("/akun/dua-langkah/", "/en/akun/dua-langkah/")
    # The public pages answer everyone alike (a cache keeps them for all): no session read.
    public = client.get("/progress/pkwkk/6409/")
    assert public.status_code == 200 and not public.cookies
    setup = client.get("/en/akun/dua-langkah/?next=/admin/")
    page = text(setup)
    assert "KPU admins must use two-step verification" in page
    device = TOTPDevice.objects.get(user=root, confirmed=False)
    assert "otpauth://totp/Sirekap%20Tracker%3Aroot?secret=" in setup.text
    assert '<svg width="' in setup.text  # the QR code, inline: the CSP allows no data: image
    secret = device.config_url.split("secret=")[1].split("&")[0]
    assert secret[:4] + " " + secret[4:8] in page  # for typing by hand

    wrong = client.post("/en/akun/dua-langkah/?next=/admin/", {"code": "000000"})
    assert "That code is not right" in text(wrong)
    time_machine.shift(timedelta(seconds=2))  # a wrong code slows the next try for a second
    confirmed = client.post("/en/akun/dua-langkah/?next=/admin/", {"code": code_now(device)})
    assert confirmed.status_code == 302 and confirmed["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert "Two-step verification is on" in text(client.get("/en/akun/dua-langkah/"))


def test_with_a_device_the_login_asks_for_a_valid_code_after_the_password(
    client, root, time_machine
):
    time_machine.move_to(datetime(2024, 11, 27, 14, tzinfo=UTC), tick=False)
    device = TOTPDevice.objects.create(user=root, name="phone", confirmed=True)
    asked = log_in_by_form(client, "root")
    assert asked["Location"] == "/en/masuk/kode/"
    assert client.get("/admin/")["Location"].startswith("/admin/login/")  # not logged in yet
    assert not events(AccessKind.LOGIN)

    wrong = client.post("/en/masuk/kode/", {"code": "000000"}, headers={"X-Forwarded-For": OFFICE})
    assert "That code is not right" in text(wrong)
    assert [(e.username, e.ip) for e in events(AccessKind.LOGIN_FAILED)] == [("root", OFFICE)]
    time_machine.shift(timedelta(seconds=30))
    right = client.post("/en/masuk/kode/", {"code": code_now(device)})
    assert right.status_code == 302 and right["Location"] == "/en/dashboard/"
    assert client.get("/admin/").status_code == 200
    assert [event.username for event in events(AccessKind.LOGIN)] == ["root"]

    # The same code twice is refused: one seen is used up.
    client.post("/keluar/")
    log_in_by_form(client, "root")
    assert "That code is not right" in text(
        client.post("/en/masuk/kode/", {"code": code_now(device)})
    )


def test_a_device_is_owed_whichever_login_page_was_used(client, kabupaten_staff, time_machine):
    time_machine.move_to(datetime(2024, 11, 27, 14, tzinfo=UTC), tick=False)
    with_password(kabupaten_staff)
    device = TOTPDevice.objects.create(user=kabupaten_staff, name="phone", confirmed=True)
    # Django's admin login checks the password alone...
    client.post("/admin/login/", {"username": "kab.ppu", "password": PASSWORD, "next": "/admin/"})
    # ... and the session is sent on to give the code before anything else.
    sent = client.get("/admin/")
    assert sent["Location"] == "/masuk/kode/?next=%2Fadmin%2F"
    code = client.post("/masuk/kode/?next=%2Fadmin%2F", {"code": code_now(device)})
    assert code["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_anyone_may_set_up_a_device_and_is_then_asked_for_codes(client, time_machine):
    time_machine.move_to(datetime(2024, 11, 27, 14, tzinfo=UTC), tick=False)
    siti = with_password(person("siti", "ppk", "640903"))
    client.force_login(siti)
    page = client.get("/en/akun/dua-langkah/")
    assert "KPU admins must use" not in text(page)
    device = TOTPDevice.objects.get(user=siti)
    client.post("/en/akun/dua-langkah/", {"code": code_now(device)})
    client.post("/keluar/")
    assert log_in_by_form(client, "siti")["Location"] == "/en/masuk/kode/"


# --- Access events


def test_logins_failed_logins_and_logouts_are_access_events(client):
    with_password(person("siti", "ppk", "640903"))
    log_in_by_form(client, "sitti", "typo")
    log_in_by_form(client, "siti")
    client.post("/en/keluar/", headers={"X-Forwarded-For": ELSEWHERE})
    rows = AccessEvent.objects.order_by("id").values_list("kind", "username", "role", "ip", "path")
    assert list(rows) == [
        ("login_failed", "sitti", "", OFFICE, "/en/masuk/"),
        ("login", "siti", "ppk", OFFICE, "/en/masuk/"),
        ("logout", "siti", "ppk", ELSEWHERE, "/en/keluar/"),
    ]
    assert AccessEvent.objects.get(kind="login").user.username == "siti"


def test_a_logged_in_page_reads_its_user_with_their_role_in_one_statement(client):
    siti = with_password(person("siti", "ppk", "640903"))
    assert log_in_by_form(client, "siti").status_code == 302
    with CaptureQueriesContext(connection) as sent:
        assert client.get("/en/ppk/").status_code == 200
    of_users = [query["sql"] for query in sent if 'FROM "auth_user"' in query["sql"]]
    assert len(of_users) == 1 and '"accounts_profile"' in of_users[0]
    assert not [query for query in sent if 'FROM "accounts_profile"' in query["sql"]]
    # A user made inactive is logged out at their next request.
    User.objects.filter(pk=siti.pk).update(is_active=False)
    assert client.get("/en/ppk/")["Location"].startswith("/en/masuk/")


def test_the_logout_button_is_a_post_on_every_staff_page(client, kabupaten_staff):
    client.force_login(kabupaten_staff)
    page = client.get("/en/akun/dua-langkah/")
    assert '<form method="post" action="/en/keluar/" class="logout">' in page.text
    assert client.get("/en/keluar/").status_code == 405


# --- The admin's users, by scope


@pytest.fixture
def everyone(paser, kabupaten_staff):
    """Users above, beside and below the PPU staff member."""
    return {
        "root": person("root", "admin"),
        "kaltim": person("kaltim", "staff", "64"),
        "ppu.2": person("ppu.2", "staff", "6409"),
        "siti": person("siti", "ppk", "640903"),
        "budi": person("budi", "kpps", "6409032002001"),
        "paser.ppk": person("paser.ppk", "ppk", "640801"),
        "kab.ppu": kabupaten_staff,
    }


def listed(client) -> list[str]:
    changelist = client.get("/admin/auth/user/")
    assert changelist.status_code == 200
    return sorted(user.username for user in changelist.context["cl"].result_list)


def change_url(user) -> str:
    return f"/admin/auth/user/{user.pk}/change/"


def test_kabupaten_staff_see_and_edit_only_the_users_below_them(client, everyone):
    client.force_login(everyone["kab.ppu"])
    assert listed(client) == ["budi", "siti"]
    for name in ["root", "kaltim", "ppu.2", "paser.ppk", "kab.ppu"]:
        assert client.get(change_url(everyone[name])).status_code == 302, name  # "no such user"
        assert (
            client.post(change_url(everyone[name]).replace("change", "delete")).status_code == 302
        )
    assert User.objects.filter(username="kaltim").exists()
    assert client.get(change_url(everyone["siti"])).status_code == 200
    # The admin's index shows them the users, nothing else.
    index = client.get("/admin/")
    assert [app["app_label"] for app in index.context["app_list"]] == ["auth"]


def add(client, **fields):
    return client.post("/admin/auth/user/add/", fields)


def refusals(response) -> dict[str, list[str]]:
    """The form's errors by field, as codes (the admin speaks the site's first language)."""
    errors = response.context["adminform"].form.errors.as_data()
    return {field: [error.code for error in found] for field, found in errors.items()}


def test_kabupaten_staff_cannot_make_a_user_above_or_beside_them(client, everyone):
    client.force_login(everyone["kab.ppu"])
    form = client.get("/admin/auth/user/add/").context["adminform"].form
    assert [value for value, _ in form.fields["role"].choices] == ["ppk", "kpps"]
    beside = add(client, username="andi", role="ppk", region="640801")
    assert beside.status_code == 200
    assert refusals(beside) == {"region": ["not_below"]}
    assert "(6409)" in text(beside)
    above = add(client, username="andi", role="staff", region="64")
    assert refusals(above) == {"role": ["invalid_choice"]}
    wrong_level = add(client, username="andi", role="ppk", region="6409032002")
    assert refusals(wrong_level) == {"region": ["wrong_level"]}
    assert not User.objects.filter(username="andi").exists()

    made = add(client, username="andi", role="ppk", region="640903", email="andi@example.test")
    assert made.status_code == 302
    andi = User.objects.get(username="andi")
    assert scope_of(andi) == Scope(role="ppk", region="640903")
    assert not andi.has_usable_password() and not andi.is_staff
    shown = text(client.get("/admin/auth/user/"))
    assert re.search(r"andi .*: http://127\.0\.0\.1:8000/atur-sandi/[\w-]+/[\w-]+/", shown)


def test_kabupaten_staff_cannot_raise_a_user_below_them_to_their_own_level(client, everyone):
    client.force_login(everyone["kab.ppu"])
    siti = everyone["siti"]
    fields = {"username": "siti", "email": "", "is_active": "on", "first_name": "Siti"}
    raised = client.post(change_url(siti), {**fields, "role": "staff", "region": "6409"})
    assert refusals(raised) == {"role": ["invalid_choice"]}
    moved = client.post(change_url(siti), {**fields, "role": "kpps", "region": "6409032002002"})
    assert moved.status_code == 302
    assert scope_of(User.objects.get(username="siti")) == Scope(role="kpps", region="6409032002002")


def test_an_admin_manages_everyone_and_may_make_an_admin(client, everyone):
    log_in(client, everyone["root"])
    assert listed(client) == sorted(everyone)
    add(client, username="root2", role="admin", region="")
    assert User.objects.get(username="root2").is_superuser


def test_a_ppk_operator_does_not_reach_the_admin(client, everyone):
    client.force_login(everyone["siti"])
    assert client.get("/admin/")["Location"].startswith("/admin/login/")


def test_the_managed_users_query_agrees_with_scope_manages(everyone):
    for manager in everyone.values():
        found = set(users_managed_by(manager).values_list("username", flat=True))
        expected = {
            name for name, user in everyone.items() if scope_of(manager).manages(scope_of(user))
        }
        assert found == expected, manager.username


def test_access_events_cannot_be_added_changed_or_deleted_in_the_admin(client, everyone):
    log_in(client, everyone["root"])
    event = AccessEvent.objects.get(kind="login")
    url = f"/admin/accounts/accessevent/{event.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.text
    assert client.post(url, {"kind": "logout"}).status_code == 403
    assert client.post(url.replace("change", "delete"), {"post": "yes"}).status_code == 403
    assert client.get("/admin/accounts/accessevent/add/").status_code == 403
    changelist = client.get("/admin/accounts/accessevent/")
    assert "delete_selected" not in changelist.text
    assert AccessEvent.objects.get(pk=event.pk).kind == "login"
