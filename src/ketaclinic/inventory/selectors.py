"""Reads for the controlled-substance ledger pages and reports. Every query is scoped to one
clinic; ids of another clinic's rows answer 404. Quantities stay integer µg until shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from ketaclinic.accounts.models import Clinic, User
from ketaclinic.clinical import ledger as rules
from ketaclinic.inventory.models import (
    Container,
    Count,
    CountLine,
    CountStatus,
    Discrepancy,
    EntryKind,
    Form,
    Inventory,
    LedgerEntry,
    LossReport,
    Lot,
    Product,
    StorageLocation,
    Supplier,
)
from ketaclinic.patients.models import Patient

EXPIRY_WARNING_DAYS = 90
ENTRIES_PER_PAGE = 50


# --- showing quantities -----------------------------------------------------------------------


def ml_text(ug: int, product: Product) -> str:
    """'9.25 mL' for a solution ('' for a device product)."""
    if product.form != Form.INJECTION or not product.concentration_mg_per_ml:
        return ""
    ml = rules.ug_to_ml(ug, product.concentration_mg_per_ml).normalize()
    return f"{ml:f} mL"


def devices_text(ug: int, product: Product) -> str:
    if product.form == Form.INJECTION or not product.device_ug:
        return ""
    whole, part = divmod(ug, product.device_ug)
    if part:
        return (
            f"{(Decimal(ug) / product.device_ug).quantize(Decimal('0.01')).normalize():f} devices"
        )
    return f"{whole} device{'s' if whole != 1 else ''}"


def quantity_text(ug: int, product: Product) -> str:
    """'462.5 mg (9.25 mL)', '56 mg (2 devices)'."""
    other = ml_text(ug, product) or devices_text(ug, product)
    return f"{rules.format_mg(ug)} ({other})" if other else rules.format_mg(ug)


def count_unit(product: Product) -> str:
    """What a counter enters for this product: mL for solutions, devices for kits."""
    return "mL" if product.form == Form.INJECTION else "devices"


def initials(user: User | None) -> str:
    if user is None:
        return ""
    if user.initials:
        return user.initials
    letters = "".join(part[0] for part in (user.first_name, user.last_name) if part)
    return letters.upper() or user.username


def signature(user: User | None) -> str:
    """'NT (Nadia Tester, RN)': initials and the typed name (21 CFR 1304.22(c))."""
    if user is None:
        return ""
    return f"{initials(user)} ({user.display_name})"


def form_text(product: Product) -> str:
    """The finished form and units per container, e.g. 'Injection, solution 50 mg/mL x 10 mL
    vial' (21 CFR 1304.22(c)(2))."""
    return f"{product.get_form_display()}, {product.container_label}"


# --- set-up lists ------------------------------------------------------------------------------


def products(clinic: Clinic) -> QuerySet[Product]:
    return Product.objects.filter(clinic=clinic).order_by("drug", "name")


def suppliers(clinic: Clinic) -> QuerySet[Supplier]:
    return Supplier.objects.filter(clinic=clinic).order_by("name")


def locations(clinic: Clinic) -> QuerySet[StorageLocation]:
    return StorageLocation.objects.filter(clinic=clinic).order_by("name")


def lots(clinic: Clinic) -> QuerySet[Lot]:
    return (
        Lot.objects.filter(clinic=clinic)
        .select_related("product")
        .order_by("product__name", "expiry", "lot_number")
    )


def containers_in_stock(clinic: Clinic) -> QuerySet[Container]:
    """Containers that still hold drug, for the pick lists (expired ones too: they can still be
    moved, returned, destroyed or counted, and a draw from one is refused with a reason)."""
    return (
        Container.objects.filter(clinic=clinic, balance_ug__gt=0)
        .select_related("lot__product", "location")
        .order_by("location__name", "lot__product__name", "lot__expiry", "pk")
    )


def container_choice_label(container: Container, today: date) -> str:
    lot = container.lot
    flag = " EXPIRED" if lot.expiry <= today else ""
    state = "opened" if container.opened_at else "sealed"
    return (
        f"{container.label} · {lot.product.name} · {container.location.name} · "
        f"exp {lot.expiry:%Y-%m-%d}{flag} · {state}, "
        f"{quantity_text(container.balance_ug, lot.product)}"
    )


def patient_by_mrn(clinic: Clinic, mrn: str) -> Patient | None:
    return Patient.objects.filter(clinic=clinic, mrn__iexact=mrn.strip()).first()


# --- stock on hand -------------------------------------------------------------------------------


