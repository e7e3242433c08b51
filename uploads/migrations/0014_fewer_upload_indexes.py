"""Three indexes fewer on uploads_upload, the table every status change rewrites.

PostgreSQL cannot update an upload in place (a HOT update): its status is in the conditions of
partial indexes, so each change writes a new row version and an entry into every index. Two were
duplicates (upload_tps of the TPS foreign key's own index, the contest's of the unique
(contest, TPS) index, which leads with it), and the one of taken_by held every row for the few
taken. Built and dropped without blocking the uploads (CONCURRENTLY), so it can run on a live
database.
"""

import django.db.models.deletion
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("regions", "0003_candidate"),
        ("uploads", "0013_event_time_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="upload",
            index=models.Index(
                condition=models.Q(("taken_by__isnull", False)),
                fields=["taken_by"],
                name="upload_taken_by",
            ),
        ),
        RemoveIndexConcurrently(model_name="upload", name="upload_tps"),
        migrations.AlterField(
            model_name="upload",
            name="contest",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="uploads",
                to="regions.contest",
                verbose_name="contest",
            ),
        ),
        migrations.AlterField(
            model_name="upload",
            name="taken_by",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="taken by",
            ),
        ),
    ]
