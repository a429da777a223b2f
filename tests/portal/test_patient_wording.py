"""What the patient's phone is sent for the C-SSRS screener: the patient's instructions only
(staff ones are not in the page at all), items numbered as printed (6a), a way to skip a
question ticked by mistake, and skip-logic problems explained in the patient's words."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from ketaclinic.measures.models import InstrumentWording, ScaleResponse
from tests.conftest import register, signed_in
from tests.portal.test_self_report import (
    answer,
    open_and_verify,
    scale_url,
    send,
    text_of,
)


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


STAFF_ONLY = ("Ask only after a Yes", "Not part of the score", "for-staff", "Not asked")


def test_the_patient_page_carries_no_staff_instructions(world, patient):  # type: ignore[no-untyped-def]
    path, _ = send(world, patient, ("cssrs_screen", "phq9"))
    phone = open_and_verify(path)
    html = phone.get(scale_url(1)).content.decode()
    for text in STAFF_ONLY:
        assert text not in html, text
    assert "Answer only if you said Yes to question 6; otherwise skip it." in html
    legends = re.findall(r"<legend[^>]*>\s*([0-9]+[a-z]?)\. ", html)
    assert legends == ["1", "2", "3", "4", "5", "6", "6a"]
    assert html.count("Skip this question") == 4  # 3, 4, 5 and 6a
    answer(phone, 1, "cssrs_screen", {"q1": False, "q2": False, "q6": False})
    phq = phone.get(scale_url(2)).content.decode()
    assert "Not part of the score" not in phq and "Optional." in phq  # PHQ-9 item 10


def test_the_staff_form_keeps_its_own_instructions(world, patient):  # type: ignore[no-untyped-def]
    url = reverse("measures:record", args=[patient.pk]) + "?code=cssrs_screen"
    html = signed_in(world.nurse).get(url).content.decode()
    assert "Ask only after a Yes to question 2; otherwise leave it blank." in html
    assert "Answer only if you said Yes" not in html
    assert "Not asked" in html


def test_a_skip_logic_slip_is_explained_in_the_patients_words(world, patient):  # type: ignore[no-untyped-def]
    path, _ = send(world, patient, ("cssrs_screen",))
    phone = open_and_verify(path)
    response = phone.post(
        scale_url(1), {"q1": "no", "q2": "no", "q3": "no", "q6": "no", "q6a": "skip"}
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["q3"] == [
        'Question 3 is only for those who answered Yes to question 2. Choose "Skip this '
        'question", or change your answer to question 2.'
    ]
    page = text_of(response)
    assert "(q3)" not in page and "None" not in page and "Record it as" not in page
    assert not ScaleResponse.objects.exists()
    # Skipping it sends the answers.
    done = phone.post(
        scale_url(1),
        {"q1": "no", "q2": "no", "q3": "skip", "q6": "no", "q6a": "skip"},
        follow=True,
    )
    assert done.status_code == 200
    stored = ScaleResponse.objects.get()
    assert stored.instrument_code == "cssrs_screen" and stored.complete


def test_the_send_page_says_which_scales_show_topics_only(world, patient):  # type: ignore[no-untyped-def]
    client = signed_in(world.nurse)
    url = reverse("measures:request", args=[patient.pk])
    note = client.get(url).context["topic_only"]
    assert [i.code for i in note] == ["qids_sr16", "cssrs_screen"]
    assert "licensed wording" in text_of(client.get(url))
    InstrumentWording.objects.create(
        clinic=world.clinic_a,
        instrument_code="cssrs_screen",
        wording={i: f"Licensed question {i}" for i in ("q1", "q2", "q3", "q4", "q5", "q6", "q6a")},
    )
    assert [i.code for i in client.get(url).context["topic_only"]] == ["qids_sr16"]
