"""Review findings on the rating-scale pages: items keep their own numbers (C-SSRS 6a), trend
bands are coloured by their own severity with labels in a margin clear of the data, trends
keep a fixed order, and an acknowledged alert sends no "new alert" email."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from ketaclinic.clinical.instruments import get_instrument
from ketaclinic.measures import selectors, services, tasks
from ketaclinic.measures.charts import BAND_COLOURS, RIGHT, WIDTH, TrendPoint, trend_svg
from ketaclinic.measures.models import Alert
from tests.conftest import register, signed_in
from tests.measures.helpers import actor, cssrs, phq9, record


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    world.prescriber.email = "prescriber@clinic-a.example"
    world.prescriber.save(update_fields=["email"])
    p = register(world.clinic_a, world.nurse, given_name="Rowan", family_name="Quill")
    p.responsible_prescriber = world.prescriber
    p.save()
    return p


# --- 1. items keep their own numbers ---------------------------------------------------------


def test_the_staff_form_numbers_cssrs_6a_as_6a(world, patient):  # type: ignore[no-untyped-def]
    url = reverse("measures:record", args=[patient.pk]) + "?code=cssrs_screen"
    page = signed_in(world.nurse).get(url).content.decode()
    legends = re.findall(r"<legend[^>]*>\s*([0-9]+[a-z]?)\. ", page)
    assert legends == ["1", "2", "3", "4", "5", "6", "6a"]


def test_a_missing_answer_names_the_items_own_number(world, patient):  # type: ignore[no-untyped-def]
    from ketaclinic.measures.forms import ScaleForm

    instrument = get_instrument("cssrs_screen")
    texts = selectors.item_texts(world.clinic_a, instrument)
    form = ScaleForm(instrument, texts, {"q1": "no"}, require_all=True)
    assert not form.is_valid()
    assert form.fields["q6a"].label.startswith("6a. ")
    assert form.errors["q6"] == ["Please answer question 6."]


def test_the_response_detail_numbers_cssrs_6a_as_6a(world, patient):  # type: ignore[no-untyped-def]
    response = record(world.nurse, patient, "cssrs_screen", cssrs(q6=True, q6a=False))
    page = signed_in(world.prescriber).get(
        reverse("measures:detail", args=[patient.pk, response.pk])
    )
    assert [row["number"] for row in page.context["rows"]] == ["1", "2", "3", "4", "5", "6", "6a"]


# --- 2. trend charts ------------------------------------------------------------------------------


def band_fills(svg: str) -> list[str]:
    """The band rectangles' colours, lowest total first."""
    bands = re.findall(r'<rect class="band" x="[^"]+" y="([^"]+)" [^>]*fill="([^"]+)"', svg)
    return [fill for _y, fill in sorted(bands, key=lambda b: -float(b[0]))]


def chart(code: str, totals: list[int]) -> str:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    points = [TrendPoint(start + timedelta(days=7 * n), Decimal(t)) for n, t in enumerate(totals)]
    return str(trend_svg(get_instrument(code), points, [], code))


@pytest.mark.parametrize(
    "code, expected",
    [
        # Lowest band calm, the scale's own worst band the most alarming colour.
        (
            "phq9",
            [BAND_COLOURS[0], BAND_COLOURS[1], BAND_COLOURS[2], BAND_COLOURS[4], BAND_COLOURS[5]],
        ),
        ("pcl5", [BAND_COLOURS[0], BAND_COLOURS[5]]),
        ("phq2", [BAND_COLOURS[0], BAND_COLOURS[5]]),
        # Readiness: higher is better, so "not ready" (low) is alarming and "ready" calm.
        ("aldrete_modified", [BAND_COLOURS[5], BAND_COLOURS[0]]),
    ],
)
def test_bands_are_coloured_by_their_own_severity(code, expected):  # type: ignore[no-untyped-def]
    assert band_fills(chart(code, [5, 6])) == expected


def test_band_labels_sit_in_a_right_margin_clear_of_the_points():  # type: ignore[no-untyped-def]
    svg = chart("phq9", [20, 10, 27])
    label_x = [float(x) for x in re.findall(r'<text class="band-label" x="([^"]+)"', svg)]
    point_x = [float(x) for x in re.findall(r'<circle class="point" cx="([^"]+)"', svg)]
    assert len(label_x) == 5 and len(point_x) == 3
    assert min(label_x) > max(point_x) + 8  # the latest point is not under a label
    assert max(label_x) < WIDTH - 80  # room for "Moderately severe"
    assert RIGHT >= 100


def test_trends_keep_the_instrument_lists_order(world, patient):  # type: ignore[no-untyped-def]
    now = timezone.now()
    # Answered in an order unlike the list's; the most recent one is GAD-7.
    record(world.nurse, patient, "pcl5", [1] * 20, administered_at=now - timedelta(days=3))
    record(world.nurse, patient, "phq9", phq9(1), administered_at=now - timedelta(days=2))
    record(world.nurse, patient, "qids_sr16", [1] * 16, administered_at=now - timedelta(days=5))
    record(world.nurse, patient, "gad7", [1] * 7, administered_at=now - timedelta(days=1))
    codes = [t.instrument.code for t in selectors.trends(patient)]
    assert codes == ["phq9", "gad7", "qids_sr16", "pcl5"]


# --- 3. no "new alert" email for an alert already acknowledged --------------------------------


def test_an_alert_acknowledged_before_the_worker_runs_sends_no_email(world, patient):  # type: ignore[no-untyped-def]
    record(world.nurse, patient, "phq9", phq9(q9=1))
    alert = Alert.objects.get()
    mail.outbox.clear()
    services.acknowledge_alert(actor(world.prescriber), alert, "Called the patient; safe.")
    tasks.notify_alert_opened.call_local(alert.pk)
    assert mail.outbox == []


def test_an_open_alert_still_emails_its_prescriber(world, patient):  # type: ignore[no-untyped-def]
    record(world.nurse, patient, "phq9", phq9(q9=1))
    alert = Alert.objects.get()
    mail.outbox.clear()
    tasks.notify_alert_opened.call_local(alert.pk)
    assert [m.to for m in mail.outbox] == [["prescriber@clinic-a.example"]]


def test_an_acknowledged_alert_is_never_escalated(world, patient):  # type: ignore[no-untyped-def]
    record(world.nurse, patient, "phq9", phq9(q9=2))
    alert = Alert.objects.get(severity="high")
    services.acknowledge_alert(actor(world.prescriber), alert, "Seen in clinic today.")
    assert services.escalate_overdue_alerts(now=alert.opened_at + timedelta(days=1)) == []
    alert.refresh_from_db()
    assert alert.escalated_at is None


@pytest.mark.parametrize(
    "code, numbers",
    [
        ("hamd17", [str(n) for n in range(1, 16)] + ["16a", "16b", "17"]),
        # Named items have no printed number: they are numbered by position.
        ("aldrete_modified", ["1", "2", "3", "4", "5"]),
    ],
)
def test_form_labels_use_printed_numbers_or_positions(world, code, numbers):  # type: ignore[no-untyped-def]
    from ketaclinic.measures.forms import ScaleForm

    instrument = get_instrument(code)
    form = ScaleForm(instrument, selectors.item_texts(world.clinic_a, instrument))
    labels = [form.fields[item.id].label for item in instrument.items]
    assert [label.split(". ", 1)[0] for label in labels] == numbers
