"""Staff record a rating scale: through the form or the JSON API the score is computed when
stored and kept with the answers, item by item. Bad answers are refused with a 4xx that names
the item, and nothing is stored."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from ketaclinic.clinical.instruments import get_instrument, list_instruments, score
from ketaclinic.measures import services
from ketaclinic.measures.models import ScaleAnswer, ScaleResponse
from tests.conftest import register, signed_in
from tests.measures.helpers import counts, csrf_client, cssrs, page_csrf_token, phq9


def record_url(patient, code: str) -> str:  # type: ignore[no-untyped-def]
    return reverse("measures:record", args=[patient.pk]) + f"?code={code}"


def api_url(patient) -> str:  # type: ignore[no-untyped-def]
    return reverse("measures:api_record", args=[patient.pk])


def form_data(code: str, answers) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """What a browser posts for these answers: one radio value per answered item."""
    instrument = get_instrument(code)
    by_item = (
        dict(zip(instrument.item_ids, answers, strict=False))
        if isinstance(answers, list)
        else answers
    )
    data = {}
    for item_id, value in by_item.items():
        if value is None:
            continue
        data[item_id] = ("yes" if value else "no") if isinstance(value, bool) else str(value)
    return data


def stored_answers(response: ScaleResponse) -> list:  # type: ignore[type-arg]
    return [a.value for a in response.answers.order_by("position")]


def assert_matches_score(response: ScaleResponse, code: str, answers) -> None:  # type: ignore[no-untyped-def]
    expected = score(code, answers)
    assert not expected.errors
    total = None if expected.total is None else Decimal(str(expected.total))
    assert response.total == total
    assert response.band == (expected.band or "")
    assert response.flags == sorted(expected.flags)
    assert response.complete is expected.complete
    assert response.prorated is expected.prorated
    assert response.instrument_version == get_instrument(code).version


def post_json(client, patient, body, token: str):  # type: ignore[no-untyped-def]
    return client.post(
        api_url(patient),
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    return register(world.clinic_a, world.nurse)


@pytest.fixture
def api(world, patient):  # type: ignore[no-untyped-def]
    """A nurse's browser session and the CSRF token a page of the app gave it."""
    client = csrf_client(world.nurse)
    page = client.get(record_url(patient, "phq9"))
    assert page.status_code == 200
    return client, page_csrf_token(page.content.decode())


# --- the staff form ---------------------------------------------------------------------


def test_the_staff_form_stores_the_response_with_one_answer_per_item_as_given(world, patient):
    answers = phq9(1, 2, 0, 3, 1, 0, 2, 1, q9=1, q10=None)
    client = signed_in(world.nurse)
    assert client.get(record_url(patient, "phq9")).status_code == 200
    before = timezone.now()
    response = client.post(record_url(patient, "phq9"), form_data("phq9", answers))
    assert response.status_code == 302
    assert response["Location"] == reverse("patients:chart", args=[patient.pk])

    stored = ScaleResponse.objects.get()
    assert stored.patient == patient and stored.clinic == world.clinic_a
    assert stored.instrument_code == "phq9"
    assert stored.source == "staff" and stored.recorded_by == world.nurse
    assert before - timedelta(seconds=1) <= stored.administered_at <= timezone.now()
    # Every item has its row, in order, with the value as given and None where unanswered.
    rows = list(stored.answers.order_by("position"))
    assert [r.item_id for r in rows] == list(get_instrument("phq9").item_ids)
    assert [r.position for r in rows] == list(range(10))
    assert [r.value for r in rows] == [1, 2, 0, 3, 1, 0, 2, 1, 1, None]
    assert_matches_score(stored, "phq9", answers)
    assert stored.total == 11 and stored.band == "moderate" and stored.flags == ["suicidality"]


