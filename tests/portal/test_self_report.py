"""Self-report: staff send a one-time link; the patient confirms their date of birth, answers
one scale at a time on their phone and sends them once. Expired, reused, altered or locked
links get a clear page and store nothing; the patient never sees a score."""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test import Client, TestCase
from django.urls import reverse
from django.utils import timezone

from ketaclinic import notifications
from ketaclinic.accounts.roles import Role
from ketaclinic.audit.models import AuditEntry
from ketaclinic.clinical.instruments import get_instrument
from ketaclinic.measures import services
from ketaclinic.measures.models import Alert, ScaleResponse, SelfReportRequest
from tests.conftest import register, signed_in
from tests.measures.helpers import actor, counts, cssrs, phq9

DOB = date(1980, 5, 17)
LINK = re.compile(r"http://127\.0\.0\.1:8000(/p/([A-Za-z0-9_-]+)/)")


@pytest.fixture(autouse=True)
def _empty_sms_outbox():  # type: ignore[no-untyped-def]
    notifications.sms_outbox.clear()
    yield
    notifications.sms_outbox.clear()


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    p = register(
        world.clinic_a,
        world.nurse,
        given_name="Iris",
        family_name="Vantongeren",
        email="iris@example.org",
        phone="555-010-4477",
    )
    p.responsible_prescriber = world.prescriber
    p.save()
    return p


def send(world, patient, codes=("phq9",), channel="email", user=None):  # type: ignore[no-untyped-def]
    """Staff send the request from the chart's "Send questionnaires" page; returns the link's
    path and the raw token, as read from the message the patient got."""
    client = signed_in(user or world.nurse)
    outbox_before = len(mail.outbox), len(notifications.sms_outbox)
    # The message goes out when the request is committed.
    with TestCase.captureOnCommitCallbacks(execute=True):
        with_commit = client.post(
            reverse("measures:request", args=[patient.pk]),
            {"instruments": list(codes), "channel": channel},
        )
    assert with_commit.status_code == 302, with_commit.content.decode()[:3000]
    if channel == "email":
        assert len(mail.outbox) == outbox_before[0] + 1
        body = mail.outbox[-1].body
    else:
        assert len(notifications.sms_outbox) == outbox_before[1] + 1
        body = notifications.sms_outbox[-1][1]
    found = LINK.search(body)
    assert found, body
    return found.group(1), found.group(2)


def form_data(code: str, answers) -> dict[str, str]:  # type: ignore[no-untyped-def]
    instrument = get_instrument(code)
    by_item = (
        dict(zip(instrument.item_ids, answers, strict=False))
        if isinstance(answers, list)
        else answers
    )
    return {
        k: (("yes" if v else "no") if isinstance(v, bool) else str(v))
        for k, v in by_item.items()
        if v is not None
    }


def scale_url(number: int) -> str:
    return reverse("portal:scale", args=[number])


def open_and_verify(path: str, dob: date = DOB) -> Client:
    phone = Client()
    response = phone.get(path)
    assert response.status_code == 302 and response["Location"] == reverse("portal:verify")
    response = phone.post(reverse("portal:verify"), {"date_of_birth": dob.isoformat()})
    assert response.status_code == 302 and response["Location"] == scale_url(1)
    return phone


def answer(phone: Client, number: int, code: str, answers):  # type: ignore[no-untyped-def]
    return phone.post(scale_url(number), form_data(code, answers))