def expiry_status(expiry: date, today: date) -> tuple[str, str]:
    """('expired' | 'soon' | 'ok', words). A lot cannot be drawn on or after its expiry date."""
    days = (expiry - today).days
    if days <= 0:
        return "expired", f"Expired {expiry:%Y-%m-%d}"
    if days <= EXPIRY_WARNING_DAYS:
        return "soon", f"Expires in {days} day{'s' if days != 1 else ''}"
    return "ok", ""


@dataclass
class LotStock:
    lot: Lot
    product: Product
    location: StorageLocation
    containers: int = 0
    sealed: int = 0
    opened: int = 0
    balance_ug: int = 0
    status: str = "ok"
    status_text: str = ""

    @property
    def quantity(self) -> str:
        return quantity_text(self.balance_ug, self.product)

    @property
    def mg(self) -> str:
        return rules.format_mg(self.balance_ug)

    @property
    def volume(self) -> str:
        return ml_text(self.balance_ug, self.product) or devices_text(self.balance_ug, self.product)


@dataclass
class LocationStock:
    location: StorageLocation
    rows: list[LotStock] = field(default_factory=list)


def stock(clinic: Clinic, today: date) -> list[LocationStock]:
    """What is on hand, by location and lot (containers holding drug; the book figures)."""
    by_location: dict[int, LocationStock] = {
        loc.pk: LocationStock(loc) for loc in locations(clinic)
    }
    rows: dict[tuple[int, int], LotStock] = {}
    for c in containers_in_stock(clinic).order_by("lot__expiry", "lot__lot_number", "pk"):
        key = (c.location_id, c.lot_id)
        row = rows.get(key)
        if row is None:
            status, text = expiry_status(c.lot.expiry, today)
            row = rows[key] = LotStock(
                c.lot, c.lot.product, c.location, status=status, status_text=text
            )
            by_location[c.location_id].rows.append(row)
        row.containers += 1
        row.balance_ug += c.balance_ug
        if c.opened_at is None:
            row.sealed += 1
        else:
            row.opened += 1
    return list(by_location.values())


def expiry_warnings(stock_list: list[LocationStock]) -> dict[str, int]:
    rows = [r for loc in stock_list for r in loc.rows]
    return {
        "expired": sum(1 for r in rows if r.status == "expired"),
        "soon": sum(1 for r in rows if r.status == "soon"),
    }


# --- entries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryFilter:
    kind: str = ""
    lot: str = ""
    date_from: date | None = None
    date_to: date | None = None