@pytest.mark.parametrize(
    ("code", "answers"),
    [
        ("gad7", [3, 2, 1, 0, 1, 2, 3, 1]),
        ("pcl5", [2] * 20),
        ("madrs", [4, 3, 2, 5, 1, 0, 2, 3, 4, 1]),
        ("pain_nrs", [7]),
        ("qids_sr16", [1, 2, 0, None, 3, 0, 1, 0, 2, 1, 1, 2, 0, 1, 2, 1]),
        ("cssrs_screen", cssrs(q1=True, q2=True, q3=True, q4=False, q5=False)),
        ("cssrs_screen", cssrs()),
    ],
)
def test_any_scale_recorded_through_the_form_is_scored_exactly_as_the_library_scores_it(
    world, patient, code, answers
):  # type: ignore[no-untyped-def]
    response = signed_in(world.nurse).post(record_url(patient, code), form_data(code, answers))
    assert response.status_code == 302, response.content.decode()[:2000]
    stored = ScaleResponse.objects.get()
    assert_matches_score(stored, code, answers)
    instrument = get_instrument(code)
    expected = (
        [answers.get(i) for i in instrument.item_ids]
        if isinstance(answers, dict)
        else list(answers) + [None] * (len(instrument.items) - len(answers))
    )
    values = stored_answers(stored)
    assert values == expected
    # Yes/No stays a boolean, ratings stay whole numbers: never coerced into each other.
    assert [type(v) for v in values] == [type(v) for v in expected]


def test_an_item_left_blank_on_the_form_is_stored_as_none_and_the_total_is_prorated(world, patient):  # type: ignore[no-untyped-def]
    answers = phq9(2, 2, None, 2, 2, 2, 2, 2, q9=0)
    assert (
        signed_in(world.nurse)
        .post(record_url(patient, "phq9"), form_data("phq9", answers))
        .status_code
        == 302
    )
    stored = ScaleResponse.objects.get()
    assert stored_answers(stored)[2] is None
    assert stored.prorated is True and stored.complete is False
    assert_matches_score(stored, "phq9", answers)


@pytest.mark.parametrize("bad", ["7", "-1", "abc", "1.5", "yes"])
def test_an_out_of_range_answer_on_the_form_gets_a_4xx_naming_the_item_and_stores_nothing(
    world, patient, bad
):  # type: ignore[no-untyped-def]
    data = form_data("phq9", phq9(1, 1, 1, 1, 1, 1, 1, 1, q9=0))
    data["q9"] = bad
    before = counts()
    response = signed_in(world.nurse).post(record_url(patient, "phq9"), data)
    assert 400 <= response.status_code < 500
    html = response.content.decode()
    item = re.search(r'<fieldset class="item has-error" id="item-q9">(.*?)</fieldset>', html, re.S)
    assert item, "item 9 is not marked as the one in error"
    errors = re.search(r'<ul class="errorlist">(.*?)</ul>', item.group(1), re.S)
    assert errors and re.search(r"question 9\b", errors.group(1), re.I), errors
    assert html.count("has-error") == 1  # only item 9 is marked
    assert counts() == before


def test_a_skip_logic_error_on_the_form_gets_a_4xx_naming_the_item_and_stores_nothing(
    world, patient
):  # type: ignore[no-untyped-def]
    data = form_data("cssrs_screen", cssrs(q2=False))
    data["q3"] = "yes"  # asked only after a Yes to item 2
    before = counts()
    response = signed_in(world.nurse).post(record_url(patient, "cssrs_screen"), data)
    assert 400 <= response.status_code < 500
    html = response.content.decode()
    assert "C-SSRS Screener item 3" in html and "asked only when item 2 is Yes" in html
    assert counts() == before


@pytest.mark.parametrize("code", ["phq9", "cssrs_screen", "madrs"])
def test_an_empty_form_stores_nothing_and_says_no_question_was_answered(world, patient, code):  # type: ignore[no-untyped-def]
    before = counts()
    response = signed_in(world.nurse).post(record_url(patient, code), {})
    assert 400 <= response.status_code < 500
    assert "No question was answered" in response.content.decode()
    assert counts() == before


