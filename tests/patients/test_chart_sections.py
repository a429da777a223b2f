"""What the cheaper chart still shows: who viewed it (names, clinic-time stamps, system
entries) and the measurement form, whose blank fields are rendered once per process."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from django.template.loader import render_to_string
from django.test import override_settings
from django.urls import reverse

from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction, AuditEntry
from ketaclinic.patients import views
from ketaclinic.patients.forms import MeasurementForm
from tests.conftest import register, signed_in


def viewer_rows(html: str) -> list[tuple[str, str]]:
    table = html.split('<table id="chart-viewers">')[1].split("</table>")[0]
    return re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td></tr>", table)


def test_the_viewers_table_names_each_viewer_at_clinic_time_and_system_reads(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    url = reverse("patients:chart", args=[patient.pk])
    signed_in(world.prescriber).get(url)
    audit.record(
        Actor.system(world.clinic_a), AuditAction.READ, "patient_chart", patient.pk,
        patient_id=patient.pk,
    )  # fmt: skip
    zone = ZoneInfo("America/New_York")  # Clinic A's, never UTC's offset
    expected = [
        (at.astimezone(zone).strftime("%Y-%m-%d %H:%M"), name)
        for at, name in AuditEntry.objects.filter(patient_id=patient.pk, action=AuditAction.READ)
        .order_by("-at")
        .values_list("at", "actor__username")
    ]
    names = {world.prescriber.username: world.prescriber.display_name, None: "system"}
    rows = viewer_rows(signed_in(world.nurse).get(url).content.decode())
    assert rows == [(when, names[username]) for when, username in expected]
    assert len(rows) == 2
    assert world.prescriber.display_name  # a real name, not the "system" fallback


def test_the_viewers_table_lists_the_latest_15_views_newest_first(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    url = reverse("patients:chart", args=[patient.pk])
    for _ in range(17):
        signed_in(world.nurse).get(url)
    stamps = list(
        AuditEntry.objects.filter(patient_id=patient.pk, action=AuditAction.READ)
        .order_by("-at")
        .values_list("at", flat=True)[:15]
    )
    rows = viewer_rows(signed_in(world.nurse).get(url).content.decode())
    zone = ZoneInfo("America/New_York")
    assert [when for when, _ in rows] == [
        at.astimezone(zone).strftime("%Y-%m-%d %H:%M") for at in stamps
    ]
    assert {who for _, who in rows} == {world.nurse.display_name}


def form_grid(html: str) -> str:
    form = html.split('id="measurement-form">')[1].split("</form>")[0]
    match = re.search(r'<div class="grid">(.*)</div>\s*<button', form, re.S)
    assert match, form
    return match.group(1)


def test_the_chart_shows_the_blank_measurement_form_as_a_fresh_render_would(world):  # type: ignore[no-untyped-def]
    # The cache is sound only while the blank form renders the same for every request.
    form = MeasurementForm()
    assert form.initial == {} and all(f.initial is None for f in form.fields.values())
    patient = register(world.clinic_a, world.nurse)
    url = reverse("patients:chart", args=[patient.pk])
    fresh = render_to_string("patients/_measurement_grid.html", {"form": MeasurementForm()})
    assert 'name="weight_kg"' in fresh and 'name="measured_at"' in fresh
    for _ in range(2):  # the first view fills the cache, the second reads it
        html = signed_in(world.nurse).get(url).content.decode()
        assert form_grid(html) == fresh
        assert f'action="{reverse("patients:measurement_add", args=[patient.pk])}"' in html
        assert 'name="csrfmiddlewaretoken"' in html.split('id="measurement-form">')[1]
    with override_settings(DEBUG=True):
        assert views.blank_measurement_fields() == fresh


def test_a_bound_form_with_errors_still_shows_them_on_the_measurement_page(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    response = signed_in(world.nurse).post(
        reverse("patients:measurement_add", args=[patient.pk]), {"weight_kg": "0"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Weight must be more than 0 kg" in html and "has-error" in html


def test_roles_without_measurement_rights_get_no_form(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    html = (
        signed_in(world.staff_a["front_desk"])
        .get(reverse("patients:chart", args=[patient.pk]))
        .content.decode()
    )
    assert 'id="measurement-form"' not in html


def test_a_changed_responsible_prescriber_shows_their_name_in_the_history(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    # As starting a course does when the patient has no responsible prescriber yet.
    patient.responsible_prescriber = world.prescriber
    patient._history_user = world.prescriber
    patient.save(update_fields=["responsible_prescriber"])
    page = signed_in(world.nurse).get(reverse("patients:chart", args=[patient.pk]))
    history = page.content.decode()
    assert world.prescriber.display_name in history
    assert f"→ {world.prescriber.pk}<" not in history
