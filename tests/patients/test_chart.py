from __future__ import annotations

from django.urls import reverse

from ketaclinic.audit.models import AuditEntry
from tests.conftest import measure, register, signed_in


def test_it_shows_the_chart_with_latest_weight_and_body_size(world):
    patient = register(world.clinic_a, world.nurse)
    measure(patient, world.nurse, weight="92.0", height="180.0")
    response = signed_in(world.nurse).get(reverse("patients:chart", args=[patient.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Ann Smith" in body and "92.0 kg" in body
    assert "28.4" in body  # BMI 92 / 1.8^2 = 28.40
    assert "Registered" in body


def test_one_chart_view_adds_exactly_one_read_entry(world):
    patient = register(world.clinic_a, world.nurse)
    before = AuditEntry.objects.count()
    signed_in(world.nurse).get(reverse("patients:chart", args=[patient.pk]))
    entries = list(AuditEntry.objects.order_by("sequence")[before:])
    assert [(e.action, e.object_type, e.patient_id) for e in entries] == [
        ("read", "patient_chart", patient.pk)
    ]


def test_front_desk_sees_demographics_but_not_clinical_sections(world):
    patient = register(world.clinic_a, world.nurse)
    measure(patient, world.nurse, weight="81.5")
    response = signed_in(world.staff_a["front_desk"]).get(
        reverse("patients:chart", args=[patient.pk])
    )
    assert response.status_code == 200
    assert "81.5" not in response.content.decode()
