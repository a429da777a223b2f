"""Signing, co-signing and amendments; two people editing one session."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from ketaclinic.audit.models import AuditEntry
from ketaclinic.dosing import selectors, services
from ketaclinic.dosing.models import Amendment, VitalsReading
from ketaclinic.dosing.services import StaleSession
from tests.dosing.conftest import (
    booked,
    checked_in,
    day,
    esketamine_course,
    fresh,
    predose,
    run_esketamine,
)


@pytest.fixture
def discharged(clinic):  # type: ignore[no-untyped-def]
    course = esketamine_course(clinic, clinic.stock.patient, day(), dose=56)
    kit = clinic.kits(1)[0]
    return run_esketamine(
        clinic, booked(clinic, course, 1, clinic.at(day(), 8, 30)), day(), kit=kit
    )


def test_the_nurse_signs_and_the_prescriber_cosigns(clinic, discharged):
    with pytest.raises(ValidationError, match="nurse signs the note first"):
        services.cosign(clinic.prescriber, discharged, expected_version=discharged.version)
    services.sign(clinic.nurse, discharged, expected_version=discharged.version)
    with pytest.raises(PermissionError):
        services.cosign(clinic.nurse, discharged, expected_version=fresh(discharged).version)
    services.cosign(clinic.prescriber, discharged, expected_version=fresh(discharged).version)
    session = fresh(discharged)
    assert session.signed_by == clinic.stock.world.nurse
    assert session.cosigned_by == clinic.stock.world.prescriber
    signs = AuditEntry.objects.filter(action="sign", object_type="dosing_session")
    assert sorted(e.detail["role"] for e in signs) == ["nurse", "prescriber"]


def test_a_signed_note_is_read_only(clinic, discharged):
    services.sign(clinic.nurse, discharged, expected_version=discharged.version)
    session = fresh(discharged)
    with pytest.raises(ValidationError, match="signed and read-only"):
        services.update_note(
            clinic.nurse, session, expected_version=session.version, note="changed"
        )
    with pytest.raises(ValidationError, match="signed and read-only"):
        services.record_side_effect(clinic.nurse, session, kind="nausea", severity="mild")
    with pytest.raises(ValidationError, match="signed and read-only"):
        services.sign(clinic.nurse, session, expected_version=session.version)


def test_an_amendment_keeps_the_original_and_the_audit_log_holds_both(clinic, discharged):
    services.update_note(
        clinic.nurse, discharged, expected_version=discharged.version, note="Tolerated well."
    )
    services.sign(clinic.nurse, discharged, expected_version=fresh(discharged).version)
    session = fresh(discharged)
    reading = session.vitals.get(taken_at=clinic.at(day(), 9, 45))
    with pytest.raises(ValidationError) as refused:
        services.amend(
            clinic.nurse,
            session,
            object_type="vitals",
            object_id=reading.pk,
            field="sbp",
            new_value="148",
            reason="",
        )
    assert "reason" in refused.value.message_dict
    amendment = services.amend(
        clinic.nurse,
        session,
        object_type="vitals",
        object_id=reading.pk,
        field="sbp",
        new_value="148",
        reason="Transcribed 138 in error; monitor printout shows 148",
    )
    assert (amendment.old_value, amendment.new_value) == ("138", "148")
    assert amendment.by == clinic.stock.world.nurse
    # The stored reading is untouched; the PMF and pages read the amended value.
    assert VitalsReading.objects.get(pk=reading.pk).sbp == 138
    assert selectors.pmf_data(session)["bp_40_min"] == "148/86"
    assert selectors.effective(session) == {("vitals", reading.pk, "sbp"): "148"}
    services.amend(
        clinic.nurse,
        session,
        object_type="session",
        object_id=session.pk,
        field="note",
        new_value="Tolerated well; mild nausea at 30 min.",
        reason="Omitted the nausea",
    )
    assert fresh(session).note == "Tolerated well."
    # The audit log holds the original write and the amendment.
    note_write = AuditEntry.objects.get(object_type="dosing_session_note")
    amended = AuditEntry.objects.filter(object_type__startswith="dosing_amendment_").order_by(
        "sequence"
    )
    assert note_write.sequence < amended.first().sequence
    assert [(e.detail["old"], e.detail["new"]) for e in amended] == [
        ("138", "148"),
        ("Tolerated well.", "Tolerated well; mild nausea at 30 min."),
    ]
    assert Amendment.objects.filter(session=session).count() == 2


def test_an_unsigned_note_is_edited_not_amended_and_only_listed_fields_amend(clinic, discharged):
    with pytest.raises(ValidationError, match="not signed yet"):
        services.amend(
            clinic.nurse,
            discharged,
            object_type="session",
            object_id=discharged.pk,
            field="note",
            new_value="x",
            reason="y",
        )
    services.sign(clinic.nurse, discharged, expected_version=discharged.version)
    with pytest.raises(ValidationError) as refused:
        services.amend(
            clinic.nurse,
            fresh(discharged),
            object_type="session",
            object_id=discharged.pk,
            field="state",
            new_value="booked",
            reason="y",
        )
    assert "field" in refused.value.message_dict


def test_a_stale_edit_is_refused_with_a_conflict_message_and_nothing_is_lost(clinic):
    course = esketamine_course(clinic, clinic.stock.patient, day(), dose=56)
    clinic.kits(1)
    session = checked_in(
        clinic, booked(clinic, course, 1, clinic.at(day(), 8, 30)), clinic.at(day(), 8, 30)
    )
    opened_by_both = fresh(session).version
    services.update_note(
        clinic.nurse, session, expected_version=opened_by_both, note="Anxious; music on."
    )
    with pytest.raises(StaleSession, match="Someone else changed this session") as conflict:
        services.update_note(
            clinic.prescriber, session, expected_version=opened_by_both, note="Plan: 56 mg."
        )
    assert "reload" in conflict.value.messages[0]
    assert fresh(session).note == "Anxious; music on."
    # A vitals reading never conflicts, and does not make other open forms stale.
    services.record_vitals(clinic.prescriber, session, sbp=130, dbp=85)
    current = fresh(session).version
    services.record_vitals(clinic.nurse, session, hr=80, spo2=98)
    assert fresh(session).version == current
    services.update_note(
        clinic.prescriber, session, expected_version=current, note="Anxious; music on. 56 mg."
    )
    predose(clinic, session, clinic.at(day(), 8, 45))
    assert session.vitals.count() == 3
