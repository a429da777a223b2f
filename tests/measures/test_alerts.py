"""Alerts: which responses open one, who gets it, how it is acknowledged, and when it goes to
the clinic admins because nobody did."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from ketaclinic.accounts.roles import Role
from ketaclinic.audit.models import AuditEntry
from ketaclinic.measures import services, tasks
from ketaclinic.measures.models import Alert, ScaleResponse
from tests.conftest import make_staff, register, signed_in
from tests.measures.helpers import actor, counts, cssrs, phq9, phq9_totalling, record


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    world.prescriber.email = "prescriber@clinic-a.example"
    world.prescriber.save(update_fields=["email"])
    admin = world.staff_a[Role.CLINIC_ADMIN]
    admin.email = "admin@clinic-a.example"
    admin.save(update_fields=["email"])
    world.admin_b.email = "admin@clinic-b.example"
    world.admin_b.save(update_fields=["email"])
    p = register(world.clinic_a, world.nurse, given_name="Rowan", family_name="Quill")
    p.responsible_prescriber = world.prescriber
    p.save()
    return p


def reason_codes(alert: Alert) -> list[str]:
    return [r["code"] for r in alert.reasons]


def only_alert() -> Alert:
    alerts = list(Alert.objects.all())
    assert len(alerts) == 1, alerts
    return alerts[0]


def high_alert(world, patient) -> Alert:  # type: ignore[no-untyped-def]
    record(world.nurse, patient, "phq9", phq9(q9=2))
    return Alert.objects.get(response__patient=patient, severity="high")


# --- the rules ------------------------------------------------------------------------------


@pytest.mark.parametrize("q9", [1, 2, 3])
def test_a_positive_phq9_item_9_opens_a_high_alert_even_when_the_total_is_tiny(world, patient, q9):  # type: ignore[no-untyped-def]
    response = record(world.nurse, patient, "phq9", phq9(q9=q9))
    assert response.total == q9 and response.band == "minimal"
    alert = only_alert()
    assert alert.severity == "high"
    assert reason_codes(alert) == ["suicidality"]
    assert alert.response == response and alert.patient == patient
    assert alert.clinic == world.clinic_a
    assert alert.is_open and alert.escalated_at is None
    assert "suicide item" in alert.reasons[0]["text"]


def test_a_phq9_without_item_9_opens_a_suicidality_unknown_alert(world, patient):  # type: ignore[no-untyped-def]
    response = record(world.nurse, patient, "phq9", phq9(1, 1, 1, q9=None))
    assert "suicidality_unknown" in response.flags
    alert = only_alert()
    assert alert.severity == "moderate"
    assert reason_codes(alert) == ["suicidality_unknown"]
    assert "not answered" in alert.reasons[0]["text"]


@pytest.mark.parametrize(
    "answers",
    [
        cssrs(q2=True, q3=True, q4=False, q5=False),  # method, no intent
        cssrs(q6=True, q6a=False),  # behaviour, but not in the past 3 months
    ],
)
def test_a_moderate_cssrs_screen_opens_an_alert_naming_the_level(world, patient, answers):  # type: ignore[no-untyped-def]
    response = record(world.nurse, patient, "cssrs_screen", answers)
    assert response.band == "moderate"
    alert = only_alert()
    assert "cssrs_moderate" in reason_codes(alert)
    assert "C-SSRS screener: moderate risk." in [r["text"] for r in alert.reasons]
    # Every Yes on the screener is also a positive suicide item: the alert is high-priority.
    assert "suicidality" in reason_codes(alert) and alert.severity == "high"


@pytest.mark.parametrize(
    "answers",
    [
        cssrs(q2=True, q3=True, q4=True, q5=False),  # intent
        cssrs(q2=True, q3=True, q4=True, q5=True),  # intent with a plan
        cssrs(q6=True, q6a=True),  # behaviour in the past 3 months
    ],
)
def test_a_high_cssrs_screen_opens_a_high_alert(world, patient, answers):  # type: ignore[no-untyped-def]
    response = record(world.nurse, patient, "cssrs_screen", answers)
    assert response.band == "high"
    alert = only_alert()
    assert alert.severity == "high"
    assert "cssrs_high" in reason_codes(alert)


def test_a_low_cssrs_screen_alerts_for_the_positive_item_but_not_for_the_level(world, patient):  # type: ignore[no-untyped-def]
    record(world.nurse, patient, "cssrs_screen", cssrs(q1=True))
    alert = only_alert()
    assert reason_codes(alert) == ["suicidality"]


def test_a_cssrs_answer_that_breaks_the_skip_logic_stores_nothing_and_opens_nothing(world, patient):  # type: ignore[no-untyped-def]
    before = counts()
    with pytest.raises(services.ScaleAnswerError) as caught:
        record(world.nurse, patient, "cssrs_screen", cssrs(q2=False, q4=True))
    assert any("item 4" in m for m in caught.value.messages)
    assert counts() == before


def test_a_rise_of_5_phq9_points_over_the_baseline_opens_an_alert(world, patient):  # type: ignore[no-untyped-def]
    now = timezone.now()
    record(
        world.nurse, patient, "phq9", phq9_totalling(6), administered_at=now - timedelta(days=30)
    )
    record(
        world.nurse, patient, "phq9", phq9_totalling(9), administered_at=now - timedelta(days=10)
    )
    assert not Alert.objects.exists()
    risen = record(world.nurse, patient, "phq9", phq9_totalling(11), administered_at=now)
    alert = only_alert()
    assert alert.response == risen
    assert alert.severity == "moderate"
    assert reason_codes(alert) == ["phq9_rise"]
    # Measured against the baseline (6), not the previous visit (9).
    assert alert.reasons[0]["text"] == "PHQ-9 rose 5 points over the baseline of 6."


def test_a_rise_of_4_phq9_points_opens_no_alert(world, patient):  # type: ignore[no-untyped-def]
    now = timezone.now()
    record(
        world.nurse, patient, "phq9", phq9_totalling(6), administered_at=now - timedelta(days=30)
    )
    record(world.nurse, patient, "phq9", phq9_totalling(10), administered_at=now)
    assert not Alert.objects.exists()


def test_the_first_phq9_is_the_baseline_and_a_fall_opens_nothing(world, patient):  # type: ignore[no-untyped-def]
    now = timezone.now()
    record(
        world.nurse, patient, "phq9", phq9_totalling(20), administered_at=now - timedelta(days=9)
    )
    record(world.nurse, patient, "phq9", phq9_totalling(3), administered_at=now)
    assert not Alert.objects.exists()


def test_a_response_with_nothing_to_worry_about_opens_no_alert_and_sends_nothing(
    world, patient, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        record(world.nurse, patient, "phq9", phq9(2, 2, 2, 2, 2, q9=0))
        record(world.nurse, patient, "gad7", [3] * 7)
        record(world.nurse, patient, "cssrs_screen", cssrs())
        record(world.nurse, patient, "madrs", [5, 5, 4, 4, 3, 3, 3, 3, 3, 0])
    assert ScaleResponse.objects.count() == 4
    assert not Alert.objects.exists()
    assert mail.outbox == []


def test_a_response_with_several_reasons_opens_one_alert_listing_them_all(world, patient):  # type: ignore[no-untyped-def]
    now = timezone.now()
    record(world.nurse, patient, "phq9", phq9_totalling(4), administered_at=now - timedelta(days=7))
    record(world.nurse, patient, "phq9", phq9_totalling(12, q9=2), administered_at=now)
    alert = only_alert()
    assert reason_codes(alert) == ["suicidality", "phq9_rise"]
    assert alert.severity == "high"


# --- who gets it ----------------------------------------------------------------------------


def test_the_alert_goes_to_the_patients_responsible_prescriber(world, patient):  # type: ignore[no-untyped-def]
    other = make_staff(world.clinic_a, "second_prescriber", Role.PRESCRIBER)
    patient.responsible_prescriber = other
    patient.save()
    alert = high_alert(world, patient)
    assert alert.assigned_to == other


def test_without_a_responsible_prescriber_the_clinics_first_prescriber_gets_it(world, patient):  # type: ignore[no-untyped-def]
    make_staff(world.clinic_a, "later_prescriber", Role.PRESCRIBER)
    patient.responsible_prescriber = None
    patient.save()
    alert = high_alert(world, patient)
    assert alert.assigned_to == world.prescriber


def test_the_prescriber_gets_an_email_with_a_link_and_no_clinical_detail(
    world, patient, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        response = record(world.nurse, patient, "phq9", phq9(3, 3, 3, 2, q9=3))
    alert = only_alert()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["prescriber@clinic-a.example"]
    assert "high-priority alert" in message.subject
    link = "http://127.0.0.1:8000" + reverse("measures:alert", args=[alert.pk])
    assert link in message.body
    text = (message.subject + message.body).lower()
    for detail in (
        str(response.total_display),
        response.band,
        "phq",
        "suicid",
        "item 9",
        "rowan",
        "quill",
        patient.mrn,
    ):
        assert detail.lower() not in text, detail


def test_nothing_is_emailed_before_the_response_is_committed(
    world, patient, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record(world.nurse, patient, "phq9", phq9(q9=1))
    assert mail.outbox == [] and len(callbacks) == 1


# --- acknowledging --------------------------------------------------------------------------


def test_a_clinician_acknowledges_an_alert_with_a_note_and_it_is_audited(world, patient):  # type: ignore[no-untyped-def]
    alert = high_alert(world, patient)
    note = "Phoned the patient: passive thoughts, no plan. Safety plan reviewed."
    client = signed_in(world.prescriber)
    page = client.get(reverse("measures:alert", args=[alert.pk]))
    assert page.status_code == 200 and 'id="acknowledge-form"' in page.content.decode()
    response = client.post(reverse("measures:alert", args=[alert.pk]), {"note": f"  {note}  "})
    assert response.status_code == 302 and response["Location"] == reverse("measures:alerts")
    alert.refresh_from_db()
    assert not alert.is_open
    assert alert.acknowledged_by == world.prescriber
    assert alert.acknowledgement_note == note
    entry = AuditEntry.objects.get(object_type="alert", object_id=str(alert.pk), action="update")
    assert entry.reason == note
    assert entry.actor == world.prescriber and entry.patient_id == patient.pk
    assert entry.detail == {"acknowledged": True}


@pytest.mark.parametrize("note", ["", "   \n  "])
def test_an_alert_cannot_be_acknowledged_without_a_note(world, patient, note):  # type: ignore[no-untyped-def]
    alert = high_alert(world, patient)
    audit_before = AuditEntry.objects.filter(action="update").count()
    response = signed_in(world.nurse).post(
        reverse("measures:alert", args=[alert.pk]), {"note": note}
    )
    assert response.status_code in (200, 400)
    assert "required" in response.content.decode()
    with pytest.raises(ValidationError) as caught:
        services.acknowledge_alert(actor(world.nurse), alert, note)
    assert "note is required" in str(caught.value)
    alert.refresh_from_db()
    assert alert.is_open and alert.acknowledgement_note == ""
    assert AuditEntry.objects.filter(action="update").count() == audit_before


def test_an_alert_cannot_be_acknowledged_twice(world, patient):  # type: ignore[no-untyped-def]
    alert = high_alert(world, patient)
    services.acknowledge_alert(actor(world.prescriber), alert, "Called the patient.")
    with pytest.raises(ValidationError) as caught:
        services.acknowledge_alert(actor(world.nurse), alert, "Called again.")
    assert "already acknowledged by Prescriber_A Tester" in str(caught.value)
    response = signed_in(world.nurse).post(
        reverse("measures:alert", args=[alert.pk]), {"note": "And again."}
    )
    assert response.status_code in (200, 400, 409)
    page = response.content.decode()
    # The page shows who acknowledged it and with what note, not a form to do it again.
    assert "Acknowledged" in page and "Called the patient." in page
    assert "And again." not in page and "acknowledge-form" not in page
    alert.refresh_from_db()
    assert alert.acknowledgement_note == "Called the patient."
    assert alert.acknowledged_by == world.prescriber
    assert AuditEntry.objects.filter(object_type="alert", action="update").count() == 1


@pytest.mark.parametrize("role", [Role.CLINIC_ADMIN, Role.AUDITOR])
def test_roles_that_only_view_alerts_cannot_acknowledge_them(world, patient, role):  # type: ignore[no-untyped-def]
    alert = high_alert(world, patient)
    client = signed_in(world.staff_a[role])
    page = client.get(reverse("measures:alert", args=[alert.pk]))
    assert page.status_code == 200 and "acknowledge-form" not in page.content.decode()
    response = client.post(reverse("measures:alert", args=[alert.pk]), {"note": "Seen."})
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.is_open


def test_the_front_desk_sees_no_alerts_and_another_clinic_gets_404(world, patient):  # type: ignore[no-untyped-def]
    alert = high_alert(world, patient)
    front_desk = signed_in(world.staff_a[Role.FRONT_DESK])
    assert front_desk.get(reverse("measures:alerts")).status_code == 403
    assert front_desk.get(reverse("measures:alert", args=[alert.pk])).status_code == 403
    other = signed_in(world.prescriber_b)
    assert other.get(reverse("measures:alert", args=[alert.pk])).status_code == 404
    assert (
        other.post(reverse("measures:alert", args=[alert.pk]), {"note": "Not mine."}).status_code
        == 404
    )
    assert alert.pk not in [a.pk for a in other.get(reverse("measures:alerts")).context["page"]]
    alert.refresh_from_db()
    assert alert.is_open


# --- escalation -----------------------------------------------------------------------------


def test_a_high_alert_open_past_the_limit_goes_to_the_clinic_admins_once(
    world, patient, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    alert = high_alert(world, patient)
    opened = alert.opened_at
    with django_capture_on_commit_callbacks(execute=True):
        assert services.escalate_overdue_alerts(now=opened + timedelta(minutes=59)) == []
    assert mail.outbox == []
    later = opened + timedelta(minutes=61)
    with django_capture_on_commit_callbacks(execute=True):
        escalated = services.escalate_overdue_alerts(now=later)
    assert [a.pk for a in escalated] == [alert.pk]
    alert.refresh_from_db()
    assert alert.escalated_at == later and alert.is_open
    assert [m.to for m in mail.outbox] == [["admin@clinic-a.example"]]
    body = mail.outbox[0].body
    assert reverse("measures:alert", args=[alert.pk]) in body
    assert "suicid" not in body.lower() and patient.family_name not in body
    entry = AuditEntry.objects.get(object_type="alert", action="update", detail={"escalated": True})
    assert entry.actor is None and entry.object_id == str(alert.pk)
    # Once only, however often the task runs.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.escalate_overdue_alerts(now=later + timedelta(hours=5)) == []
    assert len(mail.outbox) == 1


def test_moderate_alerts_are_never_escalated(world, patient, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    record(world.nurse, patient, "phq9", phq9(1, q9=None))
    alert = only_alert()
    assert alert.severity == "moderate"
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.escalate_overdue_alerts(now=timezone.now() + timedelta(days=30)) == []
    alert.refresh_from_db()
    assert alert.escalated_at is None and mail.outbox == []


def test_acknowledged_alerts_are_never_escalated(
    world, patient, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    alert = high_alert(world, patient)
    services.acknowledge_alert(actor(world.prescriber), alert, "Seen in clinic.")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.escalate_overdue_alerts(now=timezone.now() + timedelta(days=1)) == []
    alert.refresh_from_db()
    assert alert.escalated_at is None and mail.outbox == []


def test_the_escalation_time_is_the_clinics_setting(world, patient):  # type: ignore[no-untyped-def]
    world.clinic_a.alert_escalation_minutes = 15
    world.clinic_a.save(update_fields=["alert_escalation_minutes"])
    alert = high_alert(world, patient)
    assert services.escalate_overdue_alerts(now=alert.opened_at + timedelta(minutes=14)) == []
    assert [
        a.pk for a in services.escalate_overdue_alerts(now=alert.opened_at + timedelta(minutes=15))
    ] == [alert.pk]


def test_only_the_alerts_own_clinic_admins_are_told(
    world, patient, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    high_alert(world, patient)
    with django_capture_on_commit_callbacks(execute=True):
        services.escalate_overdue_alerts(now=timezone.now() + timedelta(hours=2))
    recipients = [address for m in mail.outbox for address in m.to]
    assert "admin@clinic-a.example" in recipients
    assert "admin@clinic-b.example" not in recipients


def test_the_periodic_task_escalates_alerts_opened_long_ago(
    world, patient, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    alert = high_alert(world, patient)
    Alert.objects.filter(pk=alert.pk).update(opened_at=timezone.now() - timedelta(minutes=61))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        tasks.escalate_overdue_alerts()  # huey runs it at once in tests
    alert.refresh_from_db()
    assert alert.escalated_at is not None
    assert [m.to for m in mail.outbox] == [["admin@clinic-a.example"]]
    # It is scheduled every minute.
    assert tasks.escalate_overdue_alerts.task_class().validate_datetime(
        timezone.now().replace(second=0, microsecond=0)
    )


# --- the queue ------------------------------------------------------------------------------


def test_the_alert_queue_lists_open_mine_and_all(world, patient):  # type: ignore[no-untyped-def]
    other = make_staff(world.clinic_a, "second_prescriber", Role.PRESCRIBER)
    second = register(world.clinic_a, world.nurse, given_name="Sam", family_name="Other")
    second.responsible_prescriber = other
    second.save()
    mine = high_alert(world, patient)
    theirs = high_alert(world, second)
    done = record(world.nurse, patient, "phq9", phq9(q9=None))
    done_alert = Alert.objects.get(response=done)
    services.acknowledge_alert(actor(world.prescriber), done_alert, "Asked at the visit: no.")

    client = signed_in(world.prescriber)

    def listed(show: str | None) -> list[int]:
        url = reverse("measures:alerts") + (f"?show={show}" if show else "")
        response = client.get(url)
        assert response.status_code == 200
        return sorted(a.pk for a in response.context["page"].object_list)

    assert listed(None) == listed("open") == sorted([mine.pk, theirs.pk])
    assert listed("mine") == [mine.pk]
    assert listed("all") == sorted([mine.pk, theirs.pk, done_alert.pk])
    assert listed("nonsense") == listed("open")
    html = client.get(reverse("measures:alerts") + "?show=all").content.decode()
    assert "Quill, Rowan" in html and "Other, Sam" in html and "acknowledged" in html


def test_the_chart_shows_a_banner_for_each_open_alert_until_it_is_acknowledged(world, patient):  # type: ignore[no-untyped-def]
    alert = high_alert(world, patient)
    url = reverse("patients:chart", args=[patient.pk])
    client = signed_in(world.prescriber)
    html = client.get(url).content.decode()
    assert 'class="alert-banner high"' in html
    assert reverse("measures:alert", args=[alert.pk]) in html
    assert "1 open alert" in html
    services.acknowledge_alert(actor(world.prescriber), alert, "Seen.")
    html = client.get(url).content.decode()
    assert "alert-banner" not in html and "No open alerts" in html