def text_of(response) -> str:  # type: ignore[no-untyped-def]
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def tables_containing(needle: str) -> list[str]:
    """Every table (and column) of the database whose stored text contains `needle`."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from introspection
            columns = [c[0] for c in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, memoryview | bytes):
                        value = bytes(value).decode("latin-1")
                    if value is not None and needle in str(value):
                        found.append(f"{table}.{column}")
    return found


# --- sending --------------------------------------------------------------------------------


def test_sending_stores_only_the_sha256_of_the_token_and_the_raw_token_nowhere(world, patient):  # type: ignore[no-untyped-def]
    path, token = send(world, patient, ("phq9", "gad7"))
    assert len(token) >= 40  # 32 random bytes, URL-safe
    request = SelfReportRequest.objects.get()
    assert request.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert request.instrument_codes == ["phq9", "gad7"]
    assert request.channel == "email" and request.sent_to == "i***@example.org"
    assert request.created_by == world.nurse and request.status == "pending"
    for entry in AuditEntry.objects.all():
        assert token not in f"{entry.object_id} {entry.reason} {entry.detail} {entry.user_agent}"
    sent = AuditEntry.objects.get(object_type="self_report_request")
    assert sent.detail == {"instruments": ["phq9", "gad7"], "channel": "email"}
    assert tables_containing(token) == []
    # Still nowhere once the patient has opened it and confirmed who they are.
    open_and_verify(path)
    assert tables_containing(token) == []
    assert tables_containing(request.token_hash) == ["measures_selfreportrequest.token_hash"]


def test_every_request_gets_its_own_random_token(world, patient):  # type: ignore[no-untyped-def]
    tokens = {send(world, patient)[1] for _ in range(5)}
    assert len(tokens) == 5
    assert SelfReportRequest.objects.values("token_hash").distinct().count() == 5


def test_the_email_has_the_link_and_the_expiry_and_no_clinical_detail(world, patient):  # type: ignore[no-untyped-def]
    before = timezone.now()
    path, _token = send(world, patient, ("phq9", "cssrs_screen"))
    message = mail.outbox[-1]
    assert message.to == ["iris@example.org"]
    assert "Clinic A" in message.subject
    assert path in message.body and "expires in 72 hours" in message.body
    assert "2 short questionnaires" in message.body
    lowered = message.body.lower()
    assert "phq" not in lowered and "suicid" not in lowered and "vantongeren" not in lowered
    request = SelfReportRequest.objects.get()
    expected = before + timedelta(hours=72)
    assert expected - timedelta(seconds=5) <= request.expires_at <= expected + timedelta(seconds=5)


def test_the_link_lifetime_is_the_clinics_setting(world, patient):  # type: ignore[no-untyped-def]
    world.clinic_a.self_report_link_hours = 24
    world.clinic_a.save(update_fields=["self_report_link_hours"])
    send(world, patient)
    request = SelfReportRequest.objects.get()
    assert (
        timedelta(hours=23, minutes=59)
        < request.expires_at - request.created_at
        <= timedelta(hours=24, seconds=5)
    )
    assert "expires in 24 hours" in mail.outbox[-1].body


def test_the_sms_channel_puts_the_link_in_the_sms_outbox(world, patient):  # type: ignore[no-untyped-def]
    path, token = send(world, patient, ("phq9",), channel="sms")
    to, body = notifications.sms_outbox[-1]
    assert to == "555-010-4477"
    assert f"http://127.0.0.1:8000{path}" in body and "Clinic A" in body
    assert mail.outbox == []
    request = SelfReportRequest.objects.get()
    assert request.channel == "sms" and request.sent_to == "***-4477"
    phone = open_and_verify(path)
    assert answer(phone, 1, "phq9", phq9(q10=0)).status_code == 302
    assert ScaleResponse.objects.get().self_report_request == request


@pytest.mark.parametrize(
    ("channel", "field", "says"),
    [("email", "email", "no email address"), ("sms", "phone", "no phone number")],
)
def test_a_patient_without_the_address_cannot_be_sent_to_by_that_channel(
    world, patient, channel, field, says
):  # type: ignore[no-untyped-def]
    setattr(patient, field, "")
    patient.save()
    before = counts()
    response = signed_in(world.nurse).post(
        reverse("measures:request", args=[patient.pk]),
        {"instruments": ["phq9"], "channel": channel},
    )
    assert response.status_code in (200, 400)
    assert f"The patient has {says} on record" in text_of(response)
    assert counts() == before
    assert mail.outbox == [] and notifications.sms_outbox == []


def test_only_self_report_scales_can_be_sent(world, patient):  # type: ignore[no-untyped-def]
    before = counts()
    with pytest.raises(Exception) as caught:
        services.create_self_report_request(actor(world.nurse), patient, ["madrs"], channel="email")
    assert "Not a self-report scale: madrs" in str(caught.value)
    response = signed_in(world.nurse).post(
        reverse("measures:request", args=[patient.pk]),
        {"instruments": ["madrs"], "channel": "email"},
    )
    assert response.status_code in (200, 400)
    assert counts() == before and mail.outbox == []


def test_a_scale_chosen_twice_is_sent_and_stored_once(world, patient):  # type: ignore[no-untyped-def]
    sent = services.create_self_report_request(
        actor(world.nurse), patient, ["phq9", "gad7", "phq9"], channel="email"
    )
    assert sent.request.instrument_codes == ["phq9", "gad7"]
    services.submit_self_report(sent.request.pk, {"phq9": phq9(q10=0), "gad7": [0] * 8})
    assert sorted(ScaleResponse.objects.values_list("instrument_code", flat=True)) == [
        "gad7",
        "phq9",
    ]


def test_the_front_desk_may_send_but_another_clinic_gets_404(world, patient):  # type: ignore[no-untyped-def]
    send(world, patient, user=world.staff_a[Role.FRONT_DESK])
    assert SelfReportRequest.objects.count() == 1
    response = signed_in(world.prescriber_b).post(
        reverse("measures:request", args=[patient.pk]),
        {"instruments": ["phq9"], "channel": "email"},
    )
    assert response.status_code == 404
    assert SelfReportRequest.objects.count() == 1


# --- the patient's pages --------------------------------------------------------------------


def test_the_link_asks_for_the_birth_date_first_and_shows_no_name(world, patient):  # type: ignore[no-untyped-def]
    path, token = send(world, patient)
    phone = Client()
    response = phone.get(path, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [(reverse("portal:verify"), 302)]
    page = response.content.decode()
    assert 'name="viewport"' in page and 'type="date"' in page
    assert "Clinic A" in page
    assert "Iris" not in page and "Vantongeren" not in page and "1980" not in page
    # The token leaves the address bar at once.
    assert token not in response.redirect_chain[-1][0]


def test_the_scales_cannot_be_reached_without_the_birth_date(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient)
    phone = Client()
    # Without the link at all: no request to answer.
    assert phone.get(scale_url(1)).status_code == 404
    phone.get(path)
    for response in (
        phone.get(scale_url(1)),
        phone.post(scale_url(1), form_data("phq9", phq9(q10=0))),
    ):
        assert response.status_code == 302 and response["Location"] == reverse("portal:verify")
    assert ScaleResponse.objects.count() == 0
    assert SelfReportRequest.objects.get().status == "pending"


def test_a_wrong_birth_date_says_so_and_five_lock_the_link(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient)
    phone = Client()
    phone.get(path)
    for attempt in range(1, 5):
        response = phone.post(reverse("portal:verify"), {"date_of_birth": "1980-05-18"})
        assert response.status_code == 200
        assert "does not match our record" in text_of(response)
        assert SelfReportRequest.objects.get().failed_birth_date_checks == attempt
    response = phone.post(reverse("portal:verify"), {"date_of_birth": "1981-05-17"})
    assert response.status_code == 403 and "This link is locked" in text_of(response)
    request = SelfReportRequest.objects.get()
    assert request.status == "locked" and request.failed_birth_date_checks == 5
    # The right date no longer helps, in this browser or a fresh one.
    response = phone.post(reverse("portal:verify"), {"date_of_birth": DOB.isoformat()})
    assert response.status_code == 403
    assert phone.get(scale_url(1)).status_code == 403
    fresh = Client().get(path)
    assert fresh.status_code == 403 and "call the clinic" in text_of(fresh)
    assert ScaleResponse.objects.count() == 0


def test_four_wrong_birth_dates_then_the_right_one_lets_the_patient_in(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient)
    phone = Client()
    phone.get(path)
    for _ in range(4):
        phone.post(reverse("portal:verify"), {"date_of_birth": "2000-01-01"})
    response = phone.post(reverse("portal:verify"), {"date_of_birth": DOB.isoformat()})
    assert response.status_code == 302 and response["Location"] == scale_url(1)


def test_an_unreadable_birth_date_is_not_counted_as_a_try(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient)
    phone = Client()
    phone.get(path)
    response = phone.post(reverse("portal:verify"), {"date_of_birth": "17/05/1980x"})
    assert response.status_code == 200 and "YYYY-MM-DD" in text_of(response)
    assert SelfReportRequest.objects.get().failed_birth_date_checks == 0


def test_one_scale_at_a_time_with_progress_and_nothing_stored_until_the_end(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient, ("phq9", "gad7", "cssrs_screen"))
    phone = open_and_verify(path)

    first = phone.get(scale_url(1))
    text = text_of(first)
    assert "Questionnaire 1 of 3" in text
    assert '<progress max="3" value="0">' in first.content.decode()
    assert first.content.decode().count('<fieldset class="item') == 10  # PHQ-9 only
    assert get_instrument("gad7").name not in text and "Next" in text

    assert answer(phone, 1, "phq9", phq9(1, 1, q10=0))["Location"] == scale_url(2)
    second = phone.get(scale_url(2))
    assert "Questionnaire 2 of 3" in text_of(second)
    assert '<progress max="3" value="1">' in second.content.decode()
    assert second.content.decode().count('<fieldset class="item') == 8  # GAD-7 only
    assert ScaleResponse.objects.count() == 0

    assert answer(phone, 2, "gad7", [1] * 7 + [0])["Location"] == scale_url(3)
    third = phone.get(scale_url(3))
    assert "Questionnaire 3 of 3" in text_of(third) and "Send my answers" in text_of(third)
    assert ScaleResponse.objects.count() == 0

    done = answer(phone, 3, "cssrs_screen", cssrs())
    assert done.status_code == 302 and done["Location"] == reverse("portal:done")
    stored = {r.instrument_code: r for r in ScaleResponse.objects.all()}
    assert set(stored) == {"phq9", "gad7", "cssrs_screen"}
    request = SelfReportRequest.objects.get()
    for response in stored.values():
        assert response.source == "self_report" and response.recorded_by is None
        assert response.self_report_request == request and response.patient == patient
    assert stored["phq9"].total == 2 and stored["gad7"].total == 7
    assert [a.value for a in stored["phq9"].answers.order_by("position")] == phq9(1, 1, q10=0)
    assert request.status == "completed" and request.completed_at is not None


def test_a_scale_page_refuses_a_missing_answer_and_keeps_the_others(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient)
    phone = open_and_verify(path)
    data = form_data("phq9", phq9(2, 1, q10=0))
    del data["q9"]
    response = phone.post(scale_url(1), data)
    assert response.status_code in (200, 400)
    assert "Please answer question 9." in text_of(response)
    page = response.content.decode()
    assert re.search(r'<input type="radio" name="q1" value="2"[^>]*checked>', page)
    assert re.search(r'<input type="radio" name="q2" value="1"[^>]*checked>', page)
    assert ScaleResponse.objects.count() == 0


def test_going_back_shows_the_answers_already_given(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient, ("phq9", "gad7"))
    phone = open_and_verify(path)
    answer(phone, 1, "phq9", phq9(3, 0, 2, q9=0, q10=1))
    page = phone.get(scale_url(1)).content.decode()
    assert re.search(r'value="3"[^>]*id="id_q1_3"[^>]*checked', page), "q1 is not kept"
    assert re.search(r'value="1"[^>]*id="id_q10_1"[^>]*checked', page), "q10 is not kept"


def test_answering_the_last_scale_first_stores_nothing_and_says_what_is_missing(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient, ("phq9", "gad7"))
    phone = open_and_verify(path)
    response = answer(phone, 2, "gad7", [1] * 8)
    assert "Not answered yet: phq9" in text_of(response)
    assert ScaleResponse.objects.count() == 0
    assert SelfReportRequest.objects.get().status == "pending"


def test_submitting_the_last_scale_twice_stores_it_once(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient, ("phq9",))
    phone = open_and_verify(path)
    first = answer(phone, 1, "phq9", phq9(2, 2, q10=0))
    assert first["Location"] == reverse("portal:done")
    before = counts()
    replay = answer(phone, 1, "phq9", phq9(2, 2, q10=0))
    assert replay.status_code == 410 and "already done" in text_of(replay)
    assert counts() == before
    assert ScaleResponse.objects.count() == 1


def test_two_devices_sending_the_same_link_store_once(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient, ("phq9",))
    phone, tablet = open_and_verify(path), open_and_verify(path)
    assert answer(phone, 1, "phq9", phq9(1, q10=0))["Location"] == reverse("portal:done")
    late = answer(tablet, 1, "phq9", phq9(3, 3, 3, q10=0))
    assert late.status_code == 410
    assert [r.total for r in ScaleResponse.objects.all()] == [1]


def test_the_service_stores_a_second_submission_once(world, patient):  # type: ignore[no-untyped-def]
    sent = services.create_self_report_request(actor(world.nurse), patient, ["phq9"], channel="sms")
    first = services.submit_self_report(sent.request.pk, {"phq9": phq9(q10=0)})
    assert len(first.responses) == 1 and not first.already_submitted
    second = services.submit_self_report(sent.request.pk, {"phq9": phq9(3, 3, q10=0)})
    assert second.already_submitted and second.responses == []
    assert ScaleResponse.objects.count() == 1


# --- links that cannot be used --------------------------------------------------------------


def test_an_expired_link_gets_a_clear_page_and_stores_nothing(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient)
    SelfReportRequest.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    before = counts()
    response = Client().get(path)
    assert response.status_code == 410
    assert "This link has expired" in text_of(response)
    assert "Ask the clinic to send a new one" in text_of(response)
    assert counts() == before


def test_a_link_that_expires_while_the_patient_answers_stores_nothing(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient, ("phq9", "gad7"))
    phone = open_and_verify(path)
    answer(phone, 1, "phq9", phq9(q10=0))
    SelfReportRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    before = counts()
    response = answer(phone, 2, "gad7", [0] * 8)
    assert response.status_code == 410 and "This link has expired" in text_of(response)
    assert counts() == before


@pytest.mark.parametrize("change", ["last", "first", "truncate", "extend", "random"])
def test_an_altered_link_gets_a_clear_page_and_stores_nothing(world, patient, change):  # type: ignore[no-untyped-def]
    path, token = send(world, patient)
    swap = {"A": "B", "B": "A"}
    altered = {
        "last": token[:-1] + ("A" if token[-1] != "A" else "B"),
        "first": swap.get(token[0], "A") + token[1:],
        "truncate": token[:-3],
        "extend": token + "x",
        "random": "x" * len(token),
    }[change]
    assert altered != token
    before = counts()
    response = Client().get(reverse("portal:open", args=[altered]))
    assert response.status_code == 404
    assert "This link does not work" in text_of(response)
    assert counts() == before
    assert SelfReportRequest.objects.get().status == "pending"


def test_a_used_link_shows_the_already_done_page_and_stores_nothing(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient)
    phone = open_and_verify(path)
    answer(phone, 1, "phq9", phq9(q10=0))
    before = counts()
    for browser in (phone, Client()):
        response = browser.get(path)
        assert response.status_code == 410
        assert "These questionnaires are already done" in text_of(response)
        assert browser.post(
            reverse("portal:verify"), {"date_of_birth": DOB.isoformat()}
        ).status_code in (
            404,
            410,
        )
    assert counts() == before


def test_a_cancelled_link_cannot_be_used(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient)
    SelfReportRequest.objects.update(status="cancelled")
    response = Client().get(path)
    assert response.status_code == 403 and ScaleResponse.objects.count() == 0


# --- after sending --------------------------------------------------------------------------


def test_a_positive_suicide_item_shows_the_default_crisis_text_with_988(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient)
    phone = open_and_verify(path)
    response = phone.post(scale_url(1), form_data("phq9", phq9(q9=1, q10=0)), follow=True)
    assert response.redirect_chain[-1][0] == reverse("portal:done")
    page = response.content.decode()
    crisis = re.search(
        r'<div class="crisis" role="alert" id="crisis-resources">(.*?)</div>', page, re.S
    )
    assert crisis, page
    assert "call or text 988" in crisis.group(1)
    assert "Thank you" in page


def test_the_crisis_text_is_the_clinics_own(world, patient):  # type: ignore[no-untyped-def]
    world.clinic_a.crisis_text = "Call our on-call line at 555-0199, or call or text 988 now."
    world.clinic_a.save(update_fields=["crisis_text"])
    path, _token = send(world, patient, ("cssrs_screen",))
    phone = open_and_verify(path)
    response = phone.post(scale_url(1), form_data("cssrs_screen", cssrs(q1=True)), follow=True)
    page = response.content.decode()
    assert 'id="crisis-resources"' in page
    assert "Call our on-call line at 555-0199, or call or text 988 now." in page
    assert "Suicide &amp; Crisis Lifeline" not in page  # not the default text


@pytest.mark.parametrize(
    "code,answers", [("phq9", phq9(3, 3, 3, q9=0, q10=2)), ("cssrs_screen", cssrs())]
)
def test_no_crisis_text_without_a_suicidality_flag(world, patient, code, answers):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient, (code,))
    phone = open_and_verify(path)
    page = phone.post(scale_url(1), form_data(code, answers), follow=True).content.decode()
    assert "Thank you" in page
    assert "crisis-resources" not in page and "988" not in page


def test_the_done_page_never_shows_a_score_or_band(world, patient):  # type: ignore[no-untyped-def]
    path, _token = send(world, patient, ("phq9", "gad7"))
    phone = open_and_verify(path)
    answer(phone, 1, "phq9", phq9(3, 3, 3, 3, 3, 2, 2, 2, q9=1, q10=2))  # 22: severe
    response = phone.post(scale_url(2), form_data("gad7", [3, 3, 3, 3, 2, 2, 2, 1]), follow=True)
    text = text_of(response)
    stored = {r.instrument_code: r for r in ScaleResponse.objects.all()}
    assert stored["phq9"].total == 22 and stored["phq9"].band == "severe"
    assert stored["gad7"].total == 18 and stored["gad7"].band == "severe"
    assert "Thank you" in text
    for hidden in ("22", "18", "severe", "Severe", "score", "Score", "total", "Total", "band"):
        assert hidden not in text, hidden
    for band in get_instrument("phq9").bands + get_instrument("gad7").bands:
        assert band.label not in text, band.label
    # Reloading the done page shows the same, still without a score.
    again = text_of(phone.get(reverse("portal:done")))
    assert "Thank you" in again and "22" not in again


def test_a_self_report_opens_an_alert_for_the_responsible_prescriber(
    world, patient, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    world.prescriber.email = "prescriber@clinic-a.example"
    world.prescriber.save(update_fields=["email"])
    path, _token = send(world, patient)
    phone = open_and_verify(path)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        answer(phone, 1, "phq9", phq9(q9=2, q10=0))
    alert = Alert.objects.get()
    assert alert.severity == "high" and alert.assigned_to == world.prescriber
    assert alert.response.source == "self_report"
    assert [m.to for m in mail.outbox] == [["prescriber@clinic-a.example"]]
    created = AuditEntry.objects.get(object_type="scale_response", action="create")
    assert created.actor is None and created.detail["source"] == "self_report"
