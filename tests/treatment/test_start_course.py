"""Starting a course: the eligibility gate (hard stops, cautions, signature, age of the
assessment, REMS) and the sessions the protocol lays out."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction, AuditEntry
from ketaclinic.treatment import services
from ketaclinic.treatment.models import Appointment, EligibilityAssessment, TreatmentCourse
from tests.conftest import measure, register
from tests.treatment import helpers


def _actor(world):  # type: ignore[no-untyped-def]
    return Actor.system(world.clinic_a, user=world.prescriber, label="test")


def _enrol(patient) -> None:  # type: ignore[no-untyped-def]
    patient.rems_patient_id = "REMS-0001"
    patient.rems_enrolled_on = timezone.localdate() - timedelta(days=3)
    patient.save(update_fields=["rems_patient_id", "rems_enrolled_on"])


def _start(world, patient, assessment, **kwargs):  # type: ignore[no-untyped-def]
    args = {
        "protocol": "esketamine_trd" if assessment.drug == "esketamine" else "iv_ketamine_standard",
        "start_date": timezone.localdate() + timedelta(days=1),
        "indication": "trd",
        "responsible_prescriber": world.prescriber,
    }
    if assessment.drug == "esketamine":
        args["dose_mg"] = Decimal(56)
    else:
        args["mg_per_kg"] = Decimal("0.5")
    args.update(kwargs)
    return services.start_course(_actor(world), patient, assessment, **args)


def test_it_refuses_an_esketamine_course_for_aneurysmal_vascular_disease(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    _enrol(patient)
    signed = helpers.assessment(patient, world.prescriber, aneurysmal_vascular_disease_or_avm=True)
    assert signed.decision == "not_eligible"
    with pytest.raises(ValidationError) as exc:
        _start(world, patient, signed, caution_override_reason="Cardiology cleared him.")
    assert "cannot be overridden" in exc.value.message_dict["assessment"][0]
    assert not TreatmentCourse.objects.exists()
    assert not Appointment.objects.exists()
    assert not AuditEntry.objects.filter(action=AuditAction.OVERRIDE).exists()


def test_it_refuses_an_esketamine_course_after_intracerebral_haemorrhage(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    _enrol(patient)
    signed = helpers.assessment(patient, world.prescriber, intracerebral_haemorrhage_history=True)
    with pytest.raises(ValidationError):
        _start(world, patient, signed, caution_override_reason="I accept the risk.")
    assert not TreatmentCourse.objects.exists()


def test_it_needs_a_reason_to_go_ahead_despite_a_caution(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    _enrol(patient)
    signed = helpers.assessment(patient, world.prescriber, seizure_disorder=True)
    assert signed.decision == "eligible_with_cautions"
    with pytest.raises(ValidationError) as exc:
        _start(world, patient, signed, caution_override_reason="   ")
    assert "caution_override_reason" in exc.value.message_dict
    assert not TreatmentCourse.objects.exists()


def test_it_records_a_caution_override_with_its_reason_in_the_audit_log(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    _enrol(patient)
    signed = helpers.assessment(patient, world.prescriber, seizure_disorder=True)
    course = _start(
        world, patient, signed, caution_override_reason="Seizure-free 10 years; neuro agrees."
    )
    entry = AuditEntry.objects.get(action=AuditAction.OVERRIDE)
    assert entry.reason == "Seizure-free 10 years; neuro agrees."
    assert entry.object_type == "eligibility_assessment"
    assert entry.object_id == str(signed.pk)
    assert entry.patient_id == patient.pk
    assert entry.actor_id == world.prescriber.pk
    assert entry.detail["cautions"]
    assert course.caution_override_reason == "Seizure-free 10 years; neuro agrees."


def test_it_refuses_an_unsigned_assessment(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    _enrol(patient)
    unsigned = helpers.assessment(patient, world.prescriber, sign=False)
    with pytest.raises(ValidationError) as exc:
        _start(world, patient, unsigned)
    assert "signed" in exc.value.message_dict["assessment"][0]
    assert not TreatmentCourse.objects.exists()


def test_it_refuses_an_assessment_older_than_the_clinic_limit(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    _enrol(patient)
    signed = helpers.assessment(patient, world.prescriber)
    EligibilityAssessment.objects.filter(pk=signed.pk).update(
        signed_at=timezone.now() - timedelta(days=91)
    )
    with pytest.raises(ValidationError) as exc:
        _start(world, patient, signed)
    assert "older than 90 days" in exc.value.message_dict["assessment"][0]


def test_it_accepts_an_assessment_just_inside_the_clinic_limit(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    _enrol(patient)
    signed = helpers.assessment(patient, world.prescriber)
    EligibilityAssessment.objects.filter(pk=signed.pk).update(
        signed_at=timezone.now() - timedelta(days=89)
    )
    assert _start(world, patient, signed).pk


def test_it_follows_the_clinics_own_assessment_limit(world) -> None:  # type: ignore[no-untyped-def]
    world.clinic_a.assessment_valid_days = 30
    world.clinic_a.save(update_fields=["assessment_valid_days"])
    patient = register(world.clinic_a, world.prescriber)
    _enrol(patient)
    signed = helpers.assessment(patient, world.prescriber)
    EligibilityAssessment.objects.filter(pk=signed.pk).update(
        signed_at=timezone.now() - timedelta(days=31)
    )
    with pytest.raises(ValidationError) as exc:
        _start(world, patient, signed)
    assert "older than 30 days" in exc.value.message_dict["assessment"][0]


def test_it_refuses_esketamine_without_rems_enrolment(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    signed = helpers.assessment(patient, world.prescriber)
    with pytest.raises(ValidationError) as exc:
        _start(world, patient, signed)
    assert "REMS" in exc.value.message_dict["rems"][0]
    patient.rems_patient_id = "REMS-9"
    patient.save(update_fields=["rems_patient_id"])
    with pytest.raises(ValidationError):  # an id without its enrolment date is not enough
        _start(world, patient, signed)
    assert not TreatmentCourse.objects.exists()


def test_it_refuses_another_clinics_patient(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    signed = helpers.assessment(patient, world.prescriber)
    other = Actor.system(world.clinic_b, user=world.prescriber_b, label="test")
    with pytest.raises(PermissionError):
        services.start_course(
            other,
            patient,
            signed,
            protocol="esketamine_trd",
            start_date=date.today(),
            indication="trd",
            responsible_prescriber=world.prescriber_b,
        )


def test_an_esketamine_trd_course_lays_out_12_sessions(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    start = date(2030, 3, 4)  # a Monday
    course = helpers.esketamine_course(patient, world.prescriber, start=start)
    sessions = list(course.appointments.order_by("number"))
    assert len(sessions) == 12
    assert [s.number for s in sessions] == list(range(1, 13))
    weeks = [(s.target - start).days // 7 + 1 for s in sessions]
    assert sum(1 for w in weeks if 1 <= w <= 4) == 8
    assert sum(1 for w in weeks if 5 <= w <= 8) == 4
    assert all(weeks.count(w) == 2 for w in range(1, 5))
    assert all(weeks.count(w) == 1 for w in range(5, 9))
    for s in sessions:
        assert s.earliest <= s.target <= s.latest
        assert s.status == "planned"
        # the window stays inside the session's label week
        assert (s.earliest - start).days // 7 == (s.latest - start).days // 7
    assert sessions[0].earliest == sessions[0].target == sessions[0].latest == start
    assert sessions[0].dose_mg == Decimal(56)
    assert {s.dose_mg for s in sessions} <= {Decimal(56), Decimal(84)}


def test_an_iv_standard_course_lays_out_6_infusions_in_21_days(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    measure(patient, world.prescriber, weight="80.0")
    signed = helpers.assessment(patient, world.prescriber, drug="ketamine")
    start = date(2030, 3, 4)
    course = _start(world, patient, signed, start_date=start)
    sessions = list(course.appointments.order_by("number"))
    assert len(sessions) == 6
    targets = [s.target for s in sessions]
    assert (targets[-1] - targets[0]).days <= 20
    assert all((b - a).days >= 2 for a, b in zip(targets, targets[1:], strict=False))
    assert all(s.latest <= start + timedelta(days=20) for s in sessions)
    assert all(s.mg_per_kg == Decimal("0.5") for s in sessions)
    assert course.route == "iv"
    assert course.dosing_weight_kg == Decimal("80.0")


def test_iv_three_a_week_fits_in_under_two_weeks(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    measure(patient, world.prescriber)
    signed = helpers.assessment(patient, world.prescriber, drug="ketamine")
    course = _start(
        world, patient, signed, start_date=date(2030, 3, 4), protocol_options={"per_week": 3}
    )
    targets = sorted(course.appointments.values_list("target", flat=True))
    assert len(targets) == 6
    assert (targets[-1] - targets[0]).days < 14


def test_an_iv_dose_above_half_a_mg_per_kg_needs_a_reason(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    measure(patient, world.prescriber)
    signed = helpers.assessment(patient, world.prescriber, drug="ketamine")
    with pytest.raises(ValidationError) as exc:
        _start(world, patient, signed, mg_per_kg=Decimal("0.6"))
    assert "0.5 mg/kg" in exc.value.message_dict["mg_per_kg"][0]
    assert not TreatmentCourse.objects.exists()
    course = _start(
        world, patient, signed, mg_per_kg=Decimal("0.6"), dose_reason="Partial response at 0.5."
    )
    assert course.dose_reason == "Partial response at 0.5."


def test_an_iv_dose_above_the_clinic_maximum_is_refused_whatever_the_reason(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    measure(patient, world.prescriber)
    signed = helpers.assessment(patient, world.prescriber, drug="ketamine")
    with pytest.raises(ValidationError) as exc:
        _start(world, patient, signed, mg_per_kg=Decimal("0.8"), dose_reason="I insist.")
    assert "maximum" in exc.value.message_dict["mg_per_kg"][0]
    assert not TreatmentCourse.objects.exists()


def test_an_iv_course_needs_a_weight(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    signed = helpers.assessment(patient, world.prescriber, drug="ketamine")
    with pytest.raises(ValidationError) as exc:
        _start(world, patient, signed)
    assert "weight" in exc.value.message_dict["weight_basis"][0]


def test_the_weight_basis_is_kept_as_chosen(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber, sex_at_birth="male")
    measure(patient, world.prescriber, weight="120.0", height="180.0")
    signed = helpers.assessment(patient, world.prescriber, drug="ketamine")
    course = _start(world, patient, signed, weight_basis="ideal")
    assert course.weight_basis == "ideal"
    # Devine IBW, male 180 cm: 50 + 2.3 * (180/2.54 - 60) = 75.0 kg (not the actual 120 kg)
    assert course.dosing_weight_kg == Decimal("75.0")
    # a later weight does not change the plan's basis or weight behind the prescriber's back
    measure(patient, world.prescriber, weight="90.0", height="180.0")
    course.refresh_from_db()
    assert (course.weight_basis, course.dosing_weight_kg) == ("ideal", Decimal("75.0"))


def test_the_protocol_must_match_the_assessed_drug(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    _enrol(patient)
    signed = helpers.assessment(patient, world.prescriber)
    with pytest.raises(ValidationError) as exc:
        _start(world, patient, signed, protocol="iv_ketamine_standard")
    assert "protocol" in exc.value.message_dict


def test_the_weight_basis_changes_only_by_an_audited_amendment(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber, sex_at_birth="male")
    measure(patient, world.prescriber, weight="120.0", height="180.0")
    signed = helpers.assessment(patient, world.prescriber, drug="ketamine")
    course = _start(world, patient, signed)
    assert (course.weight_basis, course.dosing_weight_kg) == ("actual", Decimal("120.0"))
    with pytest.raises(ValidationError) as exc:
        services.change_weight_basis(_actor(world), course, weight_basis="ideal", reason=" ")
    assert "reason" in exc.value.message_dict
    nurse = Actor.system(world.clinic_a, user=world.nurse, label="test")
    with pytest.raises(PermissionError):
        services.change_weight_basis(nurse, course, weight_basis="ideal", reason="Obesity.")
    course.refresh_from_db()
    assert course.weight_basis == "actual"
    services.change_weight_basis(
        _actor(world), course, weight_basis="ideal", reason="BMI 37: dose on ideal weight."
    )
    assert (course.weight_basis, course.dosing_weight_kg) == ("ideal", Decimal("75.0"))
    entry = AuditEntry.objects.filter(object_type="treatment_course").last()
    assert entry.reason == "BMI 37: dose on ideal weight."
    assert entry.detail["before"] == {"weight_basis": "actual", "dosing_weight_kg": "120.0"}
    assert entry.detail["after"] == {"weight_basis": "ideal", "dosing_weight_kg": "75.0"}


def test_an_esketamine_course_has_no_weight_basis_to_change(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    course = helpers.esketamine_course(patient, world.prescriber)
    assert course.weight_basis == "" and course.mg_per_kg is None
    with pytest.raises(ValidationError):
        services.change_weight_basis(_actor(world), course, weight_basis="ideal", reason="x")