def test_the_form_for_an_unknown_scale_shows_the_chooser_and_stores_nothing(world, patient):  # type: ignore[no-untyped-def]
    before = counts()
    response = signed_in(world.nurse).post(record_url(patient, "nope"), {"q1": "1"})
    assert response.status_code in (200, 400)
    assert "Select a valid choice" in response.content.decode()
    assert counts() == before


def test_a_failure_half_way_through_storing_leaves_no_response_behind(world, patient, monkeypatch):  # type: ignore[no-untyped-def]
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    monkeypatch.setattr(ScaleAnswer.objects, "bulk_create", broken)
    before = counts()
    client = signed_in(world.nurse)
    client.raise_request_exception = False
    response = client.post(record_url(patient, "phq9"), form_data("phq9", phq9(q9=2)))
    assert response.status_code == 500
    assert counts() == before


@pytest.mark.parametrize(("total", "shown"), [(0, "0"), (10, "10"), (20, "20"), (24, "24")])
def test_the_confirmation_after_saving_shows_the_total_as_a_plain_number(
    world, patient, total, shown
):  # type: ignore[no-untyped-def]
    from tests.measures.helpers import phq9_totalling

    client = signed_in(world.nurse)
    response = client.post(
        record_url(patient, "phq9"), form_data("phq9", phq9_totalling(total)), follow=True
    )
    assert f"PHQ-9 recorded: total {shown}." in response.content.decode()
    assert ScaleResponse.objects.get().total_display == shown


def test_a_mean_score_is_shown_with_one_decimal(world, patient):  # type: ignore[no-untyped-def]
    response = signed_in(world.nurse).post(
        record_url(patient, "peg"), form_data("peg", [3, 4, 4]), follow=True
    )
    assert "PEG recorded: total 3.7." in response.content.decode()


# --- the JSON API ---------------------------------------------------------------------------


def test_the_api_stores_a_response_and_answers_201_with_the_score(world, patient, api):  # type: ignore[no-untyped-def]
    client, token = api
    answers = phq9(3, 3, 2, 2, 1, 1, 0, 0, q9=0, q10=1)
    before = counts()
    response = post_json(client, patient, {"instrument": "phq9", "answers": answers}, token)
    assert response.status_code == 201, response.content
    body = response.json()
    stored = ScaleResponse.objects.get()
    assert body["id"] == stored.pk
    assert body["total"] == 12 and body["band"] == "moderate" and body["flags"] == []
    assert body["complete"] is True and body["prorated"] is False
    assert stored_answers(stored) == answers
    assert stored.recorded_by == world.nurse and stored.source == "staff"
    assert_matches_score(stored, "phq9", answers)
    after = counts()
    assert after["responses"] == before["responses"] + 1
    assert after["answers"] == before["answers"] + 10


def test_the_api_takes_answers_by_item_number_and_keeps_the_time_given(world, patient, api):  # type: ignore[no-untyped-def]
    client, token = api
    when = (timezone.now() - timedelta(days=2)).replace(microsecond=0)
    answers = {"q1": 1, "2": 2, "item 3": 0, "Q4": 1, "5": 0, "6": 0, "7": 1, "8": 0, "9": 0}
    response = post_json(
        client,
        patient,
        {"instrument": "PHQ-9", "answers": answers, "administered_at": when.isoformat()},
        token,
    )
    assert response.status_code == 201, response.content
    stored = ScaleResponse.objects.get()
    assert stored_answers(stored) == [1, 2, 0, 1, 0, 0, 1, 0, 0, None]
    assert stored.total == 5 and stored.band == "mild"
    assert stored.administered_at == when
    assert stored.instrument_code == "phq9"  # stored under its own code, not as spelled


