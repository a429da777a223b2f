"""The database itself refuses UPDATE and DELETE on controlled-substance ledger entries.

Someone with direct database access can still drop the trigger; the hash chain is what
proves an entry was changed (`ketaclinic ledger verify`).
"""

from django.db import migrations

SQLITE = [
    """CREATE TRIGGER ledger_entry_no_update BEFORE UPDATE ON inventory_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only: record a reversal'); END""",
    """CREATE TRIGGER ledger_entry_no_delete BEFORE DELETE ON inventory_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only: record a reversal'); END""",
]
SQLITE_DROP = ["DROP TRIGGER ledger_entry_no_update", "DROP TRIGGER ledger_entry_no_delete"]
POSTGRES = [
    """CREATE FUNCTION ledger_entry_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'ledger entries are append-only: record a reversal'; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON inventory_ledgerentry
       FOR EACH ROW EXECUTE FUNCTION ledger_entry_append_only()""",
]
POSTGRES_DROP = [
    "DROP TRIGGER ledger_entry_append_only ON inventory_ledgerentry",
    "DROP FUNCTION ledger_entry_append_only()",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial")]
    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE, "postgresql": POSTGRES}),
            _run({"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP}),
        )
    ]
