"""The dosing pages as a nurse, a prescriber, the front desk and an auditor use them: the
session screen and its forms, the chair board (and its query budget), the REMS monitoring
form and its PDF, after-care instructions and the clinic's settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ketaclinic.accounts.roles import Role
from ketaclinic.dosing import services
from ketaclinic.dosing.models import DosingSession, SessionState, VitalsReading
from ketaclinic.inventory.models import EntryKind, LedgerEntry
from tests.conftest import register, signed_in
from tests.dosing.conftest import (
    booked,
    checked_in,
    day,
    esketamine_course,
    fresh,
    predose,
    run_esketamine,
)
from tests.inventory.test_reports import contains_all, pdf_text


def session_url(session: DosingSession) -> str:
    return reverse("dosing:session", kwargs={"session_id": session.pk})


def post(client: Any, session: DosingSession, action: str, prefix: str, **fields: Any) -> Any:
    data = {"action": action}
    for key, value in fields.items():
        data[f"{prefix}-{key}"] = value
    return client.post(session_url(session), data)


@pytest.fixture
def esk(clinic):  # type: ignore[no-untyped-def]
    """The second esketamine session of a course (84 mg: three devices), checked in on the
    fixed day at 08:30, with two kits left in stock; the first (56 mg) ran four days before."""
    d = day()
    course = esketamine_course(clinic, clinic.stock.patient, d - timedelta(days=4), dose=84)
    first, *kits = clinic.kits(3)
    run_esketamine(
        clinic,
        booked(clinic, course, 1, clinic.at(d - timedelta(days=4), 8, 30)),
        d - timedelta(days=4),
        kit=first,
    )
    appt = booked(clinic, course, 2, clinic.at(d, 8, 30))
    session = checked_in(clinic, appt, clinic.at(d, 8, 30))
    return session, kits


def nurse(clinic):  # type: ignore[no-untyped-def]
    return signed_in(clinic.stock.world.nurse)


def prescriber(clinic):  # type: ignore[no-untyped-def]
    return signed_in(clinic.stock.world.prescriber)


PREDOSE = {
    "at": "08:45",
    "sbp": "150",
    "dbp": "95",
    "hr": "76",
    "spo2": "98",
    "rr": "14",
    "fasting": "yes",
    "ride_name": "Sam Carter",
    "ride_phone": "555-0199",
    "pregnancy_status": "not_pregnant",
    "scales_done": "no",
    "scales_skip_reason": "declined today",
    "cssrs_reviewed": "on",
    **{
        f"med_{k}": "no"
        for k in ("benzodiazepines", "sedative_hypnotics", "opioids", "psychostimulants", "maois")
    },
}


def test_the_predose_form_records_and_a_high_bp_blocks_until_the_prescriber_decides(clinic, esk):  # type: ignore[no-untyped-def]
    session, kits = esk
    client = nurse(clinic)
    page = client.get(session_url(session))
    assert page.status_code == 200
    assert b"Record the pre-dose checks" in page.content
    response = post(client, session, "predose", "pre", version=session.version, **PREDOSE)
    assert response.status_code == 302, response.content.decode()[:3000]
    page = client.get(session_url(session))
    text = page.content.decode()
    assert "Dosing is blocked" in text and "awaiting-decision" in text
    assert 'id="device-form"' not in text  # no dose form while blocked
    # A nurse cannot decide.
    refused = post(
        client,
        session,
        "decision",
        "dec",
        version=fresh(session).version,
        decision="proceed",
        reason="x",
    )
    assert refused.status_code == 403
    doctor = prescriber(clinic)
    assert 'id="decision-form"' in doctor.get(session_url(session)).content.decode()
    ok = post(
        doctor,
        session,
        "decision",
        "dec",
        version=fresh(session).version,
        decision="proceed",
        reason="Usual BP 145/92; benefit outweighs",
    )
    assert ok.status_code == 302
    text = client.get(session_url(session)).content.decode()
    assert 'id="device-form"' in text and "Give device 1" in text


def test_a_missing_answer_names_the_field_and_stores_nothing(clinic, esk):  # type: ignore[no-untyped-def]
    session, _ = esk
    client = nurse(clinic)
    data = dict(PREDOSE)
    data.pop("fasting")
    response = post(client, session, "predose", "pre", version=session.version, **data)
    assert response.status_code == 200
    text = response.content.decode()
    assert "Answer: Fasting as instructed?" in text
    assert 'value="Sam Carter"' in text  # the user's input is kept
    assert not VitalsReading.objects.filter(session=session).exists()


def _through_gate(clinic, session):  # type: ignore[no-untyped-def]
    predose(clinic, session, clinic.at(day(), 8, 45))
    return fresh(session)


def test_a_device_too_soon_is_refused_with_the_reason_and_accepted_at_five_minutes(clinic, esk):  # type: ignore[no-untyped-def]
    session, kits = esk
    session = _through_gate(clinic, session)
    client = nurse(clinic)
    for at in ("09:00", "09:05"):
        r = post(client, session, "device", "dev", container=kits[0].pk, at=at)
        assert r.status_code == 302, r.content.decode()[:2000]
    refused = post(client, session, "device", "dev", container=kits[1].pk, at="09:08")
    assert refused.status_code == 200
    assert "at least 5 minutes apart" in refused.content.decode()
    assert fresh(session).doses.count() == 2
    ok = post(client, session, "device", "dev", container=kits[1].pk, at="09:10")
    assert ok.status_code == 302
    assert fresh(session).doses.count() == 3
    administered = LedgerEntry.objects.filter(
        dosing_session_id=session.pk, kind=EntryKind.ADMINISTRATION
    )
    assert administered.count() == 3


def test_an_alert_reading_shows_a_banner_and_is_highlighted(clinic, esk):  # type: ignore[no-untyped-def]
    session, kits = esk
    session = _through_gate(clinic, session)
    for n in range(3):
        services.record_device(
            clinic.nurse,
            session,
            container=kits[0] if n < 2 else kits[1],
            at=clinic.at(day(), 9, 5 * n),
        )
    client = nurse(clinic)
    r = post(client, session, "vitals", "vs", at="09:50", sbp="185", dbp="100", hr="88", spo2="97")
    assert r.status_code == 302
    text = client.get(session_url(session)).content.decode()
    assert 'id="vitals-alert"' in text and "systolic BP at or above 180" in text
    assert 'class="num high">185/100' in text
    assert "<svg" in text


def test_a_stale_edit_gets_a_conflict_message_and_keeps_the_input(clinic, esk):  # type: ignore[no-untyped-def]
    session, _ = esk
    client = nurse(clinic)
    old_version = session.version
    services.update_note(
        clinic.prescriber, session, expected_version=old_version, note="Prescriber's note"
    )
    response = post(
        client, session, "note", "note", version=old_version, note="Nurse's note typed meanwhile"
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert 'id="conflict"' in text
    assert "Nurse&#x27;s note typed meanwhile" in text
    assert fresh(session).note == "Prescriber's note"
    # Submitting again, having seen the page, saves.
    again = post(
        client, session, "note", "note", version=fresh(session).version, note="Nurse's note"
    )
    assert again.status_code == 302
    assert fresh(session).note == "Nurse's note"


def test_discharge_is_refused_naming_each_unmet_criterion(clinic, esk):  # type: ignore[no-untyped-def]
    session, kits = esk
    session = _through_gate(clinic, session)
    for n in range(3):
        services.record_device(
            clinic.nurse,
            session,
            container=kits[0] if n < 2 else kits[1],
            at=clinic.at(day(), 9, 5 * n),
        )
    client = nurse(clinic)
    r = post(
        client,
        session,
        "discharge",
        "dis",
        version=fresh(session).version,
        at="10:40",
        ride_present="on",
    )
    assert r.status_code == 200
    text = r.content.decode()
    assert "11:00" in text  # the earliest time is named
    assert fresh(session).state != SessionState.DISCHARGED


def test_the_front_desk_sees_the_board_without_clinical_values_and_not_the_session(clinic, esk):  # type: ignore[no-untyped-def]
    session, _ = esk
    desk = signed_in(clinic.stock.world.staff_a[Role.FRONT_DESK])
    assert desk.get(session_url(session)).status_code == 403
    # the session runs on a fixed past day, so today's board is empty; the page still renders
    board = desk.get(reverse("dosing:board"))
    assert board.status_code == 200
    assert "Since dose" not in board.content.decode()
    auditor = signed_in(clinic.stock.world.staff_a[Role.AUDITOR])
    page = auditor.get(session_url(session))
    assert page.status_code == 200 and 'id="predose-form"' not in page.content.decode()
    assert (
        post(auditor, session, "note", "note", version=session.version, note="x").status_code == 403
    )


def test_the_pmf_page_and_pdf_hold_the_session_values(clinic):  # type: ignore[no-untyped-def]
    d = day()
    course = esketamine_course(clinic, clinic.stock.patient, d - timedelta(days=4), dose=84)
    kit = clinic.kits(2)
    run_esketamine(
        clinic,
        booked(clinic, course, 1, clinic.at(d - timedelta(days=4), 8, 30)),
        d - timedelta(days=4),
        kit=kit[0],
    )
    appt = booked(clinic, course, 2, clinic.at(d, 8, 30))
    session = run_esketamine(clinic, appt, d, kit=kit[1])
    client = nurse(clinic)
    url = reverse("dosing:pmf", kwargs={"session_id": session.pk})
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "REMS-P-42" in text and "ESK1" in text
    pdf = client.get(url + "?format=pdf")
    assert pdf["Content-Type"] == "application/pdf"
    missing = contains_all(pdf_text(pdf.content), "REMS-P-42", "ESK1", "84 mg", "128/82")
    assert missing == []
    # Mark it submitted.
    r = client.post(
        url, {"confirmation_number": "PMF-778899", "submitted_on": timezone.localdate().isoformat()}
    )
    assert r.status_code == 302
    listing = client.get(reverse("dosing:pmf_list")).content.decode()
    assert "PMF-778899" in listing


def test_after_care_prints_the_clinic_text(clinic, esk):  # type: ignore[no-untyped-def]
    session, _ = esk
    page = nurse(clinic).get(reverse("dosing:aftercare", kwargs={"session_id": session.pk}))
    assert page.status_code == 200
    assert "Do not drive" in page.content.decode()


def test_the_settings_page_saves_the_after_care_text(clinic):  # type: ignore[no-untyped-def]
    admin = signed_in(clinic.stock.world.staff_a[Role.CLINIC_ADMIN])
    page = admin.get(reverse("dosing:settings"))
    assert page.status_code == 200
    form = page.context["form"]
    data = {k: form.initial.get(k) for k in form.fields}
    data["aftercare_text"] = "Rest today. No driving until tomorrow after sleep."
    r = admin.post(reverse("dosing:settings"), data)
    assert r.status_code == 302, r.content.decode()[:2000]
    assert services.settings_for(clinic.stock.clinic).aftercare_text.startswith("Rest today")
    assert signed_in(clinic.stock.world.nurse).get(reverse("dosing:settings")).status_code == 403


def _in_progress(clinic, n: int, offset: int = 0) -> list[DosingSession]:  # type: ignore[no-untyped-def]
    """n esketamine sessions in progress today: checked in, through the gate, one device given."""
    now = timezone.now()
    local = timezone.localtime(now, clinic.tz)
    starts = local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)
    today = local.date()
    made = []
    for i in range(offset, offset + n):
        patient = register(
            clinic.stock.clinic, clinic.stock.world.nurse, given_name=f"Pat{i}", family_name="Board"
        )
        course = esketamine_course(clinic, patient, today, dose=56)
        appt = course.appointments.get(number=1)
        from ketaclinic.treatment import services as treatment
        from tests.treatment.helpers import chair

        treatment.book(
            clinic.nurse,
            appt,
            starts_at=starts,
            chair=chair(clinic.stock.clinic, f"Chair {i}"),
            reason="test",
        )
        appt.refresh_from_db()
        session = checked_in(clinic, appt, now - timedelta(minutes=2))
        predose(clinic, session, now - timedelta(minutes=1))
        kit = clinic.kits(1, lot=f"B{i}")[0]
        services.record_device(clinic.nurse, fresh(session), container=kit, at=now)
        made.append(fresh(session))
    return made


def _board_queries(client) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Queries of one board refresh. The sign-in session's own save (which the idle timer
    makes on some requests, not per row) is left out: it is not the board's cost."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("dosing:board_rows"))
    assert response.status_code == 200
    board = [
        q["sql"]
        for q in ctx.captured_queries
        if "django_session" not in q["sql"] and not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]
    return len(board), response.content.decode()


def test_the_board_costs_the_same_queries_for_one_session_or_twelve(clinic):  # type: ignore[no-untyped-def]
    client = nurse(clinic)
    client.get(reverse("dosing:board"))  # warm the session and the clinic's settings row
    _in_progress(clinic, 1)
    one, text = _board_queries(client)
    assert text.count('<tr class="state-') == 1 and "Pat0 Board" in text
    _in_progress(clinic, 11, offset=1)
    twelve, text = _board_queries(client)
    assert text.count('<tr class="state-') == 12
    print(f"chair board rows: {one} queries with 1 session, {twelve} with 12")
    assert twelve == one, (one, twelve)
    page = client.get(reverse("dosing:board")).content.decode()
    assert 'data-poll-url="/dosing/board/rows/"' in page and "dosing/board.js" in page
    # The front desk sees who is where and in what state, but no clinical figures.
    desk = signed_in(clinic.stock.world.staff_a[Role.FRONT_DESK])
    text = desk.get(reverse("dosing:board_rows")).content.decode()
    assert "Pat0 Board" in text and "Dosing" in text and "Next vitals" not in text


def test_after_care_text_that_tells_a_patient_to_dose_is_refused(clinic):  # type: ignore[no-untyped-def]
    admin = signed_in(clinic.stock.world.staff_a[Role.CLINIC_ADMIN])
    form = admin.get(reverse("dosing:settings")).context["form"]
    data = {k: form.initial.get(k) for k in form.fields}
    data["aftercare_text"] = "If you feel low tonight, use another nasal spray device."
    r = admin.post(reverse("dosing:settings"), data)
    assert "must never tell a patient to take a dose" in r.content.decode()
    assert "nasal spray" not in services.settings_for(clinic.stock.clinic).aftercare_text


def test_an_amendment_after_signing_shows_beside_the_original(clinic):  # type: ignore[no-untyped-def]
    d = day()
    course = esketamine_course(clinic, clinic.stock.patient, d - timedelta(days=4), dose=84)
    kits = clinic.kits(2)
    first = booked(clinic, course, 1, clinic.at(d - timedelta(days=4), 8, 30))
    run_esketamine(clinic, first, d - timedelta(days=4), kit=kits[0])
    session = run_esketamine(clinic, booked(clinic, course, 2, clinic.at(d, 8, 30)), d, kit=kits[1])
    services.sign(clinic.nurse, session, expected_version=session.version)
    client = nurse(clinic)
    page = client.get(session_url(session)).content.decode()
    assert 'id="note-form"' not in page and 'id="amend-form"' in page
    reading = session.vitals.get(sbp=138)
    r = client.post(
        session_url(session),
        {
            "action": "amend",
            "amend-target": f"vitals:{reading.pk}:sbp",
            "amend-new_value": "136",
            "amend-reason": "Transcription error: the monitor showed 136",
        },
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    page = client.get(session_url(session)).content.decode()
    assert "<del>138/86</del> <ins>136/86</ins>" in page
    assert "Transcription error: the monitor showed 136" in page
    fresh_reading = VitalsReading.objects.get(pk=reading.pk)
    assert fresh_reading.sbp == 138  # the original is never edited in place


def test_the_pmf_list_warns_as_the_deadline_nears_and_flags_an_overdue_form(clinic):  # type: ignore[no-untyped-def]
    d = day()  # ten days ago: this session's form was due three days ago
    course = esketamine_course(clinic, clinic.stock.patient, d - timedelta(days=4), dose=84)
    kits = clinic.kits(2)
    first = booked(clinic, course, 1, clinic.at(d - timedelta(days=4), 8, 30))
    run_esketamine(clinic, first, d - timedelta(days=4), kit=kits[0])
    run_esketamine(clinic, booked(clinic, course, 2, clinic.at(d, 8, 30)), d, kit=kits[1])
    page = nurse(clinic).get(reverse("dosing:pmf_list")).content.decode()
    assert page.count('class="badge danger">overdue by') == 2  # both sessions' forms
    assert "overdue by 3 days" in page


def test_a_dose_change_is_the_prescribers_and_leaving_early_is_recorded(clinic, esk):  # type: ignore[no-untyped-def]
    session, kits = esk
    data = {"version": session.version, "dose_mg": "56", "reason": "Dizzy for hours last time"}
    assert post(nurse(clinic), session, "dose_change", "chg", **data).status_code == 403
    r = post(prescriber(clinic), session, "dose_change", "chg", **data)
    assert r.status_code == 302, r.content.decode()[:2000]
    assert fresh(session).dose_mg == 56
    session = _through_gate(clinic, session)
    services.record_device(clinic.nurse, session, container=kits[0], at=clinic.at(day(), 9, 0))
    client = nurse(clinic)
    r = post(client, session, "leave", "ama", version=fresh(session).version, at="09:20", reason="")
    assert "This field is required" in r.content.decode()  # nothing saved without a reason
    r = post(
        client,
        session,
        "leave",
        "ama",
        version=fresh(session).version,
        at="09:20",
        reason="Insisted on leaving; advised to stay; partner drove.",
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    s = fresh(session)
    assert s.state == SessionState.DISCHARGED and s.discharge_kind == "against_advice"
    assert "Left early / against medical advice" in client.get(session_url(s)).content.decode()


def _page_queries(client, session) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(session_url(session))
    assert response.status_code == 200
    found = [
        q["sql"]
        for q in ctx.captured_queries
        if "django_session" not in q["sql"] and not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]
    return len(found)


def test_the_session_screen_costs_the_same_queries_with_more_rows(clinic, esk):  # type: ignore[no-untyped-def]
    session, kits = esk
    session = _through_gate(clinic, session)
    for n in range(3):
        kit = kits[0] if n < 2 else kits[1]
        services.record_device(clinic.nurse, session, container=kit, at=clinic.at(day(), 9, 5 * n))
    client = nurse(clinic)
    services.record_vitals(
        clinic.nurse, session, sbp=130, dbp=80, hr=70, spo2=98, taken_at=clinic.at(day(), 9, 50)
    )
    services.record_side_effect(
        clinic.nurse, session, kind="dizziness", severity="mild", onset_at=clinic.at(day(), 9, 45)
    )
    few = _page_queries(client, session)
    for minute in range(0, 50, 5):
        services.record_vitals(
            clinic.prescriber,
            session,
            sbp=150,
            dbp=85,
            hr=75,
            spo2=97,
            taken_at=clinic.at(day(), 10, minute),
        )
        services.record_side_effect(
            clinic.nurse,
            session,
            kind="nausea",
            severity="mild",
            onset_at=clinic.at(day(), 10, minute),
        )
    many = _page_queries(client, session)
    print(f"session screen: {few} queries with 2 readings and 1 effect, {many} with 12 and 11")
    assert many == few, (few, many)
