"""An index for MRN prefix search on PostgreSQL: `UPPER(mrn) LIKE 'P%'` (Django's istartswith).

text_pattern_ops compares byte-wise, so PostgreSQL turns the LIKE prefix into an index range
whatever the database collation. SQLite has no operator classes and needs nothing here. The
index is created in SQL rather than in Meta.indexes because an operator class on an expression
is PostgreSQL-only; ANALYZE gathers the expression's statistics the planner estimates with.
"""

from django.db import migrations

POSTGRES = [
    "CREATE INDEX patient_mrn_prefix ON patients_patient (clinic_id, upper(mrn) text_pattern_ops)",
    "ANALYZE patients_patient",
]
POSTGRES_DROP = ["DROP INDEX patient_mrn_prefix"]


def _run(statements):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("patients", "0003_historicalpatient_rems_enrolled_on_and_more")]
    operations = [migrations.RunPython(_run(POSTGRES), _run(POSTGRES_DROP))]