def test_a_time_without_an_offset_is_read_in_the_clinics_time_zone(world, patient, api):  # type: ignore[no-untyped-def]
    client, token = api
    response = post_json(
        client,
        patient,
        {"instrument": "phq9", "answers": phq9(), "administered_at": "2026-01-05T09:30:00"},
        token,
    )
    assert response.status_code == 201, response.content
    stored = ScaleResponse.objects.get()
    # Clinic A is in New York: 09:30 EST is 14:30 UTC.
    assert stored.administered_at == datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("answers", "named"),
    [
        (phq9(q9=4), "PHQ-9 item 9"),
        (phq9(1, 1, 1, 1, 1, 1, 1, 9), "PHQ-9 item 8"),
        (phq9(-1), "PHQ-9 item 1"),
        (phq9(1, "2"), "PHQ-9 item 2"),  # type: ignore[arg-type]
        (phq9(1, 1, 1.5), "PHQ-9 item 3"),  # type: ignore[arg-type]
        (phq9(True), "PHQ-9 item 1"),  # type: ignore[arg-type]
        ({"q1": 1, "q11": 2}, "q11"),
        ({"q9": 0, "9": 2}, "PHQ-9 item 9"),  # the same item twice
        ([0] * 11, "11 answers"),  # more answers than the scale has items
        ([], "No question was answered"),
        ({}, "No question was answered"),
        ([None] * 10, "No question was answered"),
    ],
)
def test_a_bad_answer_through_the_api_gets_a_4xx_naming_the_item_and_stores_nothing(
    world, patient, api, answers, named
):  # type: ignore[no-untyped-def]
    client, token = api
    before = counts()
    response = post_json(client, patient, {"instrument": "phq9", "answers": answers}, token)
    assert response.status_code in (400, 422), response.content
    errors = response.json()["errors"]
    assert any(named in e for e in errors), errors
    assert counts() == before


