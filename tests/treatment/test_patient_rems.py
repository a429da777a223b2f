"""The patient form records the Spravato REMS enrolment an esketamine course needs."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from ketaclinic.audit.models import AuditEntry
from ketaclinic.patients.models import Patient
from tests.conftest import register, signed_in


def _form_data(patient, **rems):  # type: ignore[no-untyped-def]
    data = {
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "date_of_birth": patient.date_of_birth.isoformat(),
        "sex_at_birth": patient.sex_at_birth,
        "status": patient.status,
        "phone": patient.phone,
        "address_line1": patient.address_line1,
        "city": patient.city,
        "state": patient.state,
        "rems_patient_id": "",
        "rems_enrolled_on": "",
    }
    data.update(rems)
    return data


def _edit(patient) -> str:  # type: ignore[no-untyped-def]
    return reverse("patients:edit", kwargs={"patient_id": patient.pk})


def test_the_front_desk_records_the_rems_enrolment(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    client = signed_in(world.staff_a["front_desk"])
    assert b"Spravato REMS enrolment" in client.get(_edit(patient)).content
    day = timezone.localdate() - timedelta(days=2)
    response = client.post(
        _edit(patient), _form_data(patient, rems_patient_id="SPR-12345", rems_enrolled_on=day)
    )
    assert response.status_code == 302
    patient.refresh_from_db()
    assert (patient.rems_patient_id, patient.rems_enrolled_on) == ("SPR-12345", day)
    entry = AuditEntry.objects.filter(object_type="patient", patient_id=patient.pk).last()
    assert set(entry.detail["fields"]) == {"rems_patient_id", "rems_enrolled_on"}


def test_a_rems_enrolment_date_in_the_future_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    response = signed_in(world.staff_a["front_desk"]).post(
        _edit(patient),
        _form_data(
            patient,
            rems_patient_id="SPR-1",
            rems_enrolled_on=timezone.localdate() + timedelta(days=1),
        ),
    )
    assert response.status_code == 200
    assert b"cannot be in the future" in response.content
    assert Patient.objects.get(pk=patient.pk).rems_patient_id == ""


def test_a_rems_id_needs_its_date_and_the_date_its_id(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    client = signed_in(world.staff_a["front_desk"])
    response = client.post(_edit(patient), _form_data(patient, rems_patient_id="SPR-1"))
    assert b"Enter the date the patient was enrolled." in response.content
    # two days back: "today" differs between the server's and the clinic's zone near midnight
    response = client.post(
        _edit(patient),
        _form_data(patient, rems_enrolled_on=timezone.localdate() - timedelta(days=2)),
    )
    assert b"Enter the patient&#x27;s REMS id." in response.content
    response = client.post(
        _edit(patient),
        _form_data(patient, rems_patient_id="SPR 1; drop", rems_enrolled_on="2024-01-02"),
    )
    assert b"only letters, digits and dashes" in response.content
    response = client.post(
        _edit(patient), _form_data(patient, rems_patient_id="SPR-1", rems_enrolled_on="2018-05-01")
    )
    assert b"began in 2019" in response.content
    assert Patient.objects.get(pk=patient.pk).rems_enrolled_on is None
