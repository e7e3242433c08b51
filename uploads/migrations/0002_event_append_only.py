from django.db import migrations

# History must be trustworthy: the database itself refuses to change or delete an event row.
# (TRUNCATE, which only a database owner runs, is not affected.)
FORBID_EDITS = """
CREATE FUNCTION uploads_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'upload events are append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER uploads_event_append_only BEFORE UPDATE OR DELETE ON uploads_uploadevent
    FOR EACH ROW EXECUTE FUNCTION uploads_event_append_only();
"""

ALLOW_EDITS = """
DROP TRIGGER uploads_event_append_only ON uploads_uploadevent;
DROP FUNCTION uploads_event_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("uploads", "0001_initial")]

    operations = [migrations.RunSQL(FORBID_EDITS, ALLOW_EDITS)]
