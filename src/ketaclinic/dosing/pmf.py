"""The Spravato REMS Patient Monitoring Form (clinical.md §2.6) as a page and a printable PDF.

The fields come from ketaclinic.dosing.selectors.pmf_data(session), or, once the form is marked
submitted, from the copy frozen with it (what was sent is what stays on record)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.template.loader import render_to_string

from ketaclinic.dosing import selectors
from ketaclinic.dosing.models import PmfStatus, RemsMonitoringForm

RECENT_DAYS = 14
ENDINGS = {
    "routine": "Discharged home when ready",
    "against_advice": "Left early / against medical advice",
}

MEDICINE_LABELS = [
    ("benzodiazepines", "Benzodiazepines"),
    ("sedative_hypnotics", "Non-benzodiazepine sedative-hypnotics"),
    ("opioids", "Opioids"),
    ("psychostimulants", "Psychostimulants"),
    ("maois", "Monoamine oxidase inhibitors (MAOIs)"),
]


def data_for(session: Any, rems_form: Any) -> dict[str, Any]:
    if rems_form is not None and rems_form.status == "submitted" and rems_form.data:
        return dict(rems_form.data)
    return selectors.pmf_data(session)


def _yes_no(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return "Yes" if value else "No"


def _scale_name(code: Any) -> str:
    return {"cadss6": "CADSS-6", "cadss": "CADSS"}.get(str(code), str(code).upper())


def _event(e: dict[str, Any]) -> str:
    outcome = f", {e['outcome']}" if e.get("outcome") else ""
    return f"{e.get('kind', '')} ({e.get('severity', '')}{outcome})"


def _number(value: Any) -> str:
    """'5.00' -> '5', '4.50' -> '4.5'."""
    try:
        return f"{Decimal(str(value)).normalize():f}"
    except (InvalidOperation, ValueError):
        return str(value)


def _text(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def rows(d: dict[str, Any]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The form as sections of (key, label, value) rows, in the REMS form's order."""
    medicines = d.get("medicines") or {}
    events = d.get("adverse_events") or []
    dissociation = _yes_no(d.get("dissociation"))
    scores = d.get("dissociation_scores") or []
    if scores:
        dissociation += (
            " ("
            + ", ".join(
                f"{_scale_name(x.get('code'))} total {_number(x.get('total'))}" for x in scores
            )
            + ")"
        )
    sedation = _yes_no(d.get("sedation"))
    if d.get("lowest_moaas") is not None:
        sedation += f" (lowest MOAA/S {d['lowest_moaas']})"
    return [
        (
            "Patient",
            [
                (
                    "patient_name",
                    "Name",
                    f"{_text(d.get('patient_first_name'))} {_text(d.get('patient_last_name'))}",
                ),
                ("patient_dob", "Date of birth", _text(d.get("patient_dob"))),
                ("patient_sex", "Sex", _text(d.get("patient_sex"))),
                ("rems_patient_id", "REMS patient ID", _text(d.get("rems_patient_id"))),
                ("first_treatment", "First treatment", _yes_no(d.get("first_treatment"))),
            ],
        ),
        (
            "Concomitant medicines that may cause sedation or raise blood pressure",
            [(f"med_{k}", label, _yes_no(medicines.get(k))) for k, label in MEDICINE_LABELS],
        ),
        (
            "Healthcare setting and monitoring",
            [
                ("setting_name", "Setting", _text(d.get("setting_name"))),
                ("setting_address", "Address", _text(d.get("setting_address"))),
                ("rems_setting_id", "REMS setting ID", _text(d.get("rems_setting_id"))),
                (
                    "monitoring_clinician",
                    "Monitoring healthcare provider",
                    _text(d.get("monitoring_clinician")),
                ),
                ("monitoring_clinician_phone", "Phone", _text(d.get("monitoring_clinician_phone"))),
            ],
        ),
        (
            "Treatment",
            [
                ("treatment_date", "Treatment date", _text(d.get("treatment_date"))),
                (
                    "dose_mg",
                    "Dose",
                    f"{_text(d.get('dose_mg'))} mg ({_text(d.get('devices'))} devices)",
                ),
                ("lot_numbers", "Lot number", _text(d.get("lot_numbers"))),
                (
                    "total_minutes",
                    "Total monitoring time (minutes from first device)",
                    _text(d.get("total_minutes")),
                ),
                (
                    "ready_to_leave_minutes",
                    "Minutes until ready to leave (without the 2-hour rule)",
                    _text(d.get("ready_to_leave_minutes")),
                ),
            ],
        ),
        (
            "Vital signs",
            [
                (
                    "vitals_ok_before",
                    "Vital signs acceptable before administration",
                    _yes_no(d.get("vitals_ok_before")),
                ),
                (
                    "vitals_ok_after",
                    "Vital signs acceptable before completion",
                    _yes_no(d.get("vitals_ok_after")),
                ),
                ("bp_before", "Blood pressure before the dose", _text(d.get("bp_before"))),
                ("bp_40_min", "Blood pressure about 40 minutes after", _text(d.get("bp_40_min"))),
                (
                    "bp_before_discharge",
                    "Blood pressure before discharge",
                    _text(d.get("bp_before_discharge")),
                ),
            ],
        ),
        (
            "Events during monitoring",
            [
                ("sedation", "Sedation", sedation),
                ("dissociation", "Dissociation", dissociation),
                (
                    "respiratory_depression",
                    "Respiratory depression",
                    _yes_no(d.get("respiratory_depression")),
                ),
                (
                    "adverse_events",
                    "Adverse events",
                    "; ".join(_event(e) for e in events) or "None",
                ),
                (
                    "discharge_kind",
                    "How the session ended",
                    ENDINGS.get(d.get("discharge_kind") or "", _text(d.get("discharge_kind"))),
                ),
            ],
        ),
    ]


def render_pdf(clinic: Any, session: Any, rems_form: Any, data: dict[str, Any]) -> bytes:
    from weasyprint import HTML  # imported here: loading pango costs time at start-up

    html = render_to_string(
        "dosing/pmf_pdf.html",
        {
            "clinic": clinic,
            "session": session,
            "rems_form": rems_form,
            "d": data,
            "fields": rows(data),
        },
    )
    return HTML(string=html).write_pdf()  # type: ignore[no-any-return]


def recently_submitted(
    clinic: Any, today: date, days: int = RECENT_DAYS
) -> list[RemsMonitoringForm]:
    """Forms submitted in the last ``days`` days, newest first (one query)."""
    return list(
        RemsMonitoringForm.objects.filter(
            clinic=clinic,
            status=PmfStatus.SUBMITTED,
            submitted_on__gte=today - timedelta(days=days),
        )
        .select_related("session__patient")
        .order_by("-submitted_on", "-pk")[:50]
    )