def test_a_cssrs_answer_that_breaks_the_skip_logic_is_refused_by_the_api(world, patient, api):  # type: ignore[no-untyped-def]
    client, token = api
    before = counts()
    response = post_json(
        client,
        patient,
        {"instrument": "cssrs_screen", "answers": cssrs(q2=False, q5=True)},
        token,
    )
    assert response.status_code == 422
    assert any("C-SSRS Screener item 5" in e for e in response.json()["errors"])
    assert counts() == before


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "not valid JSON"),
        (json.dumps({"answers": [0]}).encode(), 400, "instrument"),
        (json.dumps({"instrument": "phq9"}).encode(), 400, "answers"),
        (json.dumps([1, 2]).encode(), 400, "instrument"),
        (json.dumps({"instrument": "phq99", "answers": [0]}).encode(), 422, "phq99"),
        (json.dumps({"instrument": "phq9", "answers": "0,1,2"}).encode(), 422, "list"),
        (json.dumps({"instrument": "phq9", "answers": None}).encode(), 422, "list"),
    ],
)
def test_a_malformed_api_request_gets_a_4xx_saying_what_is_wrong_and_stores_nothing(
    world, patient, api, body, status, says
):  # type: ignore[no-untyped-def]
    client, token = api
    before = counts()
    response = client.post(
        api_url(patient), data=body, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == status, response.content
    assert any(says in e for e in response.json()["errors"]), response.json()
    assert counts() == before


@pytest.mark.parametrize("when", ["yesterday", "2026-13-45T10:00:00"])
def test_an_unreadable_administration_time_is_refused_by_the_api(world, patient, api, when):  # type: ignore[no-untyped-def]
    client, token = api
    before = counts()
    response = post_json(
        client, patient, {"instrument": "phq9", "answers": phq9(), "administered_at": when}, token
    )
    assert response.status_code in (400, 422), response.content
    assert any("administered_at" in e for e in response.json()["errors"])
    assert counts() == before


def test_a_scale_administered_in_the_future_is_refused_by_the_api(world, patient, api):  # type: ignore[no-untyped-def]
    client, token = api
    later = timezone.now() + timedelta(days=1)
    before = counts()
    response = post_json(
        client,
        patient,
        {"instrument": "phq9", "answers": phq9(), "administered_at": later.isoformat()},
        token,
    )
    assert response.status_code == 422
    assert any("future" in e for e in response.json()["errors"])
    assert counts() == before


def test_the_api_refuses_a_post_without_the_csrf_token(world, patient, api):  # type: ignore[no-untyped-def]
    client, _token = api
    before = counts()
    response = post_json(client, patient, {"instrument": "phq9", "answers": phq9()}, "")
    assert response.status_code == 403
    assert counts() == before


def test_the_api_sends_a_signed_out_caller_to_the_login_page(world, patient):  # type: ignore[no-untyped-def]
    from django.test import Client

    before = counts()
    response = Client().post(
        api_url(patient),
        data=json.dumps({"instrument": "phq9", "answers": phq9()}),
        content_type="application/json",
    )
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert counts() == before


# --- who may record -------------------------------------------------------------------------


def test_the_front_desk_cannot_record_a_scale(world, patient):  # type: ignore[no-untyped-def]
    front_desk = world.staff_a["front_desk"]
    client = signed_in(front_desk)
    before = counts()
    assert client.get(record_url(patient, "phq9")).status_code == 403
    assert client.post(record_url(patient, "phq9"), form_data("phq9", phq9())).status_code == 403
    response = client.post(
        api_url(patient),
        data=json.dumps({"instrument": "phq9", "answers": phq9()}),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert counts() == before


def test_another_clinic_gets_404_for_this_clinics_patient(world, patient):  # type: ignore[no-untyped-def]
    client = signed_in(world.prescriber_b)
    before = counts()
    assert client.get(record_url(patient, "phq9")).status_code == 404
    assert client.post(record_url(patient, "phq9"), form_data("phq9", phq9())).status_code == 404
    response = client.post(
        api_url(patient),
        data=json.dumps({"instrument": "phq9", "answers": phq9()}),
        content_type="application/json",
    )
    assert response.status_code == 404
    assert counts() == before


def test_the_service_refuses_a_patient_of_another_clinic(world, patient):  # type: ignore[no-untyped-def]
    from tests.measures.helpers import actor

    before = counts()
    with pytest.raises(PermissionError):
        services.record_response(actor(world.prescriber_b, world.clinic_b), patient, "phq9", phq9())
    assert counts() == before


def test_recording_a_scale_is_audited_without_the_answers(world, patient):  # type: ignore[no-untyped-def]
    from ketaclinic.audit.models import AuditEntry

    signed_in(world.nurse).post(record_url(patient, "phq9"), form_data("phq9", phq9(2, 2)))
    stored = ScaleResponse.objects.get()
    entry = AuditEntry.objects.get(object_type="scale_response", action="create")
    assert entry.object_id == str(stored.pk)
    assert entry.patient_id == patient.pk and entry.actor == world.nurse
    assert entry.detail == {"instrument": "phq9", "source": "staff"}


# --- every scale of the library -------------------------------------------------------------


def _lowest_answers(instrument):  # type: ignore[no-untyped-def]
    """Each item asked without a condition gets its first option; one of each group of
    alternatives; conditional items stay blank."""
    skipped = {item_id for group in instrument.exclusive_items for item_id in group[1:]}
    return {
        item.id: item.options[0].value
        for item in instrument.items
        if item.asked_if is None and item.id not in skipped
    }


@pytest.mark.parametrize("code", [i.code for i in list_instruments()])
def test_every_scale_of_the_library_can_be_stored_with_its_version(world, patient, code):  # type: ignore[no-untyped-def]
    from tests.measures.helpers import record

    instrument = get_instrument(code)
    limit = ScaleResponse._meta.get_field("instrument_version").max_length
    assert len(instrument.version) <= limit, instrument.version
    answers = _lowest_answers(instrument)
    stored = record(world.nurse, patient, code, answers)
    stored.refresh_from_db()
    assert stored.instrument_code == code and stored.instrument_version == instrument.version
    assert stored.answers.count() == len(instrument.items)
    assert_matches_score(stored, code, answers)
