"""The assessment, new-course and course pages: who may use them, what they refuse, and the
pause / resume / decision actions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.urls import reverse

from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction, AuditEntry
from ketaclinic.treatment import services
from ketaclinic.treatment.models import TreatmentCourse
from tests.conftest import measure, register, signed_in
from tests.treatment import helpers


def _course_new_url(patient, assessment) -> str:  # type: ignore[no-untyped-def]
    return reverse(
        "treatment:course_new", kwargs={"patient_id": patient.pk, "assessment_id": assessment.pk}
    )


def _esketamine_post(world, **extra):  # type: ignore[no-untyped-def]
    data = {
        "protocol": "esketamine_trd",
        "start_date": (world.clinic_a.today() + timedelta(days=1)).isoformat(),
        "indication": "trd",
        "responsible_prescriber": world.prescriber.pk,
        "maintenance_sessions": 0,
        "maintenance_every_weeks": 2,
        "dose_mg": 56,
        "mg_per_kg": "0.5",  # the IV field's initial value, sent by a browser anyway
        "measurement_plan": ["phq9:before_every_session", "cssrs_screen:before_every_session"],
    }
    data.update(extra)
    return data


def test_a_prescriber_starts_an_esketamine_course_and_sees_12_sessions(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    patient.rems_patient_id, patient.rems_enrolled_on = "R-1", world.clinic_a.today()
    patient.save()
    signed = helpers.assessment(patient, world.prescriber)
    client = signed_in(world.prescriber)
    response = client.post(_course_new_url(patient, signed), _esketamine_post(world))
    course = TreatmentCourse.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("treatment:course", kwargs={"course_id": course.pk})
    page = client.get(response["Location"])
    assert page.content.count(b'id="session-') == 12
    assert b"12 sessions laid out" in page.content
    assert course.mg_per_kg is None and course.dose_mg == 56
    assert b"phq9 before every session" in page.content


def test_the_course_form_shows_a_hard_stop_and_stores_nothing(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    patient.rems_patient_id, patient.rems_enrolled_on = "R-1", world.clinic_a.today()
    patient.save()
    signed = helpers.assessment(patient, world.prescriber, aneurysmal_vascular_disease_or_avm=True)
    client = signed_in(world.prescriber)
    response = client.post(
        _course_new_url(patient, signed),
        _esketamine_post(world, caution_override_reason="Please."),
    )
    assert response.status_code == 200
    assert b"cannot be overridden" in response.content
    assert not TreatmentCourse.objects.exists()
    # the assessment page does not even offer to start one
    page = client.get(
        reverse(
            "treatment:assessment", kwargs={"patient_id": patient.pk, "assessment_id": signed.pk}
        )
    )
    assert b"Start a treatment course" not in page.content
    assert b"hard stop" in page.content


def test_the_course_form_asks_for_rems_enrolment(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    signed = helpers.assessment(patient, world.prescriber)
    response = signed_in(world.prescriber).post(
        _course_new_url(patient, signed), _esketamine_post(world)
    )
    assert response.status_code == 200
    assert b"REMS enrolment" in response.content
    assert not TreatmentCourse.objects.exists()


def test_a_caution_override_from_the_form_is_audited(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    patient.rems_patient_id, patient.rems_enrolled_on = "R-1", world.clinic_a.today()
    patient.save()
    signed = helpers.assessment(patient, world.prescriber, seizure_disorder=True)
    response = signed_in(world.prescriber).post(
        _course_new_url(patient, signed),
        _esketamine_post(world, caution_override_reason="Neurology cleared."),
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action=AuditAction.OVERRIDE)
    assert entry.reason == "Neurology cleared."
    assert entry.ip is not None or entry.request_id  # recorded from the request


def test_an_iv_dose_above_half_a_mg_per_kg_is_asked_for_its_reason(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    measure(patient, world.prescriber)
    signed = helpers.assessment(patient, world.prescriber, drug="ketamine")
    data = {
        "protocol": "iv_ketamine_standard",
        "start_date": (world.clinic_a.today() + timedelta(days=1)).isoformat(),
        "indication": "trd",
        "responsible_prescriber": world.prescriber.pk,
        "maintenance_sessions": 0,
        "per_week": 2,
        "mg_per_kg": "0.6",
        "weight_basis": "actual",
        "infusion_minutes": 40,
        "dose_mg": 56,
    }
    client = signed_in(world.prescriber)
    response = client.post(_course_new_url(patient, signed), data)
    assert response.status_code == 200
    assert b"above the standard 0.5 mg/kg" in response.content
    data["dose_reason"] = "Partial response at 0.5 mg/kg."
    assert client.post(_course_new_url(patient, signed), data).status_code == 302
    course = TreatmentCourse.objects.get()
    assert course.dose_mg is None
    assert course.appointments.count() == 6


def test_a_nurse_cannot_start_a_course(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    signed = helpers.assessment(patient, world.prescriber)
    response = signed_in(world.nurse).post(
        _course_new_url(patient, signed), _esketamine_post(world)
    )
    assert response.status_code == 403
    assert not TreatmentCourse.objects.exists()


def test_a_nurse_cannot_sign_an_assessment(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    unsigned = helpers.assessment(patient, world.prescriber, sign=False)
    url = reverse(
        "treatment:assessment", kwargs={"patient_id": patient.pk, "assessment_id": unsigned.pk}
    )
    assert signed_in(world.nurse).post(url).status_code == 403
    unsigned.refresh_from_db()
    assert not unsigned.is_signed
    assert signed_in(world.prescriber).post(url).status_code == 302
    unsigned.refresh_from_db()
    assert unsigned.signed_by == world.prescriber


def test_it_hides_other_clinics_courses(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    course = helpers.esketamine_course(patient, world.prescriber)
    url = reverse("treatment:course", kwargs={"course_id": course.pk})
    assert signed_in(world.admin_b).get(url).status_code == 404
    assert signed_in(world.prescriber_b).get(url).status_code == 404
    signed = course.assessment
    assert signed_in(world.prescriber_b).get(_course_new_url(patient, signed)).status_code == 404


def test_the_front_desk_sees_the_schedule_but_not_the_scores(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    course = helpers.esketamine_course(patient, world.prescriber)
    page = signed_in(world.staff_a["front_desk"]).get(
        reverse("treatment:course", kwargs={"course_id": course.pk})
    )
    assert page.status_code == 200
    assert page.content.count(b'id="session-') == 12
    assert b'id="induction"' not in page.content
    assert b'id="pause-form"' not in page.content


def test_a_prescriber_pauses_and_resumes_with_the_labels_guidance(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    start = world.clinic_a.today() - timedelta(weeks=6)  # label week 7 today
    course = helpers.esketamine_course(patient, world.prescriber, start=start)
    url = reverse("treatment:course", kwargs={"course_id": course.pk})
    client = signed_in(world.prescriber)
    refused = client.post(url, {"action": "pause", "pause-reason": ""})
    assert refused.status_code == 200
    assert b"This field is required" in refused.content
    assert client.post(url, {"action": "pause", "pause-reason": "Travel."}).status_code == 302
    page = client.get(url)
    assert b"Paused since" in page.content
    # both readings of the label's missed-dose guidance, with the source
    assert b"continue the current schedule" in page.content
    assert b"consider returning to the previous frequency" in page.content
    assert "clinical.md §2.2".encode() in page.content
    response = client.post(
        url,
        {
            "action": "resume",
            "resume-resume_on": world.clinic_a.today().isoformat(),
            "resume-depression_worse": "on",
        },
        follow=True,
    )
    assert b"weekly -&gt; twice weekly" in response.content
    course.refresh_from_db()
    assert course.status == "active"


def test_the_front_desk_cannot_pause_a_course(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    course = helpers.esketamine_course(patient, world.prescriber)
    url = reverse("treatment:course", kwargs={"course_id": course.pk})
    response = signed_in(world.staff_a["front_desk"]).post(
        url, {"action": "pause", "pause-reason": "x"}
    )
    assert response.status_code == 403
    course.refresh_from_db()
    assert course.status == "active"


def test_a_prescriber_records_the_decision_after_the_induction(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    course = helpers.esketamine_course(
        patient, world.prescriber, start=world.clinic_a.today() - timedelta(weeks=5)
    )
    url = reverse("treatment:course", kwargs={"course_id": course.pk})
    client = signed_in(world.prescriber)
    assert b'id="decision-form"' in client.get(url).content
    response = client.post(
        url, {"action": "decide", "decision": "maintenance", "maintenance_sessions": 2}
    )
    assert response.status_code == 302
    course.refresh_from_db()
    assert course.status == "maintenance"
    assert course.appointments.count() == 14
    assert b'id="decision-form"' not in client.get(url).content


def test_an_integration_session_is_added_from_the_course_page(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    course = helpers.esketamine_course(patient, world.prescriber)
    url = reverse("treatment:course", kwargs={"course_id": course.pk})
    client = signed_in(world.staff_a["front_desk"])
    day = (world.clinic_a.today() + timedelta(days=3)).isoformat()
    assert client.post(url, {"action": "integration", "day": day}).status_code == 302
    assert course.appointments.filter(kind="integration").count() == 1
    bad = client.post(url, {"action": "integration", "day": "next tuesday"}, follow=True)
    assert b"YYYY-MM-DD" in bad.content
    assert course.appointments.filter(kind="integration").count() == 1


def test_a_prescriber_amends_the_weight_basis_with_a_reason(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber, sex_at_birth="male")
    measure(patient, world.prescriber, weight="120.0", height="180.0")
    signed = helpers.assessment(patient, world.prescriber, drug="ketamine")
    course = services.start_course(
        Actor.system(world.clinic_a, user=world.prescriber, label="test"),
        patient,
        signed,
        protocol="iv_ketamine_standard",
        start_date=world.clinic_a.today() + timedelta(days=1),
        indication="trd",
        responsible_prescriber=world.prescriber,
        mg_per_kg=Decimal("0.5"),
    )
    url = reverse("treatment:course", kwargs={"course_id": course.pk})
    client = signed_in(world.prescriber)
    assert b"Change the weight basis" in client.get(url).content
    refused = client.post(url, {"action": "weight_basis", "basis-weight_basis": "ideal"})
    assert refused.status_code == 200
    course.refresh_from_db()
    assert course.weight_basis == "actual"
    done = client.post(
        url,
        {"action": "weight_basis", "basis-weight_basis": "ideal", "basis-reason": "BMI 37."},
    )
    assert done.status_code == 302
    course.refresh_from_db()
    assert (course.weight_basis, course.dosing_weight_kg) == ("ideal", Decimal("75.0"))
    nurse = signed_in(world.nurse).post(
        url, {"action": "weight_basis", "basis-weight_basis": "actual", "basis-reason": "x"}
    )
    assert nurse.status_code == 403
