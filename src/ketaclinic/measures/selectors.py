"""Reads for rating scales: trends for the chart, alert queue, response detail."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.paginator import Page, Paginator
from django.shortcuts import get_object_or_404
from django.utils import timezone

from ketaclinic.accounts.models import Clinic
from ketaclinic.clinical import outcomes
from ketaclinic.clinical.instruments import get_instrument, list_instruments
from ketaclinic.clinical.instruments.model import Instrument
from ketaclinic.measures.charts import TrendPoint, trend_svg
from ketaclinic.measures.models import Alert, InstrumentWording, ScaleResponse
from ketaclinic.patients.models import Patient


@dataclass
class ScaleTrend:
    instrument: Instrument
    count: int
    latest: ScaleResponse
    baseline: ScaleResponse | None
    outcome: Any  # outcomes.Classification or None
    svg: str


def _classify(code: str, baseline: ScaleResponse | None, latest: ScaleResponse) -> Any:
    if (
        baseline is None
        or baseline.pk == latest.pk
        or baseline.total is None
        or latest.total is None
    ):
        return None
    try:
        return outcomes.classify(code, float(baseline.total), float(latest.total))
    except (KeyError, ValueError):
        return None


# What a trend needs from each response: not the answers' subscales and conventions (JSON the
# chart would decode for every response and never show).
TREND_FIELDS = ("instrument_code", "administered_at", "total", "band", "flags", "prorated")


def _trend_rows(patient: Patient) -> list[ScaleResponse]:
    return list(
        ScaleResponse.objects.filter(patient=patient)
        .only(*TREND_FIELDS)
        .order_by("instrument_code", "administered_at", "pk")
    )


def _build_trends(
    rows: list[ScaleResponse], visit_days: Callable[[], list[date]]
) -> list[ScaleTrend]:
    """One trend per scale in `rows`; `visit_days` is called once, and only when a trend has
    points to draw."""
    by_code: dict[str, list[ScaleResponse]] = defaultdict(list)
    for row in rows:
        by_code[row.instrument_code].append(row)
    # A fixed order, the instrument list's (PHQ-9, PHQ-2, GAD-7, QIDS-SR16, ...), so each
    # chart stays in its place from visit to visit.
    order = {instrument.code: n for n, instrument in enumerate(list_instruments())}
    days: list[date] | None = None
    result = []
    for code, responses in sorted(
        by_code.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])
    ):
        instrument = get_instrument(code)
        scored = [r for r in responses if r.total is not None]
        points = [
            TrendPoint(
                timezone.localtime(r.administered_at),
                r.total,  # type: ignore[arg-type]
                prorated=r.prorated,
                flagged="suicidality" in r.flags,
            )
            for r in scored
        ]
        if points and days is None:
            days = visit_days()
        baseline = scored[0] if scored else None
        latest = responses[-1]
        result.append(
            ScaleTrend(
                instrument=instrument,
                count=len(responses),
                latest=latest,
                baseline=baseline,
                outcome=_classify(code, baseline, latest),
                svg=trend_svg(instrument, points, days or [], f"{instrument.short_name} over time")
                if points
                else "",
            )
        )
    return result


def trends(patient: Patient, visit_days: list[date] | None = None) -> list[ScaleTrend]:
    """One trend per scale the patient has answered, from a single query."""
    return _build_trends(_trend_rows(patient), lambda: visit_days or [])


def visit_days(patient: Patient) -> list[date]:
    """Days the patient came in (checked in, in session or completed), in the clinic's local
    time, for the ticks on the trend charts: one query."""
    from ketaclinic.treatment.models import Appointment, AppointmentStatus

    starts = Appointment.objects.filter(
        patient=patient,
        starts_at__isnull=False,
        status__in=[
            AppointmentStatus.CHECKED_IN,
            AppointmentStatus.IN_SESSION,
            AppointmentStatus.COMPLETED,
        ],
    ).values_list("starts_at", flat=True)
    return sorted({timezone.localtime(at).date() for at in starts})


def open_alerts_for_patient(patient: Patient) -> list[Alert]:
    return list(
        Alert.objects.filter(patient=patient, acknowledged_at__isnull=True)
        .only("severity", "reasons", "opened_at")
        .order_by("-opened_at")
    )


@dataclass
class ChartScales:
    trends: list[ScaleTrend]
    open_alerts: list[Alert]


def chart_scales(patient: Patient) -> ChartScales:
    """The chart's rating-scale trends and open-alert banners: the responses, then the visit
    days only when a trend has points to draw, and the open alerts only when the patient
    has responses (an alert always belongs to one: Alert.response is required and
    protected), so a patient without scales costs one query instead of three."""
    rows = _trend_rows(patient)
    if not rows:
        return ChartScales(trends=[], open_alerts=[])
    return ChartScales(
        trends=_build_trends(rows, lambda: visit_days(patient)),
        open_alerts=open_alerts_for_patient(patient),
    )


def alert_queue(clinic: Clinic, *, show: str, user_id: int, page_number: Any) -> Page:
    alerts = Alert.objects.filter(clinic=clinic).select_related(
        "patient", "assigned_to", "acknowledged_by", "response"
    )
    if show == "open":
        alerts = alerts.filter(acknowledged_at__isnull=True)
    elif show == "mine":
        alerts = alerts.filter(acknowledged_at__isnull=True, assigned_to_id=user_id)
    alerts = (
        alerts.order_by("acknowledged_at", "-severity", "-opened_at")
        if show == "all"
        else alerts.order_by("-severity", "opened_at")
    )
    return Paginator(alerts, 25).get_page(page_number)


def get_alert(clinic: Clinic, alert_id: int) -> Alert:
    return get_object_or_404(
        Alert.objects.select_related("patient", "response", "assigned_to", "acknowledged_by"),
        pk=alert_id,
        clinic=clinic,
    )


def response_page(patient: Patient, page_number: Any) -> Page:
    rows = (
        ScaleResponse.objects.filter(patient=patient)
        .select_related("recorded_by")
        .order_by("-administered_at", "-pk")
    )
    return Paginator(rows, 25).get_page(page_number)


def get_response(patient: Patient, response_id: int) -> ScaleResponse:
    return get_object_or_404(
        ScaleResponse.objects.select_related("recorded_by"), pk=response_id, patient=patient
    )


def item_texts(clinic: Clinic, instrument: Instrument) -> dict[str, str]:
    """What each item says on screen: the clinic's licensed wording, the public-domain
    wording, or the item topic."""
    loaded = (
        InstrumentWording.objects.filter(clinic=clinic, instrument_code=instrument.code)
        .values_list("wording", flat=True)
        .first()
        or {}
    )
    return {item.id: loaded.get(item.id) or item.wording or item.topic for item in instrument.items}


def topic_only_self_report_scales(clinic: Clinic) -> list[Instrument]:
    """Self-report scales whose patient would see item topics, not the scale's own wording:
    the wording is not free to ship and the clinic has not loaded it (one query)."""
    from ketaclinic.measures.services import SELF_REPORT_CODES

    loaded = dict(
        InstrumentWording.objects.filter(
            clinic=clinic, instrument_code__in=SELF_REPORT_CODES
        ).values_list("instrument_code", "wording")
    )
    result = []
    for code in SELF_REPORT_CODES:
        instrument = get_instrument(code)
        wording = loaded.get(code) or {}
        if any(not (wording.get(item.id) or item.wording) for item in instrument.items):
            result.append(instrument)
    return result
