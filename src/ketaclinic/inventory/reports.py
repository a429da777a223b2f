"""Ledger reports as tables (shown as HTML, exported as PDF with WeasyPrint and as CSV), and the
one small write the ledger pages need beyond ketaclinic.inventory.services: marking a loss
report's DEA notice sent and its Form 106 filed."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone

from ketaclinic.accounts.models import Clinic, User
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction
from ketaclinic.clinical import ledger as rules
from ketaclinic.inventory import selectors
from ketaclinic.inventory.models import (
    EntryKind,
    Inventory,
    LedgerEntry,
    LossReport,
)
from ketaclinic.patients.models import Patient


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    numeric: bool = False


@dataclass
class Row:
    cells: list[str]
    css: str = ""  # "expired" | "soon" | "open" | "" (HTML and PDF colour the row)


@dataclass
class Report:
    name: str
    title: str
    basis: str  # which rule the report answers
    columns: list[Column]
    rows: list[Row]
    clinic: Clinic
    period: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    patient_ids: list[int] = field(default_factory=list)
    generated_at: datetime = field(default_factory=timezone.now)
    generated_by: str = ""

    @property
    def has_patient_data(self) -> bool:
        return bool(self.patient_ids)

    def filename(self, extension: str) -> str:
        stamp = timezone.localtime(self.generated_at).strftime("%Y%m%d-%H%M")
        return f"{self.name}-{stamp}.{extension}"

    # How the page and the PDF show the columns: several CSV columns share one cell, each on
    # its own line (label, [(key, prefix)], numeric). None: one cell per column.
    layout: list[tuple[str, list[tuple[str, str]], bool]] | None = None

    def display_columns(self) -> list[tuple[str, bool]]:
        if self.layout is None:
            return [(c.label, c.numeric) for c in self.columns]
        return [(label, numeric) for label, _keys, numeric in self.layout]

    def display_rows(self) -> list[tuple[Row, list[tuple[str, bool, list[tuple[str, str]]]]]]:
        """Per row, per shown column: (label, numeric, [(text, style)]); the first line plain,
        the others 'muted', an expiry warning 'danger' or 'warn' (shown as badges)."""
        layout = self.layout or [(c.label, [(c.key, "")], c.numeric) for c in self.columns]
        index = {c.key: n for n, c in enumerate(self.columns)}
        out = []
        for row in self.rows:
            cells = []
            for label, keys, numeric in layout:
                lines: list[tuple[str, str]] = []
                for key, prefix in keys:
                    text = row.cells[index[key]]
                    if not text:
                        continue
                    if key == "warning":
                        style = "danger" if row.css == "expired" else "warn"
                    else:
                        style = "muted" if lines else ""
                    lines.append((prefix + text, style))
                cells.append((label, numeric, lines))
            out.append((row, cells))
        return out


def _local(moment: datetime) -> datetime:
    return timezone.localtime(moment)


def _day_range(start: date, end: date) -> tuple[datetime, datetime]:
    return selectors.day_start(start), selectors.day_start(end + timedelta(days=1))


def _period(start: date, end: date) -> str:
    return f"{start:%Y-%m-%d}" if start == end else f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"


def patient_address(p: Patient | None) -> str:
    if p is None:
        return ""
    street = ", ".join(x for x in (p.address_line1, p.address_line2) if x)
    town = " ".join(x for x in (p.city, p.state, p.postal_code) if x)
    return ", ".join(x for x in (street, town) if x) or "(no address on file)"


def _new(
    name: str,
    title: str,
    basis: str,
    clinic: Clinic,
    columns: list[Column],
    user: User | None,
    **kwargs: Any,
) -> Report:
    return Report(
        name=name,
        title=title,
        basis=basis,
        columns=columns,
        rows=[],
        clinic=clinic,
        generated_by=selectors.signature(user),
        **kwargs,
    )


# --- the reports ---------------------------------------------------------------------------------


def administrations(clinic: Clinic, start: date, end: date, user: User | None = None) -> Report:
    """The dispensing/administration record of 21 CFR 1304.22(c): per administration the
    substance, finished form, quantity, patient's name and address, date and the initials of
    who administered; wasted residue with its witness."""
    report = _new(
        "administration-record",
        "Administration record",
        "21 CFR 1304.22(c): controlled substances administered, with witnessed waste",
        clinic,
        [
            Column("date", "Date and time"),
            Column("substance", "Substance"),
            Column("form", "Finished form"),
            Column("lot", "NDC / lot"),
            Column("what", "Entry"),
            Column("mg", "Quantity", numeric=True),
            Column("volume", "Volume / units", numeric=True),
            Column("patient", "Patient"),
            Column("address", "Patient address"),
            Column("by", "Administered / wasted by"),
            Column("witness", "Witness"),
        ],
        user,
        period=_period(start, end),
    )
    since, until = _day_range(start, end)
    found = (
        LedgerEntry.objects.filter(
            clinic=clinic,
            kind__in=[EntryKind.ADMINISTRATION, EntryKind.WASTE],
            at__gte=since,
            at__lt=until,
        )
        .select_related("lot__product", "patient", "actor", "witness", "draw")
        .order_by("at", "sequence")
    )
    items = list(found)
    voided = selectors.reversed_ids([e.pk for e in items])
    administered = wasted = 0
    for e in items:
        if e.pk in voided:
            continue
        product = e.lot.product
        is_waste = e.kind == EntryKind.WASTE
        what = "Administered"
        if is_waste:
            what = "Wasted: " + (
                e.reason or ("residue in syringe" if e.draw_id else "left in container")
            )
            wasted += e.quantity_ug
        else:
            administered += e.quantity_ug
        patient = e.patient
        report.rows.append(
            Row(
                [
                    f"{_local(e.at):%Y-%m-%d %H:%M}",
                    product.get_drug_display(),
                    selectors.form_text(product),
                    f"{product.ndc} / {e.lot.lot_number}",
                    what,
                    rules.format_mg(e.quantity_ug),
                    selectors.ml_text(e.quantity_ug, product)
                    or selectors.devices_text(e.quantity_ug, product),
                    f"{patient.family_name}, {patient.given_name} (MRN {patient.mrn})"
                    if patient
                    else "",
                    patient_address(patient) if patient else "",
                    selectors.signature(e.actor),
                    (
                        f"{selectors.signature(e.witness)}, by "
                        f"{'code' if e.witness_method == 'totp' else 'password'}"
                    )
                    if e.witness
                    else "",
                ],
                "waste" if is_waste else "",
            )
        )
        if patient:
            report.patient_ids.append(patient.pk)
    report.patient_ids = sorted(set(report.patient_ids))
    report.layout = [
        ("Date", [("date", "")], False),
        ("Substance and form", [("substance", ""), ("form", ""), ("lot", "NDC / lot ")], False),
        ("Entry", [("what", "")], False),
        ("Quantity", [("mg", ""), ("volume", "")], True),
        ("Patient", [("patient", ""), ("address", "")], False),
        ("By", [("by", ""), ("witness", "witness ")], False),
    ]
    report.facts = [
        ("Administered", rules.format_mg(administered)),
        ("Wasted", rules.format_mg(wasted)),
        ("Lines", str(len(report.rows))),
    ]
    if voided:
        n = len(voided)
        report.notes.append(
            f"Left out: {n} reversed entr{'y' if n == 1 else 'ies'} (kept in the ledger with "
            f"{'its reversal' if n == 1 else 'their reversals'})."
        )
    return report


def receipts(clinic: Clinic, start: date, end: date, user: User | None = None) -> Report:
    """Receipts: containers received, the actual date, and the supplier's name, address and DEA
    number (21 CFR 1304.22(c)(3)), with the invoice (the CIII receipt record)."""
    report = _new(
        "receipts",
        "Receipts",
        "21 CFR 1304.22(c)(3): number of containers received, date, supplier name, address "
        "and DEA number",
        clinic,
        [
            Column("date", "Date received"),
            Column("product", "Product"),
            Column("form", "Finished form"),
            Column("lot", "NDC / lot / expiry"),
            Column("containers", "Containers", numeric=True),
            Column("quantity", "Quantity", numeric=True),
            Column("supplier", "Supplier"),
            Column("address", "Supplier address"),
            Column("dea", "Supplier DEA number"),
            Column("invoice", "Invoice"),
            Column("by", "Received by"),
        ],
        user,
        period=_period(start, end),
    )
    since, until = _day_range(start, end)
    items = list(
        LedgerEntry.objects.filter(
            clinic=clinic, kind=EntryKind.RECEIPT, at__gte=since, at__lt=until
        )
        .select_related("lot__product", "actor")
        .order_by("at", "sequence")
    )
    voided = selectors.reversed_ids([e.pk for e in items])
    groups: dict[tuple[Any, ...], list[LedgerEntry]] = {}
    for e in items:
        if e.pk in voided:
            continue
        key = (_local(e.at).date(), e.lot_id, e.detail.get("invoice", ""), e.actor_id)
        groups.setdefault(key, []).append(e)
    for (day, _lot, invoice, _actor), group in groups.items():
        first = group[0]
        product = first.lot.product
        total = sum(e.quantity_ug for e in group)
        report.rows.append(
            Row(
                [
                    f"{day:%Y-%m-%d}",
                    product.name,
                    selectors.form_text(product),
                    f"{product.ndc} / {first.lot.lot_number} / exp {first.lot.expiry:%Y-%m-%d}",
                    str(len(group)),
                    selectors.quantity_text(total, product),
                    first.detail.get("supplier", ""),
                    first.detail.get("supplier_address", "").replace("\n", ", "),
                    first.detail.get("supplier_dea", ""),
                    invoice,
                    selectors.signature(first.actor),
                ]
            )
        )
    report.facts = [("Deliveries", str(len(report.rows)))]
    report.layout = [
        ("Date received", [("date", "")], False),
        ("Product", [("product", ""), ("form", ""), ("lot", "NDC / lot / expiry: ")], False),
        ("Received", [("containers", "containers: "), ("quantity", "")], True),
        (
            "Supplier",
            [("supplier", ""), ("address", ""), ("dea", "DEA "), ("invoice", "invoice ")],
            False,
        ),
        ("Received by", [("by", "")], False),
    ]
    if voided:
        report.notes.append(f"Left out: {len(voided)} reversed receipt entries.")
    return report


def on_hand(clinic: Clinic, today: date, user: User | None = None) -> Report:
    report = _new(
        "on-hand",
        "Stock on hand",
        "Book quantities by location and lot, with expiry warnings (expired; within "
        f"{selectors.EXPIRY_WARNING_DAYS} days)",
        clinic,
        [
            Column("location", "Location"),
            Column("product", "Product"),
            Column("lot", "NDC / lot"),
            Column("expiry", "Expiry"),
            Column("warning", "Warning"),
            Column("sealed", "Sealed", numeric=True),
            Column("opened", "Opened", numeric=True),
            Column("mg", "On hand", numeric=True),
            Column("volume", "Volume / units", numeric=True),
        ],
        user,
        period=f"as of {_local(timezone.now()):%Y-%m-%d %H:%M}",
    )
    stock = selectors.stock(clinic, today)
    for place in stock:
        for r in place.rows:
            report.rows.append(
                Row(
                    [
                        place.location.name,
                        r.product.name,
                        f"{r.product.ndc} / {r.lot.lot_number}",
                        f"{r.lot.expiry:%Y-%m-%d}",
                        r.status_text,
                        str(r.sealed),
                        str(r.opened),
                        r.mg,
                        r.volume,
                    ],
                    r.status if r.status != "ok" else "",
                )
            )
    report.layout = [
        ("Location", [("location", "")], False),
        ("Product and lot", [("product", ""), ("lot", "NDC / lot ")], False),
        ("Expiry", [("expiry", ""), ("warning", "")], False),
        ("Sealed", [("sealed", "")], True),
        ("Opened", [("opened", "")], True),
        ("On hand", [("mg", ""), ("volume", "")], True),
    ]
    warnings = selectors.expiry_warnings(stock)
    report.facts = [
        ("Lots expired", str(warnings["expired"])),
        (f"Expiring within {selectors.EXPIRY_WARNING_DAYS} days", str(warnings["soon"])),
    ]
    return report


def discrepancy_report(clinic: Clinic, start: date, end: date, user: User | None = None) -> Report:
    report = _new(
        "discrepancies",
        "Count discrepancies and their resolutions",
        "Blind counts that did not agree with the book or with each other",
        clinic,
        [
            Column("opened", "Opened"),
            Column("location", "Location"),
            Column("lot", "Product / lot"),
            Column("book", "Book", numeric=True),
            Column("counted", "Counted"),
            Column("status", "Status"),
            Column("resolution", "Resolution"),
        ],
        user,
        period=_period(start, end),
    )
    since, until = _day_range(start, end)
    found = selectors.discrepancies(clinic).filter(opened_at__gte=since, opened_at__lt=until)
    for d in found:
        product = d.lot.product
        figures = "; ".join(f"{who}: {what}" for who, what in selectors.discrepancy_figures(d))
        status = (
            f"Resolved {_local(d.resolved_at):%Y-%m-%d %H:%M} by "
            f"{selectors.signature(d.resolved_by)}"
            if d.resolved_at
            else "OPEN"
        )
        report.rows.append(
            Row(
                [
                    f"{_local(d.opened_at):%Y-%m-%d %H:%M}",
                    d.location.name,
                    f"{product.name} / lot {d.lot.lot_number}",
                    selectors.quantity_text(d.expected_ug, product),
                    figures,
                    status,
                    d.resolution,
                ],
                "" if d.resolved_at else "open",
            )
        )
    report.layout = [
        ("Opened", [("opened", "")], False),
        ("Where", [("location", ""), ("lot", "")], False),
        ("Book", [("book", "")], True),
        ("Counted", [("counted", "")], False),
        ("Resolution", [("status", ""), ("resolution", "")], False),
    ]
    report.facts = [
        ("Open", str(sum(1 for r in report.rows if r.css == "open"))),
        ("Resolved", str(sum(1 for r in report.rows if r.css != "open"))),
    ]
    return report


def inventory_report(inventory: Inventory, user: User | None = None) -> Report:
    clinic = inventory.clinic
    report = _new(
        f"inventory-{inventory.kind}",
        f"{inventory.get_kind_display()} inventory",
        "21 CFR 1304.11: sealed containers counted exactly; opened containers of a CIII "
        "substance estimated",
        clinic,
        [
            Column("product", "Substance and form"),
            Column("lot", "NDC / lot"),
            Column("sealed", "Sealed containers", numeric=True),
            Column("opened", "Opened (estimated)", numeric=True),
            Column("counted", "Total counted", numeric=True),
            Column("book", "Book", numeric=True),
            Column("difference", "Difference", numeric=True),
        ],
        user,
        period=f"{_local(inventory.taken_at):%Y-%m-%d %H:%M}",
    )
    for line in selectors.inventory_lines(inventory):
        raw = line.raw
        report.rows.append(
            Row(
                [
                    f"{raw['product']}: {line.form}",
                    f"{raw['ndc']} / {raw['lot']}",
                    str(line.sealed),
                    line.opened,
                    line.counted,
                    line.book,
                    line.difference,
                ],
                "open" if line.difference_ug else "",
            )
        )
    report.layout = [
        ("Substance, form and lot", [("product", ""), ("lot", "NDC / lot ")], False),
        ("Sealed containers", [("sealed", "")], True),
        ("Opened (estimated)", [("opened", "")], True),
        ("Total counted", [("counted", "")], True),
        ("Book", [("book", "")], True),
        ("Difference", [("difference", "")], True),
    ]
    report.facts = [
        ("Kind", inventory.get_kind_display()),
        ("Taken at", inventory.get_timing_display()),
        ("Date", f"{_local(inventory.taken_at):%Y-%m-%d %H:%M}"),
        ("Taken by", selectors.signature(inventory.taken_by)),
    ]
    due = rules.next_inventory_due(
        _local(inventory.taken_at).date(), annual=clinic.annual_inventory
    )
    report.notes.append(
        f"Next {'annual' if clinic.annual_inventory else 'biennial'} inventory due by "
        f"{due:%Y-%m-%d}."
    )
    if not report.rows:
        report.notes.append("No stock on hand: a zero inventory.")
    return report


# --- output ------------------------------------------------------------------------------------


def render_pdf(report: Report) -> bytes:
    from weasyprint import HTML  # imported here: loading pango costs time at start-up

    html = render_to_string("inventory/reports/pdf.html", {"report": report})
    return HTML(string=html).write_pdf()  # type: ignore[no-any-return]


def render_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.label for c in report.columns])
    for row in report.rows:
        writer.writerow([_csv_safe(cell) for cell in row.cells])
    return out.getvalue()


def _csv_safe(value: str) -> str:
    # A cell starting with = + - @ is run as a formula by spreadsheets (CSV injection).
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export(actor: Actor, report: Report, fmt: str) -> HttpResponse:
    """The report as a PDF or CSV download, audited once (with the patients it names)."""
    if fmt == "pdf":
        body: bytes | str = render_pdf(report)
        content_type = "application/pdf"
    else:
        body = render_csv(report)
        content_type = "text/csv; charset=utf-8"
    audit.record(
        actor,
        AuditAction.EXPORT,
        f"ledger_report_{report.name}",
        "",
        detail={
            "format": fmt,
            "period": report.period,
            "rows": len(report.rows),
            "patients": report.patient_ids,
        },
    )
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{report.filename(fmt)}"'
    return response


# --- loss reports: the DEA notice and Form 106 ---------------------------------------------------


@transaction.atomic
def mark_loss_step(
    actor: Actor, report: LossReport, step: str, confirmation: str = ""
) -> LossReport:
    """Record that the one-business-day written notice was sent ('notice') or that DEA Form 106
    was filed ('form_106', with DEA's confirmation number). Each step is recorded once."""
    locked = LossReport.objects.select_for_update().get(pk=report.pk, clinic=actor.clinic)
    now = timezone.now()
    if step == "notice":
        if locked.notice_sent_at is not None:
            raise ValidationError("The DEA notice is already marked as sent.")
        locked.notice_sent_at = now
        fields = ["notice_sent_at"]
    elif step == "form_106":
        if locked.form_106_filed_at is not None:
            raise ValidationError("Form 106 is already marked as filed.")
        if not confirmation.strip():
            raise ValidationError(
                {"dea_confirmation": "Enter the confirmation number of the filing."}
            )
        locked.form_106_filed_at = now
        locked.dea_confirmation = confirmation.strip()
        fields = ["form_106_filed_at", "dea_confirmation"]
    else:
        raise ValidationError("Unknown step.")
    locked.save(update_fields=fields)
    audit.record(
        actor,
        AuditAction.UPDATE,
        "ledger_loss_report",
        locked.pk,
        detail={"step": step, "confirmation": locked.dea_confirmation},
    )
    return locked
