"""Ledger reports: the 21 CFR 1304.22(c) administration record, receipts, stock on hand,
discrepancies and inventories, as pages, PDF (WeasyPrint) and CSV; clinic-scoped, LEDGER_VIEW
only, and audited (one entry per export, with the patients it names)."""

from __future__ import annotations

import csv
import io
import re
import zlib
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from ketaclinic.accounts.roles import Role
from ketaclinic.audit.models import AuditEntry
from ketaclinic.inventory import services
from ketaclinic.inventory.models import Container
from tests.conftest import PASSWORD, register, signed_in
from tests.inventory.test_views import Ledger, a_draw, actor, make_ledger


@pytest.fixture
def ledger(world) -> Ledger:  # type: ignore[no-untyped-def]
    return make_ledger(world)


# --- reading a PDF back -----------------------------------------------------------------------


def pdf_text(data: bytes) -> str:
    """The text of a WeasyPrint PDF, page by page: objects (object streams too), each font's
    ToUnicode map, then the text-showing operators of each page's content. Enough to check
    what a report says without a PDF library."""
    objects: dict[int, tuple[bytes, bytes | None]] = {}  # number -> (dictionary, stream)
    for m in re.finditer(rb"(\d+) 0 obj\s*", data):
        start = m.end()
        head = data[start : data.find(b"endobj", start)]
        s = head.find(b"stream")
        if s >= 0 and b"/Length" in head[:s]:
            dictionary = head[:s]
            length = int(re.search(rb"/Length (\d+)", dictionary).group(1))  # type: ignore[union-attr]
            offset = start + s + len(b"stream")
            offset += 2 if data[offset : offset + 2] == b"\r\n" else 1
            raw = data[offset : offset + length]
            if b"/FlateDecode" in dictionary:
                raw = zlib.decompress(raw)
            objects[int(m.group(1))] = (dictionary, raw)
        else:
            objects[int(m.group(1))] = (head, None)
    for dictionary, content in list(objects.values()):
        if b"/ObjStm" in dictionary and content is not None:
            first = int(re.search(rb"/First (\d+)", dictionary).group(1))  # type: ignore[union-attr]
            numbers = content[:first].split()
            pairs = [(int(numbers[i]), int(numbers[i + 1])) for i in range(0, len(numbers), 2)]
            for n, (num, offset) in enumerate(pairs):
                end = pairs[n + 1][1] if n + 1 < len(pairs) else len(content) - first
                objects[num] = (content[first + offset : first + end], None)

    def unicode_map(num: int) -> dict[bytes, str]:
        cmap = objects[num][1] or b""
        mapping: dict[bytes, str] = {}
        for block in re.findall(rb"beginbfchar(.*?)endbfchar", cmap, re.S):
            for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
                mapping[bytes.fromhex(src.decode())] = bytes.fromhex(dst.decode()).decode(
                    "utf-16-be"
                )
        for block in re.findall(rb"beginbfrange(.*?)endbfrange", cmap, re.S):
            for lo, hi, dst in re.findall(
                rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block
            ):
                for code in range(int(lo, 16), int(hi, 16) + 1):
                    key = code.to_bytes(len(lo) // 2, "big")
                    mapping[key] = chr(int(dst, 16) + code - int(lo, 16))
        return mapping

    fonts: dict[bytes, dict[bytes, str]] = {}
    for dictionary, _ in objects.values():
        for name, ref in re.findall(rb"/([A-Za-z0-9+_-]+) (\d+) 0 R", dictionary):
            font = objects.get(int(ref), (b"", None))[0]
            to_unicode = re.search(rb"/ToUnicode (\d+) 0 R", font)
            if b"/Type /Font" in font and to_unicode:
                fonts[name] = unicode_map(int(to_unicode.group(1)))
    operators = re.compile(
        rb"/([A-Za-z0-9+_-]+) [\d.]+ Tf|\[(.*?)\]\s*TJ|<([0-9A-Fa-f]*)>\s*Tj|\bBT\b", re.S
    )
    pages = []
    for dictionary, _ in objects.values():
        if re.search(rb"/Type /Page\b", dictionary):
            ref = int(re.search(rb"/Contents (\d+) 0 R", dictionary).group(1))  # type: ignore[union-attr]
            content = objects[ref][1] or b""
            font: dict[bytes, str] = {}
            text: list[str] = []
            for m in operators.finditer(content):
                if m.group(1):
                    font = fonts.get(m.group(1), {})
                elif m.group(0) == b"BT":
                    text.append("\n")
                else:
                    shown = m.group(2) if m.group(2) is not None else b"<" + m.group(3) + b">"
                    for hexcode, kern in re.findall(rb"<([0-9A-Fa-f]*)>|(-?[\d.]+)", shown):
                        if kern and float(kern) < -200:
                            text.append(" ")
                        raw = bytes.fromhex(hexcode.decode()) if hexcode else b""
                        text.extend(font.get(raw[i : i + 2], "?") for i in range(0, len(raw), 2))
            pages.append("".join(text))
    return "\f".join(pages)


def squash(text: str) -> str:
    """Without whitespace: a PDF table cell breaks lines wherever the column is narrow."""
    return "".join(text.split())


def contains_all(text: str, *parts: str) -> list[str]:
    """The parts missing from text (whitespace ignored)."""
    flat = squash(text)
    return [p for p in parts if squash(p) not in flat]


# --- a day at the clinic -----------------------------------------------------------------------


def the_worked_example(ledger: Ledger, world, at: datetime | None = None):  # type: ignore[no-untyped-def]
    """clinical.md §5.10: draw 37.5 mg, give 35 mg, waste 2.5 mg in front of a witness."""
    nurse = actor(ledger.clinic, world.nurse)
    draw = services.draw(
        nurse,
        patient=ledger.patient,  # type: ignore[arg-type]
        quantity_ug=37_500,
        product=ledger.ketamine,
        location=ledger.safe,
        at=at,
    )
    given = services.administer(nurse, draw, 35_000, at=at and at + timedelta(minutes=5))
    wasted = services.waste(
        nurse,
        quantity_ug=2_500,
        witness_username=world.prescriber.username,
        witness_secret=PASSWORD,
        draw_entry=draw,
        reason="residue in syringe",
        at=at and at + timedelta(minutes=40),
    )
    return draw, given, wasted


ADMIN_LINES = [
    "Administration record",
    "Ketamine (racemic)",
    "Injection, solution, 50 mg/mL x 10 mL vial",
    "Administered",
    "35 mg",
    "0.7 mL",
    "Wasted: residue in syringe",
    "2.5 mg",
    "0.05 mL",
    "Smith, Ann",
    "1 Elm St, Springfield IL 62701",
    "NT (Nurse_A Tester)",
    "witness PT (Prescriber_A Tester), by password",
]


def test_the_administration_record_page(world, ledger):  # type: ignore[no-untyped-def]
    the_worked_example(ledger, world)
    # A mistaken administration, reversed: left out of the record, with a note.
    other = register(ledger.clinic, world.nurse, given_name="Bo", family_name="Mistake")
    draw = services.draw(
        actor(ledger.clinic, world.nurse),
        patient=other,
        quantity_ug=10_000,
        product=ledger.ketamine,
        location=ledger.safe,
    )
    wrong = services.administer(actor(ledger.clinic, world.nurse), draw, 10_000)
    services.reverse(actor(ledger.clinic, world.prescriber), wrong, "entered twice")

    client = signed_in(world.staff_a[Role.AUDITOR])
    last = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first()
    r = client.get(reverse("ledger:report_administrations"))  # today by default
    assert r.status_code == 200
    report = r.context["report"]
    assert [row.cells[4] for row in report.rows] == ["Administered", "Wasted: residue in syringe"]
    page = r.content.decode()
    assert contains_all(page, *ADMIN_LINES, "Left out: 1 reversed entry") == []
    assert "Mistake" not in page
    assert report.facts[:2] == [("Administered", "35 mg"), ("Wasted", "2.5 mg")]
    reads = list(AuditEntry.objects.filter(pk__gt=last))
    assert [(e.action, e.object_type, e.detail["patients"]) for e in reads] == [
        ("read", "ledger_report_administration-record", [ledger.patient.pk])  # type: ignore[attr-defined]
    ]


def test_the_administration_record_as_pdf_and_csv_is_audited_once_per_export(world, ledger):  # type: ignore[no-untyped-def]
    the_worked_example(ledger, world)
    client = signed_in(world.staff_a[Role.AUDITOR])
    today = timezone.localtime(timezone.now(), ZoneInfo(ledger.clinic.time_zone)).date()
    query = {"date_from": today.isoformat(), "date_to": today.isoformat()}
    last = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first()

    r = client.get(reverse("ledger:report_administrations"), {**query, "format": "pdf"})
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf"
    assert r["Content-Disposition"].startswith('attachment; filename="administration-record-')
    assert r.content.startswith(b"%PDF-")
    text = pdf_text(r.content)
    assert (
        contains_all(text, *ADMIN_LINES, "Administration record", "BK1234563", "Page 1 of 1") == []
    )

    r = client.get(reverse("ledger:report_administrations"), {**query, "format": "csv"})
    assert r["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    assert rows[0] == [
        "Date and time",
        "Substance",
        "Finished form",
        "NDC / lot",
        "Entry",
        "Quantity",
        "Volume / units",
        "Patient",
        "Patient address",
        "Administered / wasted by",
        "Witness",
    ]
    assert [row[4:7] for row in rows[1:]] == [
        ["Administered", "35 mg", "0.7 mL"],
        ["Wasted: residue in syringe", "2.5 mg", "0.05 mL"],
    ]
    assert (
        rows[2][7].startswith("Smith, Ann (MRN ") and rows[2][8] == "1 Elm St, Springfield IL 62701"
    )
    assert rows[2][10] == "PT (Prescriber_A Tester), by password"

    exports = list(AuditEntry.objects.filter(pk__gt=last).order_by("pk"))
    assert [
        (e.action, e.object_type, e.detail["format"], e.detail["patients"]) for e in exports
    ] == [
        ("export", "ledger_report_administration-record", "pdf", [ledger.patient.pk]),  # type: ignore[attr-defined]
        ("export", "ledger_report_administration-record", "csv", [ledger.patient.pk]),  # type: ignore[attr-defined]
    ]


def test_the_record_runs_by_the_clinics_day_and_refuses_a_backwards_range(world, ledger):  # type: ignore[no-untyped-def]
    tz = ZoneInfo(ledger.clinic.time_zone)
    yesterday = timezone.localtime(timezone.now(), tz).date() - timedelta(days=1)
    # Drawn 23:30 and given 23:35 New York time (already tomorrow in UTC); wasted at 00:10.
    the_worked_example(ledger, world, at=datetime.combine(yesterday, time(23, 30), tzinfo=tz))
    client = signed_in(world.prescriber)
    url = reverse("ledger:report_administrations")
    day = yesterday.isoformat()
    rows = client.get(url, {"date_from": day, "date_to": day}).context["report"].rows
    assert [row.cells[4] for row in rows] == ["Administered"]
    today = (yesterday + timedelta(days=1)).isoformat()
    rows = client.get(url, {"date_from": today, "date_to": today}).context["report"].rows
    assert [row.cells[4] for row in rows] == ["Wasted: residue in syringe"]
    r = client.get(url, {"date_from": today, "date_to": day, "format": "pdf"})
    assert r.status_code == 200 and r["Content-Type"].startswith("text/html")
    assert r.context["report"] is None
    assert r.context["range_form"].errors["date_to"] == ["The end date is before the start date."]


def test_reports_are_clinic_scoped_and_need_ledger_view(world, ledger):  # type: ignore[no-untyped-def]
    the_worked_example(ledger, world)
    for name in (
        "report_administrations",
        "report_receipts",
        "report_stock",
        "report_discrepancies",
    ):
        url = reverse(f"ledger:{name}")
        assert signed_in(world.staff_a[Role.FRONT_DESK]).get(url).status_code == 403
        for fmt in ("", "pdf", "csv"):
            r = signed_in(world.admin_b).get(url, {"format": fmt} if fmt else {})
            assert r.status_code == 200
            body = r.content if fmt != "pdf" else pdf_text(r.content).encode()
            for secret in (b"Smith", b"GOOD1", b"Acme"):
                assert secret not in body, (name, fmt, secret)


def test_the_receipts_report_names_supplier_address_and_dea_number(world, ledger):  # type: ignore[no-untyped-def]
    client = signed_in(world.staff_a[Role.CLINIC_ADMIN])
    r = client.get(reverse("ledger:report_receipts"))
    by_lot = {row.cells[3].split(" / ")[1]: row.cells for row in r.context["report"].rows}
    good = by_lot["GOOD1"]
    assert good[4:6] == ["10", "5000 mg (100 mL)"]
    assert good[6:10] == ["Acme Distribution", "1 Depot Rd, Columbus, OH", "RC0123454", "INV-GOOD1"]
    assert "OLD1" not in by_lot  # received 100 days ago: outside the last 30 days
    older = client.get(
        reverse("ledger:report_receipts"),
        {
            "date_from": (timezone.localdate() - timedelta(days=120)).isoformat(),
            "date_to": timezone.localdate().isoformat(),
        },
    )
    assert "OLD1" in older.content.decode()
    text = pdf_text(client.get(reverse("ledger:report_receipts"), {"format": "pdf"}).content)
    assert (
        contains_all(text, "Acme Distribution", "1 Depot Rd, Columbus, OH", "DEA RC0123454") == []
    )


def test_the_on_hand_report_flags_expiry(world, ledger):  # type: ignore[no-untyped-def]
    client = signed_in(world.nurse)
    report = client.get(reverse("ledger:report_stock")).context["report"]
    flags = {row.cells[2].split(" / ")[1]: (row.css, row.cells[4]) for row in report.rows}
    assert flags["OLD1"][0] == "expired" and flags["OLD1"][1].startswith("Expired ")
    assert flags["SOON1"] == ("soon", "Expires in 30 days")
    assert flags["GOOD1"] == ("", "")
    text = pdf_text(client.get(reverse("ledger:report_stock"), {"format": "pdf"}).content)
    assert contains_all(text, "Stock on hand", "Expires in 30 days", "Main safe", "Cart 1") == []
    rows = list(
        csv.reader(
            io.StringIO(
                client.get(reverse("ledger:report_stock"), {"format": "csv"}).content.decode()
            )
        )
    )
    assert rows[0][:5] == ["Location", "Product", "NDC / lot", "Expiry", "Warning"]


def test_the_discrepancy_report_shows_resolutions(world, ledger):  # type: ignore[no-untyped-def]
    nurse, prescriber = actor(ledger.clinic, world.nurse), actor(ledger.clinic, world.prescriber)
    count = services.start_count(nurse, ledger.cart)
    book = services.book_by_lot(ledger.cart)
    services.submit_count(nurse, count, book)
    [d] = services.submit_count(
        prescriber, count, {k: v - 28_000 for k, v in book.items()}
    ).discrepancies
    services.resolve_discrepancy(
        prescriber, d, "One device found in the sharps bin: wasted, not recorded."
    )
    client = signed_in(world.staff_a[Role.AUDITOR])
    [row] = client.get(reverse("ledger:report_discrepancies")).context["report"].rows
    assert row.cells[1] == "Cart 1" and row.cells[3] == "112 mg (4 devices)"
    assert "4 devices (112 mg)" in row.cells[4] and "3 devices (84 mg)" in row.cells[4]
    assert row.cells[5].startswith("Resolved ") and "sharps bin" in row.cells[6]
    text = pdf_text(client.get(reverse("ledger:report_discrepancies"), {"format": "pdf"}).content)
    assert contains_all(text, "sharps bin", "Resolved") == []


def test_the_inventory_report(world, ledger):  # type: ignore[no-untyped-def]
    a_draw(ledger, world.nurse)
    admin = actor(ledger.clinic, world.staff_a[Role.CLINIC_ADMIN])
    lines = [
        {"lot_id": ledger.good.pk, "sealed": 10, "opened_estimate_ug": 0},
        {"lot_id": ledger.soon.pk, "sealed": 1, "opened_estimate_ug": 450_000},  # ~9 mL
        {"lot_id": ledger.old.pk, "sealed": 1, "opened_estimate_ug": 0},
        {"lot_id": ledger.kits.pk, "sealed": 2, "opened_estimate_ug": 0},
    ]
    inventory = services.take_inventory(admin, kind="biennial", timing="opening", lines=lines)
    client = signed_in(world.staff_a[Role.AUDITOR])
    url = reverse("ledger:inventory", args=[inventory.pk])
    report = client.get(url).context["report"]
    soon = next(row for row in report.rows if "SOON1" in row.cells[1])
    assert soon.cells[2:] == [
        "1",
        "450 mg (9 mL)",
        "950 mg (19 mL)",
        "962.5 mg (19.25 mL)",
        "−12.5 mg (0.25 mL)",
    ]
    assert soon.css == "open"
    assert ("Taken at", "Opening of business") in report.facts
    last = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first()
    text = pdf_text(client.get(url, {"format": "pdf"}).content)
    assert (
        contains_all(
            text,
            "Biennial inventory",
            "Opening of business",
            "SOON1",
            "Next biennial inventory due by",
        )
        == []
    )
    csv_rows = list(csv.reader(io.StringIO(client.get(url, {"format": "csv"}).content.decode())))
    assert csv_rows[0] == [
        "Substance and form",
        "NDC / lot",
        "Sealed containers",
        "Opened (estimated)",
        "Total counted",
        "Book",
        "Difference",
    ]
    assert AuditEntry.objects.filter(pk__gt=last, action="export").count() == 2


def test_csv_cells_cannot_run_as_spreadsheet_formulas(world, ledger):  # type: ignore[no-untyped-def]
    evil = register(ledger.clinic, world.nurse, given_name="x", family_name="=HYPERLINK(1)")
    nurse = actor(ledger.clinic, world.nurse)
    vial = Container.objects.filter(lot=ledger.good).first()
    draw = services.draw(nurse, patient=evil, quantity_ug=1_000, container=vial)
    services.administer(nurse, draw, 1_000)
    r = signed_in(world.prescriber).get(reverse("ledger:report_administrations"), {"format": "csv"})
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    assert rows[1][7].startswith("'=HYPERLINK(1), x")


def test_the_reports_index(world, ledger):  # type: ignore[no-untyped-def]
    page = signed_in(world.staff_a[Role.AUDITOR]).get(reverse("ledger:reports")).content.decode()
    for name in (
        "report_administrations",
        "report_receipts",
        "report_stock",
        "report_discrepancies",
    ):
        assert reverse(f"ledger:{name}") in page