def day_start(day: date) -> datetime:
    """Midnight at the start of `day` in the current (clinic) time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def entries(clinic: Clinic, f: EntryFilter | None = None) -> QuerySet[LedgerEntry]:
    f = f or EntryFilter()
    qs = LedgerEntry.objects.filter(clinic=clinic).select_related(
        "container",
        "lot__product",
        "actor",
        "witness",
        "second_witness",
        "patient",
        "from_location",
        "to_location",
        "reverses",
        "reversed_by",
    )
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.lot:
        qs = qs.filter(lot__lot_number__iexact=f.lot.strip())
    if f.date_from:
        qs = qs.filter(at__gte=day_start(f.date_from))
    if f.date_to:
        qs = qs.filter(at__lt=day_start(f.date_to + timedelta(days=1)))
    return qs.order_by("-sequence")


def entry_page(clinic: Clinic, f: EntryFilter, page_number: Any) -> Page:
    return Paginator(entries(clinic, f), ENTRIES_PER_PAGE).get_page(page_number)


def get_entry(clinic: Clinic, entry_id: int) -> LedgerEntry:
    entry = entries(clinic).filter(pk=entry_id).first()
    if entry is None:
        raise Http404("No such ledger entry in this clinic.")
    return entry


def get_draw(clinic: Clinic, entry_id: int) -> LedgerEntry:
    entry = get_entry(clinic, entry_id)
    if entry.kind != EntryKind.DRAW:
        raise Http404("That ledger entry is not a draw.")
    return entry


def draw_uses(draw: LedgerEntry) -> list[LedgerEntry]:
    return list(
        LedgerEntry.objects.filter(draw=draw)
        .select_related("actor", "witness", "reversed_by")
        .order_by("sequence")
    )


def entry_patient_ids(items: list[LedgerEntry]) -> list[int]:
    return sorted({e.patient_id for e in items if e.patient_id})


def reversed_ids(entry_ids: list[int]) -> set[int]:
    return set(
        LedgerEntry.objects.filter(reverses_id__in=entry_ids).values_list("reverses_id", flat=True)
    )


# --- counts, discrepancies, losses, inventories ---------------------------------------------


def counts(clinic: Clinic) -> QuerySet[Count]:
    return (
        Count.objects.filter(clinic=clinic)
        .select_related("location", "started_by")
        .order_by("-started_at", "-pk")
    )


def get_count(clinic: Clinic, count_id: int) -> Count:
    count = counts(clinic).filter(pk=count_id).first()
    if count is None:
        raise Http404("No such count in this clinic.")
    return count


def count_lots(count: Count) -> list[Lot]:
    """The lots a counter must give a figure for: those the book has at the location. Only the
    lots are named; never the quantity (the count is blind)."""
    lot_ids = (
        Container.objects.filter(location=count.location, balance_ug__gt=0)
        .values_list("lot_id", flat=True)
        .distinct()
    )
    return list(
        Lot.objects.filter(pk__in=list(lot_ids))
        .select_related("product")
        .order_by("product__name", "expiry", "lot_number")
    )


def counter_ids(count: Count) -> set[int]:
    """Who has entered figures (names only: never their figures while the count is open)."""
    ids = set(getattr(count, "counters", None) or [])
    ids |= set(CountLine.objects.filter(count=count).values_list("counter_id", flat=True))
    return ids


def counters(count: Count) -> list[User]:
    return list(User.objects.filter(pk__in=counter_ids(count)).order_by("pk"))


@dataclass
class CountRow:
    lot: Lot
    expected_ug: int
    figures: list[tuple[User, int | None]]
    discrepancy: Discrepancy | None

    def _show(self, ug: int | None) -> str:
        if ug is None:
            return "not counted"
        if self.lot.product.form == Form.INJECTION:
            return ml_text(ug, self.lot.product)
        return devices_text(ug, self.lot.product)

    @property
    def expected(self) -> str:
        return self._show(self.expected_ug)

    @property
    def shown_figures(self) -> list[tuple[User, str, str]]:
        out = []
        for user, ug in self.figures:
            diff = ""
            if ug is not None and ug != self.expected_ug:
                diff = self._show(abs(ug - self.expected_ug))
                diff = ("+" if ug > self.expected_ug else "−") + diff
            out.append((user, self._show(ug), diff))
        return out

    @property
    def matches(self) -> bool:
        return all(ug == self.expected_ug for _, ug in self.figures)


def count_comparison(count: Count) -> list[CountRow]:
    """After the second counter: each lot's book figure beside both counts. Never call this for
    an open count (it would unblind it)."""
    if count.status != CountStatus.DONE:
        raise ValueError("The comparison is shown only once both counters have entered theirs.")
    lines = list(CountLine.objects.filter(count=count).select_related("lot__product", "counter"))
    people = counters(count)
    discrepancies = {d.lot_id: d for d in Discrepancy.objects.filter(count=count)}
    rows = []
    for lot_id in sorted({line.lot_id for line in lines}):
        mine = [line for line in lines if line.lot_id == lot_id]
        figures = []
        for person in people:
            line = next((x for x in mine if x.counter_id == person.pk), None)
            figures.append((person, line.counted_ug if line else None))
        expected = mine[0].expected_ug or 0
        if lot_id in discrepancies:
            expected = discrepancies[lot_id].expected_ug
        rows.append(CountRow(mine[0].lot, expected, figures, discrepancies.get(lot_id)))
    return rows


def _flag(condition: Q) -> ExpressionWrapper:
    return ExpressionWrapper(condition, output_field=BooleanField())


def discrepancies(clinic: Clinic) -> QuerySet[Discrepancy]:
    """Open first, newest first."""
    return (
        Discrepancy.objects.filter(clinic=clinic)
        .select_related("lot__product", "location", "resolved_by", "count")
        .annotate(is_resolved=_flag(Q(resolved_at__isnull=False)))
        .order_by("is_resolved", "-opened_at", "-pk")
    )


def get_discrepancy(clinic: Clinic, discrepancy_id: int) -> Discrepancy:
    found = discrepancies(clinic).filter(pk=discrepancy_id).first()
    if found is None:
        raise Http404("No such discrepancy in this clinic.")
    return found


def discrepancy_figures(d: Discrepancy) -> list[tuple[str, str]]:
    """Each counter's figure, named, as text in the product's counting unit."""
    users = {str(u.pk): u for u in User.objects.filter(pk__in=[int(k) for k in d.counted])}
    product = d.lot.product
    out = []
    for user_id, ug in d.counted.items():
        user = users.get(str(user_id))
        shown = ml_text(ug, product) or devices_text(ug, product)
        out.append(
            (user.display_name if user else f"user {user_id}", f"{shown} ({rules.format_mg(ug)})")
        )
    return out


def open_discrepancy_count(clinic: Clinic) -> int:
    return Discrepancy.objects.filter(clinic=clinic, resolved_at__isnull=True).count()


def loss_reports(clinic: Clinic) -> QuerySet[LossReport]:
    """Open (a deadline still to meet) first."""
    return (
        LossReport.objects.filter(clinic=clinic)
        .select_related("entry__lot__product", "entry__container", "entry__actor")
        .annotate(is_done=_flag(Q(notice_sent_at__isnull=False, form_106_filed_at__isnull=False)))
        .order_by("is_done", "-discovered_at", "-pk")
    )


def open_loss_reports(clinic: Clinic) -> list[LossReport]:
    return list(
        loss_reports(clinic).filter(
            Q(notice_sent_at__isnull=True) | Q(form_106_filed_at__isnull=True)
        )
    )


def get_loss_report(clinic: Clinic, loss_id: int) -> LossReport:
    found = loss_reports(clinic).filter(pk=loss_id).first()
    if found is None:
        raise Http404("No such loss report in this clinic.")
    return found


@dataclass(frozen=True)
class Deadline:
    what: str
    due: date
    done_at: datetime | None
    days_left: int

    @property
    def state(self) -> str:
        if self.done_at:
            return "done"
        if self.days_left < 0:
            return "overdue"
        if self.days_left <= 1:
            return "due"
        return "open"

    @property
    def words(self) -> str:
        if self.done_at:
            return f"done {timezone.localtime(self.done_at):%Y-%m-%d %H:%M}"
        if self.days_left < 0:
            return f"OVERDUE since {self.due:%Y-%m-%d}"
        if self.days_left == 0:
            return f"due TODAY ({self.due:%Y-%m-%d})"
        plural = "s" if self.days_left != 1 else ""
        return f"due {self.due:%Y-%m-%d} ({self.days_left} day{plural} left)"


def loss_deadlines(report: LossReport, today: date) -> list[Deadline]:
    return [
        Deadline(
            "Written notice to the DEA Field Division (one business day)",
            report.notice_due,
            report.notice_sent_at,
            (report.notice_due - today).days,
        ),
        Deadline(
            "DEA Form 106 filed electronically (45 days)",
            report.form_106_due,
            report.form_106_filed_at,
            (report.form_106_due - today).days,
        ),
    ]


def inventories(clinic: Clinic) -> QuerySet[Inventory]:
    return Inventory.objects.filter(clinic=clinic).select_related("taken_by").order_by("-taken_at")


def get_inventory(clinic: Clinic, inventory_id: int) -> Inventory:
    found = inventories(clinic).filter(pk=inventory_id).first()
    if found is None:
        raise Http404("No such inventory in this clinic.")
    return found


def inventory_due(clinic: Clinic) -> date | None:
    """When the next full inventory is due (biennial, or annual where the clinic says so);
    None before the initial inventory."""
    last = inventories(clinic).first()
    if last is None:
        return None
    return rules.next_inventory_due(
        timezone.localtime(last.taken_at).date(), annual=clinic.annual_inventory
    )


def inventory_lots(clinic: Clinic) -> list[Lot]:
    """Every lot with stock on the book (expired and quarantined stock included, clinical.md
    §5.4)."""
    return list(lots(clinic).filter(balance_ug__gt=0))


@dataclass
class InventoryLine:
    raw: dict[str, Any]
    product: Product | None

    def _show(self, ug: int) -> str:
        if self.product is None:
            return rules.format_mg(ug)
        return quantity_text(ug, self.product)

    @property
    def sealed(self) -> int:
        return int(self.raw["sealed"])

    @property
    def opened(self) -> str:
        return self._show(int(self.raw["opened_estimate_ug"]))

    @property
    def counted(self) -> str:
        return self._show(int(self.raw["counted_ug"]))

    @property
    def book(self) -> str:
        return self._show(int(self.raw["book_ug"]))

    @property
    def difference_ug(self) -> int:
        return int(self.raw["counted_ug"]) - int(self.raw["book_ug"])

    @property
    def difference(self) -> str:
        d = self.difference_ug
        if not d:
            return ""
        return ("+" if d > 0 else "−") + self._show(abs(d))

    @property
    def form(self) -> str:
        return form_text(self.product) if self.product else ""


def inventory_lines(inventory: Inventory) -> list[InventoryLine]:
    ids = [line["lot_id"] for line in inventory.lines]
    lots_by_id = {lot.pk: lot for lot in Lot.objects.filter(pk__in=ids).select_related("product")}
    return [
        InventoryLine(
            line,
            lots_by_id[line["lot_id"]].product if line["lot_id"] in lots_by_id else None,
        )
        for line in inventory.lines
    ]
