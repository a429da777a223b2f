"""The chart's rating-scale section: one trend per scale with its bands and the patient's visits,
response and remission against the baseline, and a fixed number of SQL queries however many
responses the patient has."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ketaclinic.accounts.models import User
from ketaclinic.accounts.roles import Role
from ketaclinic.clinical.instruments import get_instrument
from ketaclinic.measures.models import Alert, ScaleResponse
from ketaclinic.patients.models import Patient
from ketaclinic.treatment.models import Appointment, EligibilityAssessment, TreatmentCourse
from tests.conftest import register, signed_in
from tests.measures.helpers import phq9_totalling, record

FIVE_SCALES = ("phq9", "gad7", "pcl5", "madrs", "qids_sr16")
NEW_YORK = ZoneInfo("America/New_York")


def queries(user: User, url: str) -> list[str]:
    client = signed_in(user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        assert response.status_code == 200
    return [q["sql"] for q in captured.captured_queries]


def shape(sql: str) -> str:
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'", "?", sql))


def assert_same_count(small: list[str], large: list[str]) -> None:
    extra = Counter(map(shape, large)) - Counter(map(shape, small))
    assert len(small) == len(large), (
        f"{len(small)} queries with few responses, {len(large)} with many; more often:\n"
        + "\n".join(f"{n} x {q}" for q, n in extra.most_common(5))
    )


def add_responses(
    patient: Patient, user: User, codes: tuple[str, ...], count: int, start: datetime
) -> list[ScaleResponse]:
    """`count` scored responses spread over `codes` and over the days after `start`, written in
    bulk (fast, and no alerts): the totals walk through each scale's range."""
    rows = []
    for n in range(count):
        code = codes[n % len(codes)]
        instrument = get_instrument(code)
        low, high = instrument.total_range  # type: ignore[misc]
        total = low + (n * 7) % (high - low + 1)
        band = instrument.band_for(total)
        rows.append(
            ScaleResponse(
                clinic=patient.clinic,
                patient=patient,
                instrument_code=code,
                instrument_version=instrument.version,
                administered_at=start + timedelta(days=n // len(codes), minutes=n % len(codes)),
                source="staff",
                recorded_by=user,
                total=Decimal(total),
                band=band.code if band else "",
                flags=["suicidality"] if n % 50 == 0 else [],
                complete=True,
            )
        )
    return ScaleResponse.objects.bulk_create(rows, batch_size=500)


def add_alerts(responses: list[ScaleResponse], assignee: User) -> None:
    Alert.objects.bulk_create(
        Alert(
            clinic=r.clinic,
            patient=r.patient,
            response=r,
            severity="high" if n % 2 else "moderate",
            reasons=[
                {"code": "suicidality", "text": "PHQ-9: positive answer on the suicide item."}
            ],
            assigned_to=assignee,
            opened_at=timezone.now(),
        )
        for n, r in enumerate(responses)
    )


def add_visits(world, patient: Patient, days: list[date]) -> None:  # type: ignore[no-untyped-def]
    """Completed dosing sessions on these days (10:00 clinic time), and one cancelled one."""
    prescriber = world.prescriber
    assessment = EligibilityAssessment.objects.create(
        clinic=patient.clinic,
        patient=patient,
        drug="ketamine",
        findings={},
        decision="eligible",
        created_by=prescriber,
    )
    course = TreatmentCourse.objects.create(
        clinic=patient.clinic,
        patient=patient,
        assessment=assessment,
        indication="trd",
        drug="ketamine",
        route="iv",
        protocol="iv_induction",
        responsible_prescriber=prescriber,
        start_date=days[0],
        created_by=prescriber,
    )
    for n, day in enumerate(days + [days[-1] + timedelta(days=1)]):
        Appointment.objects.create(
            clinic=patient.clinic,
            course=course,
            patient=patient,
            number=n + 1,
            earliest=day,
            target=day,
            latest=day,
            starts_at=datetime.combine(day, time(10), tzinfo=NEW_YORK),
            status="completed" if n < len(days) else "cancelled",
        )


def trend_cards(html: str) -> dict[str, str]:
    """Each trend card's markup by the scale's short name."""
    cards = {}
    for chunk in html.split('<div class="trend-card">')[1:]:
        name = re.match(r"\s*<h3>([^<]+?) <span", chunk)
        assert name, chunk[:200]
        cards[name.group(1)] = chunk.split('<div class="trend-card">')[0]
    return cards


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    return register(world.clinic_a, world.nurse)


def test_the_chart_costs_the_same_with_3_and_300_responses_over_5_scales(world, patient):  # type: ignore[no-untyped-def]
    start = timezone.now() - timedelta(days=200)
    url = reverse("patients:chart", args=[patient.pk])
    first = add_responses(patient, world.nurse, ("phq9", "gad7", "madrs"), 3, start)
    add_alerts(first[:1], world.prescriber)
    add_visits(world, patient, [(start + timedelta(days=1)).date()])
    small = queries(world.nurse, url)
    assert small and len(trend_cards(signed_in(world.nurse).get(url).content.decode())) == 3

    # 297 more, spread over 5 scales and recorded by different staff, with open alerts and
    # many visits: still the same queries.
    staff = list(world.staff_a.values())
    for n, user in enumerate(staff):
        add_responses(patient, user, FIVE_SCALES, 297 // len(staff) + (n < 297 % len(staff)), start)
    assert ScaleResponse.objects.filter(patient=patient).count() == 300
    add_alerts(list(ScaleResponse.objects.filter(patient=patient)[:20]), world.prescriber)
    add_visits(world, patient, [(start + timedelta(days=d)).date() for d in range(2, 60, 3)])
    large = queries(world.nurse, url)
    assert_same_count(small, large)
    html = signed_in(world.nurse).get(url).content.decode()
    assert len(trend_cards(html)) == 5
    assert html.count('class="alert-banner') == 21


def test_the_chart_shows_one_trend_per_scale_with_its_bands_and_the_visits(world, patient):  # type: ignore[no-untyped-def]
    start = datetime.combine(timezone.now().date() - timedelta(days=100), time(9), tzinfo=NEW_YORK)
    add_responses(patient, world.nurse, FIVE_SCALES, 50, start)  # 10 a scale, days 0-9
    visits = [(start + timedelta(days=d)).date() for d in (1, 4, 7)]
    add_visits(world, patient, visits)
    html = signed_in(world.nurse).get(reverse("patients:chart", args=[patient.pk])).content.decode()
    cards = trend_cards(html)
    names = {get_instrument(c).short_name: get_instrument(c) for c in FIVE_SCALES}
    assert set(cards) == set(names)
    assert html.count('<svg class="trend"') == 5
    for name, card in cards.items():
        instrument = names[name]
        assert card.count('<svg class="trend"') == 1
        assert f'aria-label="{name} over time"' in card
        # One shaded rectangle, one swatch and one label per band.
        banded = [b for b in instrument.bands if b.low is not None]
        assert card.count('<rect class="band"') == len(banded) > 0
        assert card.count("<rect ") == 2 * len(banded)
        assert card.count('<text class="band-label"') == len(banded)
        for band in banded:
            assert f">{band.label}</text>" in card
        assert card.count('<circle class="point"') == 10
        assert "10 responses" in card
        # The three completed visits are ticked; the cancelled one after them is not.
        assert card.count('<line class="visit"') == 3


def test_a_chart_without_visits_draws_no_visit_ticks(world, patient):  # type: ignore[no-untyped-def]
    add_responses(patient, world.nurse, ("phq9",), 4, timezone.now() - timedelta(days=10))
    html = signed_in(world.nurse).get(reverse("patients:chart", args=[patient.pk])).content.decode()
    assert html.count('<svg class="trend"') == 1 and 'class="visit"' not in html


@pytest.mark.parametrize(
    ("baseline", "latest", "change", "response", "remission"),
    [
        (20, 4, "80%", "yes", "yes"),  # remission: PHQ-9 < 5
        (20, 10, "50%", "yes", "no"),  # response is inclusive at 50 %
        (20, 11, "45%", "no", "no"),
        (10, 15, "-50%", "no", "no"),  # worse
    ],
)
def test_the_phq9_trend_shows_response_and_remission_against_the_baseline(
    world, patient, baseline, latest, change, response, remission
):  # type: ignore[no-untyped-def]
    now = timezone.now()
    record(
        world.nurse,
        patient,
        "phq9",
        phq9_totalling(baseline),
        administered_at=now - timedelta(days=60),
    )
    record(
        world.nurse, patient, "phq9", phq9_totalling(14), administered_at=now - timedelta(days=30)
    )
    record(world.nurse, patient, "phq9", phq9_totalling(latest), administered_at=now)
    html = signed_in(world.nurse).get(reverse("patients:chart", args=[patient.pk])).content.decode()
    card = trend_cards(html)["PHQ-9"]
    outcome = re.search(r'<div class="outcome">(.*?)</div>', card, re.S)
    assert outcome, card
    text = re.sub(r"<[^>]+>", "", outcome.group(1))
    text = re.sub(r"\s+", " ", text)
    assert f"Baseline {baseline} (" in text
    assert f"Change {change} improvement" in text
    assert f"Response {response}" in text
    assert f"Remission {remission}" in text
    assert f"latest {latest}" in card


def test_a_single_response_has_no_outcome_yet(world, patient):  # type: ignore[no-untyped-def]
    record(world.nurse, patient, "phq9", phq9_totalling(18))
    html = signed_in(world.nurse).get(reverse("patients:chart", args=[patient.pk])).content.decode()
    card = trend_cards(html)["PHQ-9"]
    assert '<circle class="point"' in card and 'class="outcome"' not in card


def test_a_scale_without_a_total_is_listed_without_a_chart(world, patient):  # type: ignore[no-untyped-def]
    from tests.measures.helpers import cssrs

    record(world.nurse, patient, "cssrs_screen", cssrs())
    response = signed_in(world.nurse).get(reverse("patients:chart", args=[patient.pk]))
    assert response.status_code == 200
    card = trend_cards(response.content.decode())["C-SSRS Screener"]
    assert "1 response" in card and "<svg" not in card


def test_the_front_desk_sees_no_scales_on_the_chart(world, patient):  # type: ignore[no-untyped-def]
    add_responses(patient, world.nurse, FIVE_SCALES, 10, timezone.now() - timedelta(days=20))
    add_alerts(list(ScaleResponse.objects.all()[:1]), world.prescriber)
    html = (
        signed_in(world.staff_a[Role.FRONT_DESK])
        .get(reverse("patients:chart", args=[patient.pk]))
        .content.decode()
    )
    assert "trend-card" not in html and "<svg" not in html and "alert-banner" not in html


def test_a_chart_without_responses_reads_no_visits_or_alerts(world, patient):  # type: ignore[no-untyped-def]
    url = reverse("patients:chart", args=[patient.pk])
    start = timezone.now() - timedelta(days=30)
    add_visits(world, patient, [(start + timedelta(days=1)).date()])
    without = queries(world.nurse, url)
    assert [q for q in without if "measures_scaleresponse" in q]  # the one that finds none
    assert not [q for q in without if "treatment_appointment" in q or "measures_alert" in q]

    add_alerts(add_responses(patient, world.nurse, ("phq9",), 3, start)[:1], world.prescriber)
    with_scales = queries(world.nurse, url)
    assert len(with_scales) == len(without) + 2
    assert len([q for q in with_scales if "treatment_appointment" in q]) == 1
    assert len([q for q in with_scales if "measures_alert" in q]) == 1
    html = signed_in(world.nurse).get(url).content.decode()
    assert html.count('class="alert-banner') == 1 and '<line class="visit"' in html


def test_unscored_responses_need_no_visit_days(world, patient):  # type: ignore[no-untyped-def]
    from tests.measures.helpers import cssrs

    record(world.nurse, patient, "cssrs_screen", cssrs())
    add_visits(world, patient, [timezone.now().date()])
    sql = queries(world.nurse, reverse("patients:chart", args=[patient.pk]))
    assert not [q for q in sql if "treatment_appointment" in q]
    assert len([q for q in sql if "measures_alert" in q]) == 1  # responses: alerts are read


def test_the_trend_query_reads_no_json_it_does_not_show(world, patient):  # type: ignore[no-untyped-def]
    add_responses(patient, world.nurse, ("phq9",), 3, timezone.now() - timedelta(days=5))
    sql = queries(world.nurse, reverse("patients:chart", args=[patient.pk]))
    trend = [q for q in sql if 'FROM "measures_scaleresponse"' in q]
    assert len(trend) == 1
    assert '"subscales"' not in trend[0] and '"convention"' not in trend[0]
