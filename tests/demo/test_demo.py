"""The demo clinic: scale histories that look like a real ketamine clinic's, made through the
real services (scores, audit chain, alerts)."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta

import pytest

from ketaclinic.audit.verify import verify_all
from ketaclinic.clinical import outcomes
from ketaclinic.clinical.instruments import score
from ketaclinic.demo.loader import DEMO_CLINIC, load_demo
from ketaclinic.demo.scales import plan_courses
from ketaclinic.measures.models import Alert, ResponseSource, ScaleResponse
from ketaclinic.patients.models import Patient, PatientStatus

TREATED = {PatientStatus.ACTIVE, PatientStatus.PAUSED, PatientStatus.DISCHARGED}


def phq9_by_patient(clinic) -> dict[int, list[ScaleResponse]]:  # type: ignore[no-untyped-def]
    rows = defaultdict(list)
    for r in ScaleResponse.objects.filter(clinic=clinic, instrument_code="phq9").order_by(
        "administered_at", "pk"
    ):
        rows[r.patient_id].append(r)
    return rows


def check_demo_loads_with_a_sound_audit_chain(demo) -> None:  # type: ignore[no-untyped-def]
    assert demo.name == DEMO_CLINIC
    assert Patient.objects.filter(clinic=demo).count() == 40
    checked, problem = verify_all()
    assert problem is None
    assert checked > 1000


def check_every_patient_has_the_demo_prescriber(demo) -> None:  # type: ignore[no-untyped-def]
    patients = Patient.objects.filter(clinic=demo).select_related("responsible_prescriber")
    assert {p.responsible_prescriber.username for p in patients} == {"prescriber"}


def check_exactly_one_open_alert_and_it_is_suicidality(demo) -> None:  # type: ignore[no-untyped-def]
    open_alerts = list(Alert.objects.filter(clinic=demo, acknowledged_at__isnull=True))
    assert len(open_alerts) == 1
    alert = open_alerts[0]
    assert "suicidality" in {r["code"] for r in alert.reasons}
    assert alert.severity == "high"
    assert alert.assigned_to.username == "prescriber"
    # It is the patient's latest PHQ-9, item 9 answered 1 ("several days").
    latest = (
        ScaleResponse.objects.filter(patient=alert.patient, instrument_code="phq9")
        .order_by("-administered_at", "-pk")
        .first()
    )
    assert alert.response == latest
    assert latest.answers.get(item_id="q9").value == 1
    assert latest.source == ResponseSource.SELF_REPORT


def check_older_alerts_are_acknowledged_with_a_note(demo) -> None:  # type: ignore[no-untyped-def]
    done = Alert.objects.filter(clinic=demo, acknowledged_at__isnull=False)
    assert done.count() >= 3
    for alert in done:
        assert alert.acknowledged_by.username == "prescriber"
        assert alert.acknowledgement_note.strip()
        assert alert.acknowledged_at >= alert.opened_at
        assert alert.opened_at >= alert.response.administered_at
    codes = {r["code"] for a in done for r in a.reasons}
    assert {"suicidality", "phq9_rise"} <= codes


def check_trajectories_cover_every_outcome(demo) -> None:  # type: ignore[no-untyped-def]
    kinds: dict[str, int] = defaultdict(int)
    for rows in phq9_by_patient(demo).values():
        if len(rows) < 2:
            continue
        c = outcomes.classify("phq9", float(rows[0].total), float(rows[-1].total))
        if c.remission:
            kinds["remitter"] += 1
        elif c.response:
            kinds["responder"] += 1
        elif c.percent_change >= 25:
            kinds["partial"] += 1
        elif c.percent_change < 20:
            kinds["non_responder"] += 1
    assert kinds["remitter"] >= 3
    assert kinds["responder"] >= 3
    assert kinds["non_responder"] >= 3
    assert kinds["partial"] >= 2


def check_history_spans_3_to_12_months_for_treated_patients(demo) -> None:  # type: ignore[no-untyped-def]
    by_patient = phq9_by_patient(demo)
    for patient in Patient.objects.filter(clinic=demo):
        rows = by_patient[patient.pk]
        assert rows, patient
        if patient.status in TREATED:
            span = rows[-1].administered_at - rows[0].administered_at
            assert timedelta(days=88) <= span <= timedelta(days=366), (patient, span)
            assert len(rows) >= 6
        else:
            assert len(rows) == 1  # screening and referred: a baseline only


def check_scales_are_the_expected_mix(demo) -> None:  # type: ignore[no-untyped-def]
    responses = ScaleResponse.objects.filter(clinic=demo)
    codes = set(responses.values_list("instrument_code", flat=True))
    assert codes == {"phq9", "cssrs_screen", "gad7", "pcl5", "peg", "madrs"}
    madrs = responses.filter(instrument_code="madrs")
    assert madrs.exists()
    assert set(madrs.values_list("source", flat=True)) == {ResponseSource.STAFF}
    assert set(madrs.values_list("recorded_by__username", flat=True)) == {"prescriber"}
    for code, dx in (("pcl5", "F43.10"), ("peg", "G90.511")):
        ids = set(responses.filter(instrument_code=code).values_list("patient_id", flat=True))
        assert ids
        for patient in Patient.objects.filter(pk__in=ids):
            assert any(d in patient.diagnosis_codes for d in (dx, "M79.7")), (code, patient)


def check_every_response_is_complete_and_rescores_the_same(demo) -> None:  # type: ignore[no-untyped-def]
    responses = ScaleResponse.objects.filter(clinic=demo).prefetch_related("answers")
    assert responses.count() > 500
    for r in responses:
        assert r.complete and not r.prorated, r.pk
        answers = {a.item_id: a.value for a in r.answers.all()}
        result = score(r.instrument_code, answers)
        assert not result.errors, (r.pk, result.errors)
        if result.total is not None:
            assert float(r.total) == pytest.approx(result.total)
        if r.instrument_code == "phq9" and "suicidality" not in r.flags:
            assert answers["q9"] == 0
        if r.instrument_code == "cssrs_screen":
            if answers["q2"] is not True:
                assert answers["q3"] is answers["q4"] is answers["q5"] is None
            if answers["q6"] is not True:
                assert answers["q6a"] is None


def check_demo_is_deterministic(demo) -> None:  # type: ignore[no-untyped-def]
    # Same seed, same plan: trajectories, baselines and visit days repeat.
    patients = list(Patient.objects.filter(clinic=demo).order_by("pk"))
    today = demo.created_at.date()
    a = plan_courses(random.Random(7), patients, today)
    b = plan_courses(random.Random(7), patients, today)
    assert [(p.archetype, p.baseline, p.final, p.days) for p in a] == [
        (p.archetype, p.baseline, p.final, p.days) for p in b
    ]


def test_demo_clinic(db) -> None:  # type: ignore[no-untyped-def]
    """One load (it takes seconds), then every check on it."""
    demo = load_demo()
    check_demo_loads_with_a_sound_audit_chain(demo)
    check_every_patient_has_the_demo_prescriber(demo)
    check_exactly_one_open_alert_and_it_is_suicidality(demo)
    check_older_alerts_are_acknowledged_with_a_note(demo)
    check_trajectories_cover_every_outcome(demo)
    check_history_spans_3_to_12_months_for_treated_patients(demo)
    check_scales_are_the_expected_mix(demo)
    check_every_response_is_complete_and_rescores_the_same(demo)
    check_demo_is_deterministic(demo)
