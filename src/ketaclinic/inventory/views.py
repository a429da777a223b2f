"""The controlled-substance ledger pages. Every write goes through
ketaclinic.inventory.services; a refused write shows the service's message at the field it is
about and stores nothing. Pages that show a patient record one audit read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from ketaclinic.accounts.access import has_perm, requires
from ketaclinic.accounts.roles import Perm
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.clinical import ledger as rules
from ketaclinic.inventory import forms, reports, selectors, services
from ketaclinic.inventory.models import CountStatus, EntryKind, Form


def _today() -> date:
    # The clinic's time zone is active for the request (ClinicMiddleware).
    return timezone.localdate()


def _actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request)


def _clinic(request: HttpRequest) -> Any:
    return request.clinic  # type: ignore[attr-defined]


def _kwargs(request: HttpRequest) -> dict[str, Any]:
    return {"clinic": _clinic(request), "today": _today()}


def _form_page(
    request: HttpRequest,
    form: forms.forms.Form,
    *,
    title: str,
    submit: str,
    intro: str = "",
    section: str = "",
    extra: dict[str, Any] | None = None,
    template: str = "inventory/form_page.html",
) -> HttpResponse:
    context = {"form": form, "title": title, "submit": submit, "intro": intro, "section": section}
    context.update(extra or {})
    return render(request, template, context)


# --- stock -----------------------------------------------------------------------------------


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def stock(request: HttpRequest) -> HttpResponse:
    clinic = _clinic(request)
    today = _today()
    stock_list = selectors.stock(clinic, today)
    losses = selectors.open_loss_reports(clinic)
    return render(
        request,
        "inventory/stock.html",
        {
            "section": "stock",
            "stock": stock_list,
            "warnings": selectors.expiry_warnings(stock_list),
            "warning_days": selectors.EXPIRY_WARNING_DAYS,
            "losses": [(loss, selectors.loss_deadlines(loss, today)) for loss in losses],
            "open_discrepancies": selectors.open_discrepancy_count(clinic),
            "inventory_due": selectors.inventory_due(clinic),
            "today": today,
            "has_setup": selectors.products(clinic).exists()
            and selectors.locations(clinic).exists(),
        },
    )


# --- set-up -----------------------------------------------------------------------------------


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def setup(request: HttpRequest) -> HttpResponse:
    clinic = _clinic(request)
    return render(
        request,
        "inventory/setup.html",
        {
            "section": "setup",
            "products": selectors.products(clinic),
            "suppliers": selectors.suppliers(clinic),
            "locations": selectors.locations(clinic),
        },
    )


def _setup_form(
    request: HttpRequest,
    form_class: type[forms.LedgerForm],
    create: Callable[[Actor, dict[str, Any]], Any],
    *,
    title: str,
    submit: str,
    intro: str,
) -> HttpResponse:
    form = form_class(request.POST or None, **_kwargs(request))
    if request.method == "POST" and form.is_valid():
        try:
            created = create(_actor(request), form.cleaned_data)
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Added {created}.")
            return redirect("ledger:setup")
    return _form_page(request, form, title=title, submit=submit, intro=intro, section="setup")


@requires(Perm.LEDGER_RECEIVE)
@require_http_methods(["GET", "POST"])
def product_create(request: HttpRequest) -> HttpResponse:
    def create(actor: Actor, d: dict[str, Any]) -> Any:
        return services.create_product(
            actor,
            drug=d["drug"],
            name=d["name"],
            ndc=d["ndc"],
            form=d["form"],
            concentration_mg_per_ml=d.get("concentration_mg_per_ml"),
            container_volume_ml=d.get("container_volume_ml"),
            device_mg=d.get("device_mg") if d["form"] != Form.INJECTION else None,
            devices_per_container=d.get("devices_per_container")
            if d["form"] != Form.INJECTION
            else None,
        )

    return _setup_form(
        request,
        forms.ProductForm,
        create,
        title="New product",
        submit="Add product",
        intro="A solution needs its concentration and vial volume; a nasal spray kit its mg per "
        "device and devices per kit.",
    )


@requires(Perm.LEDGER_RECEIVE)
@require_http_methods(["GET", "POST"])
def supplier_create(request: HttpRequest) -> HttpResponse:
    return _setup_form(
        request,
        forms.SupplierForm,
        lambda actor, d: services.create_supplier(
            actor, name=d["name"], address=d["address"], dea_number=d["dea_number"]
        ),
        title="New supplier",
        submit="Add supplier",
        intro="Every receipt records the supplier's name, address and DEA number "
        "(21 CFR 1304.22(c)). The DEA number's check digit is verified.",
    )


@requires(Perm.LEDGER_RECEIVE)
@require_http_methods(["GET", "POST"])
def location_create(request: HttpRequest) -> HttpResponse:
    return _setup_form(
        request,
        forms.LocationForm,
        lambda actor, d: services.create_location(actor, d["name"], d["kind"]),
        title="New storage location",
        submit="Add location",
        intro="Controlled substances are kept in a securely locked, substantially constructed "
        "cabinet (21 CFR 1301.75(b)).",
    )


# --- receipts ---------------------------------------------------------------------------------


@requires(Perm.LEDGER_RECEIVE)
@require_http_methods(["GET", "POST"])
def receive(request: HttpRequest) -> HttpResponse:
    form = forms.ReceiveForm(request.POST or None, **_kwargs(request))
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        actor = _actor(request)
        try:
            with transaction.atomic():  # a new supplier is kept only if the receipt is
                supplier = d["supplier"] or services.create_supplier(
                    actor,
                    name=d["new_supplier_name"].strip(),
                    address=d["new_supplier_address"].strip(),
                    dea_number=d["new_supplier_dea"],
                )
                entries = services.receive(
                    actor,
                    product=d["product"],
                    lot_number=d["lot_number"],
                    expiry=d["expiry"],
                    supplier=supplier,
                    invoice_number=d["invoice_number"],
                    received_on=d["received_on"],
                    containers=d["containers"],
                    location=d["location"],
                )
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            product = d["product"]
            total = sum(e.quantity_ug for e in entries)
            messages.success(
                request,
                f"Received {len(entries)} x {product.container_label} of lot "
                f"{d['lot_number']} into {d['location']}: "
                f"{selectors.quantity_text(total, product)}.",
            )
            return redirect("ledger:stock")
    return _form_page(
        request,
        form,
        title="Receive stock",
        submit="Record receipt",
        intro="One receipt entry is recorded per container, with the actual date received, the "
        "invoice and the supplier's DEA number.",
        section="stock",
        extra={"setup_missing": not selectors.products(_clinic(request)).exists()},
    )


# --- draw, administer, waste -------------------------------------------------------------------


@requires(Perm.LEDGER_ADMINISTER)
@require_http_methods(["GET", "POST"])
def draw(request: HttpRequest) -> HttpResponse:
    form = forms.DrawForm(request.POST or None, **_kwargs(request))
    if request.method == "POST" and form.is_valid() and form.cleaned_data["quantity_ug"]:
        d = form.cleaned_data
        try:
            entry = services.draw(
                _actor(request),
                patient=form.patient,  # type: ignore[arg-type]
                quantity_ug=d["quantity_ug"],
                container=d.get("container"),
                product=d["product"],
                location=d.get("location"),
            )
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            messages.success(
                request,
                f"Drew {selectors.quantity_text(entry.quantity_ug, entry.lot.product)} from "
                f"{entry.container.label}.",
            )
            return redirect("ledger:draw_detail", entry_id=entry.pk)
    return _form_page(
        request,
        form,
        title="Draw for a patient",
        submit="Record draw",
        intro="Draw the dose plus any residue you will waste. Then record the administration "
        "and the witnessed waste from the draw's page.",
        section="stock",
    )


def _draw_page(
    request: HttpRequest,
    entry_id: int,
    administer_form: forms.AdministerForm | None = None,
    waste_form: forms.WasteDrawForm | None = None,
) -> HttpResponse:
    clinic = _clinic(request)
    entry = selectors.get_draw(clinic, entry_id)
    product = entry.lot.product
    remaining = services.undispensed_ug(entry)
    reversed_ = hasattr(entry, "reversed_by")
    can_use = has_perm(request, Perm.LEDGER_ADMINISTER) and remaining > 0 and not reversed_
    if can_use:
        administer_form = administer_form or forms.AdministerForm(
            product=product, **_kwargs(request)
        )
        waste_form = waste_form or forms.WasteDrawForm(product=product, **_kwargs(request))
    audit.record_read(_actor(request), "ledger_draw", entry.pk, patient_id=entry.patient_id)
    return render(
        request,
        "inventory/draw.html",
        {
            "section": "entries",
            "entry": entry,
            "patient": entry.patient,
            "product": product,
            "drawn": selectors.quantity_text(entry.quantity_ug, product),
            "remaining_ug": remaining,
            "remaining": selectors.quantity_text(remaining, product),
            "uses": [
                (u, selectors.quantity_text(u.quantity_ug, product))
                for u in selectors.draw_uses(entry)
            ],
            "reversed": reversed_,
            "can_use": can_use,
            "administer_form": administer_form if can_use else None,
            "waste_form": waste_form if can_use else None,
        },
    )


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def draw_detail(request: HttpRequest, entry_id: int) -> HttpResponse:
    return _draw_page(request, entry_id)


@requires(Perm.LEDGER_ADMINISTER)
@require_http_methods(["POST"])
def draw_administer(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = selectors.get_draw(_clinic(request), entry_id)
    product = entry.lot.product
    form = forms.AdministerForm(request.POST, product=product, **_kwargs(request))
    if form.is_valid() and form.cleaned_data["quantity_ug"]:
        try:
            done = services.administer(_actor(request), entry, form.cleaned_data["quantity_ug"])
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            messages.success(
                request, f"Administered {selectors.quantity_text(done.quantity_ug, product)}."
            )
            return redirect("ledger:draw_detail", entry_id=entry.pk)
    return _draw_page(request, entry_id, administer_form=form)


@requires(Perm.LEDGER_ADMINISTER)
@require_http_methods(["POST"])
def draw_waste(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = selectors.get_draw(_clinic(request), entry_id)
    product = entry.lot.product
    form = forms.WasteDrawForm(request.POST, product=product, **_kwargs(request))
    if form.is_valid() and form.cleaned_data["quantity_ug"]:
        d = form.cleaned_data
        try:
            done = services.waste(
                _actor(request),
                quantity_ug=d["quantity_ug"],
                witness_username=d["witness_username"],
                witness_secret=d["witness_secret"],
                draw_entry=entry,
                reason=d.get("reason", ""),
            )
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            messages.success(
                request,
                f"Wasted {selectors.quantity_text(done.quantity_ug, product)}, witnessed by "
                f"{done.witness.display_name}.",  # type: ignore[union-attr]
            )
            return redirect("ledger:draw_detail", entry_id=entry.pk)
    return _draw_page(request, entry_id, waste_form=form)


@requires(Perm.LEDGER_ADMINISTER)
@require_http_methods(["GET", "POST"])
def waste(request: HttpRequest) -> HttpResponse:
    form = forms.WasteContainerForm(request.POST or None, **_kwargs(request))
    if request.method == "POST" and form.is_valid() and form.cleaned_data["quantity_ug"]:
        d = form.cleaned_data
        try:
            entry = services.waste(
                _actor(request),
                quantity_ug=d["quantity_ug"],
                witness_username=d["witness_username"],
                witness_secret=d["witness_secret"],
                container=d["container"],
                reason=d["reason"],
            )
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            messages.success(
                request,
                f"Wasted {selectors.quantity_text(entry.quantity_ug, entry.lot.product)} from "
                f"{entry.container.label}, witnessed by {entry.witness.display_name}.",  # type: ignore[union-attr]
            )
            return redirect("ledger:entry", entry_id=entry.pk)
    return _form_page(
        request,
        form,
        title="Waste from a container",
        submit="Record witnessed waste",
        intro="For drug left in an opened vial that will not be used again. Residue in a syringe "
        "is wasted from its draw's page instead. The witness signs in here with their own "
        "password or code.",
        section="stock",
    )


# --- movements out of stock ---------------------------------------------------------------------


@requires(Perm.LEDGER_ADMINISTER)
@require_http_methods(["GET", "POST"])
def transfer(request: HttpRequest) -> HttpResponse:
    form = forms.TransferForm(request.POST or None, **_kwargs(request))
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            entry = services.transfer(_actor(request), d["container"], d["to_location"])
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            messages.success(
                request,
                f"Moved {entry.container.label} from {entry.from_location} to {entry.to_location}.",
            )
            return redirect("ledger:stock")
    return _form_page(
        request,
        form,
        title="Transfer between locations",
        submit="Record transfer",
        section="stock",
    )


@requires(Perm.LEDGER_RECEIVE)
@require_http_methods(["GET", "POST"])
def return_stock(request: HttpRequest) -> HttpResponse:
    form = forms.ReturnForm(request.POST or None, **_kwargs(request))
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            entry = services.return_to_supplier(
                _actor(request),
                d["container"],
                recipient_name=d["recipient_name"],
                recipient_address=d["recipient_address"],
                recipient_dea=d["recipient_dea"],
                reason=d["reason"],
            )
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Recorded the return of {entry.container.label}.")
            return redirect("ledger:entry", entry_id=entry.pk)
    return _form_page(
        request,
        form,
        title="Return to supplier or reverse distributor",
        submit="Record return",
        intro="The whole container leaves stock. Record the recipient's name, address and DEA "
        "number.",
        section="stock",
    )


@requires(Perm.LEDGER_RECEIVE)
@require_http_methods(["GET", "POST"])
def destroy(request: HttpRequest) -> HttpResponse:
    form = forms.DestroyForm(request.POST or None, **_kwargs(request))
    if request.method == "POST" and form.is_valid() and form.cleaned_data["quantity_ug"]:
        d = form.cleaned_data
        try:
            entry = services.destroy(
                _actor(request),
                d["container"],
                quantity_ug=d["quantity_ug"],
                method=d["method"],
                place=d["place"],
                witnesses=(
                    (d["witness_username"], d["witness_secret"]),
                    (d["second_witness_username"], d["second_witness_secret"]),
                ),
                reason=d["reason"],
            )
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, "Destruction recorded with its DEA Form 41 details.")
            return redirect("ledger:entry", entry_id=entry.pk)
    return _form_page(
        request,
        form,
        title="Destroy stock (DEA Form 41)",
        submit="Record destruction",
        intro="Destruction of stock (not syringe residue) to a non-retrievable state, witnessed "
        "by two authorised employees who each sign in here.",
        section="stock",
    )


@requires(Perm.LEDGER_RECEIVE)
@require_http_methods(["GET", "POST"])
def adjust(request: HttpRequest) -> HttpResponse:
    initial = {}
    if request.method == "GET" and request.GET.get("discrepancy", "").isdigit():
        initial["discrepancy"] = int(request.GET["discrepancy"])
    form = forms.AdjustForm(request.POST or None, initial=initial, **_kwargs(request))
    if request.method == "POST" and form.is_valid() and form.cleaned_data.get("delta_ug"):
        d = form.cleaned_data
        try:
            entry = services.adjust(
                _actor(request),
                d["container"],
                delta_ug=d["delta_ug"],
                reason=d["reason"],
                discrepancy=d.get("discrepancy"),
            )
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Adjusted {entry.container.label}.")
            return redirect("ledger:entry", entry_id=entry.pk)
    return _form_page(
        request,
        form,
        title="Count adjustment",
        submit="Record adjustment",
        intro="Correct the book to what is physically there, with the reason. A mistaken entry "
        "is better reversed from its own page.",
        section="discrepancies",
    )


# --- ledger entries ----------------------------------------------------------------------------


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def entry_list(request: HttpRequest) -> HttpResponse:
    clinic = _clinic(request)
    form = forms.EntryFilterForm(request.GET or None)
    page = None
    if not request.GET or form.is_valid():
        f = form.to_filter() if request.GET else selectors.EntryFilter()
        page = selectors.entry_page(clinic, f, request.GET.get("page"))
        shown = list(page.object_list)
        patients = selectors.entry_patient_ids(shown)
        if patients:
            audit.record_read(
                _actor(request),
                "ledger_entries",
                "",
                patient_id=None,
                detail={"patients": patients},
            )
        page.object_list = [
            (
                e,
                selectors.quantity_text(e.quantity_ug, e.lot.product),
                rules.format_mg(e.container_balance_ug),
            )
            for e in shown
        ]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "inventory/entries.html",
        {"section": "entries", "form": form, "page": page, "query": query.urlencode()},
    )


def _entry_page(
    request: HttpRequest, entry_id: int, reverse_form: forms.ReasonForm | None = None
) -> HttpResponse:
    entry = selectors.get_entry(_clinic(request), entry_id)
    product = entry.lot.product
    reversed_by = getattr(entry, "reversed_by", None)
    can_reverse = (
        has_perm(request, Perm.LEDGER_RESOLVE)
        and entry.kind != EntryKind.REVERSAL
        and reversed_by is None
    )
    if entry.patient_id:
        audit.record_read(_actor(request), "ledger_entry", entry.pk, patient_id=entry.patient_id)
    return render(
        request,
        "inventory/entry.html",
        {
            "section": "entries",
            "entry": entry,
            "product": product,
            "quantity": selectors.quantity_text(entry.quantity_ug, product),
            "container_balance": selectors.quantity_text(entry.container_balance_ug, product),
            "lot_balance": selectors.quantity_text(entry.lot_balance_ug, product),
            "actor": selectors.signature(entry.actor),
            "witness": selectors.signature(entry.witness),
            "second_witness": selectors.signature(entry.second_witness),
            "reversed_by": reversed_by,
            "uses": selectors.draw_uses(entry) if entry.kind == EntryKind.DRAW else [],
            "can_reverse": can_reverse,
            "reverse_form": reverse_form or forms.ReasonForm() if can_reverse else None,
            "loss": getattr(entry, "loss", None) if entry.kind == EntryKind.LOSS else None,
        },
    )


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def entry_detail(request: HttpRequest, entry_id: int) -> HttpResponse:
    return _entry_page(request, entry_id)


@requires(Perm.LEDGER_RESOLVE)
@require_http_methods(["POST"])
def entry_reverse(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = selectors.get_entry(_clinic(request), entry_id)
    form = forms.ReasonForm(request.POST)
    if form.is_valid():
        try:
            reversal = services.reverse(_actor(request), entry, form.cleaned_data["reason"])
        except ValidationError as exc:
            if "reason" in getattr(exc, "error_dict", {}):
                form.add_error("reason", exc.error_dict["reason"])
            else:
                # Already reversed, a reversal, a draw with uses left: nothing to fix in the
                # form, so say why on the entry's page.
                messages.error(request, " ".join(exc.messages))
                return redirect("ledger:entry", entry_id=entry.pk)
        else:
            messages.success(
                request, f"Entry {entry.sequence} reversed by entry {reversal.sequence}."
            )
            return redirect("ledger:entry", entry_id=reversal.pk)
    return _entry_page(request, entry_id, reverse_form=form)


# --- losses ------------------------------------------------------------------------------------


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def loss_list(request: HttpRequest) -> HttpResponse:
    today = _today()
    found = selectors.loss_reports(_clinic(request))
    return render(
        request,
        "inventory/losses.html",
        {
            "section": "losses",
            "losses": [(r, selectors.loss_deadlines(r, today)) for r in found],
        },
    )


@requires(Perm.LEDGER_RESOLVE)
@require_http_methods(["GET", "POST"])
def loss_new(request: HttpRequest) -> HttpResponse:
    initial = {"discovered_at": timezone.localtime().replace(second=0, microsecond=0)}
    form = forms.LossForm(request.POST or None, initial=initial, **_kwargs(request))
    if request.method == "POST" and form.is_valid() and form.cleaned_data["quantity_ug"]:
        d = form.cleaned_data
        try:
            report = services.report_loss(
                _actor(request),
                d["container"],
                quantity_ug=d["quantity_ug"],
                kind=d["kind"],
                discovered_at=d["discovered_at"],
                description=d["description"],
            )
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            messages.warning(
                request,
                f"Recorded. Written notice to the DEA Field Division is due by "
                f"{report.notice_due:%Y-%m-%d}; Form 106 by {report.form_106_due:%Y-%m-%d}.",
            )
            return redirect("ledger:loss", loss_id=report.pk)
    return _form_page(
        request,
        form,
        title="Report a theft or significant loss",
        submit="Record and start Form 106",
        intro="Any theft, and any significant loss, is reported: written notice to the DEA "
        "Field Division within one business day of discovery, and DEA Form 106 filed "
        "electronically within 45 days (21 CFR 1301.76(b)).",
        section="losses",
    )


def _loss_page(
    request: HttpRequest, loss_id: int, done_form: forms.LossDoneForm | None = None
) -> HttpResponse:
    clinic = _clinic(request)
    report = selectors.get_loss_report(clinic, loss_id)
    entry = report.entry
    product = entry.lot.product
    return render(
        request,
        "inventory/loss.html",
        {
            "section": "losses",
            "report": report,
            "entry": entry,
            "product": product,
            "clinic": clinic,
            "quantity": selectors.quantity_text(entry.quantity_ug, product),
            "form_text": selectors.form_text(product),
            "deadlines": selectors.loss_deadlines(report, _today()),
            "can_mark": has_perm(request, Perm.LEDGER_RESOLVE),
            "done_form": done_form or forms.LossDoneForm(),
        },
    )


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def loss_detail(request: HttpRequest, loss_id: int) -> HttpResponse:
    return _loss_page(request, loss_id)


@requires(Perm.LEDGER_RESOLVE)
@require_http_methods(["POST"])
def loss_step(request: HttpRequest, loss_id: int) -> HttpResponse:
    report = selectors.get_loss_report(_clinic(request), loss_id)
    form = forms.LossDoneForm(request.POST)
    if form.is_valid():
        try:
            reports.mark_loss_step(
                _actor(request),
                report,
                form.cleaned_data["step"],
                form.cleaned_data.get("dea_confirmation", ""),
            )
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            messages.success(
                request,
                "DEA notice marked as sent."
                if form.cleaned_data["step"] == "notice"
                else "Form 106 marked as filed.",
            )
            return redirect("ledger:loss", loss_id=report.pk)
    return _loss_page(request, loss_id, done_form=form)


# --- counts --------------------------------------------------------------------------------------


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def count_list(request: HttpRequest) -> HttpResponse:
    return _count_list_page(request)


def _count_list_page(
    request: HttpRequest, start_form: forms.CountStartForm | None = None
) -> HttpResponse:
    clinic = _clinic(request)
    page = Paginator(selectors.counts(clinic), 30).get_page(request.GET.get("page"))
    can_count = has_perm(request, Perm.LEDGER_COUNT)
    return render(
        request,
        "inventory/counts.html",
        {
            "section": "counts",
            "page": page,
            "start_form": (start_form or forms.CountStartForm(**_kwargs(request)))
            if can_count
            else None,
        },
    )


@requires(Perm.LEDGER_COUNT)
@require_http_methods(["POST"])
def count_start(request: HttpRequest) -> HttpResponse:
    form = forms.CountStartForm(request.POST, **_kwargs(request))
    if form.is_valid():
        try:
            count = services.start_count(
                _actor(request), form.cleaned_data["location"], form.cleaned_data["kind"]
            )
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            return redirect("ledger:count", count_id=count.pk)
    return _count_list_page(request, start_form=form)


def _count_page(
    request: HttpRequest, count_id: int, count_form: forms.CountForm | None = None
) -> HttpResponse:
    count = selectors.get_count(_clinic(request), count_id)
    user = request.user
    done = count.status == CountStatus.DONE
    entered = user.pk in selectors.counter_ids(count)
    form = None
    if not done and not entered and has_perm(request, Perm.LEDGER_COUNT):
        form = count_form or forms.CountForm(lots=selectors.count_lots(count))
    return render(
        request,
        "inventory/count.html",
        {
            "section": "counts",
            "count": count,
            "done": done,
            "entered": entered,
            "counters": selectors.counters(count),
            "form": form,
            # The comparison exists only once both have counted: nothing unblinds an open count.
            "rows": selectors.count_comparison(count) if done else [],
        },
    )


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def count_detail(request: HttpRequest, count_id: int) -> HttpResponse:
    return _count_page(request, count_id)


@requires(Perm.LEDGER_COUNT)
@require_http_methods(["POST"])
def count_submit(request: HttpRequest, count_id: int) -> HttpResponse:
    count = selectors.get_count(_clinic(request), count_id)
    if count.status == CountStatus.DONE:
        messages.error(request, "This count is finished; start a new one to count again.")
        return redirect("ledger:count", count_id=count.pk)
    if request.user.pk in selectors.counter_ids(count):
        messages.error(request, "You have already entered your count; a second person must count.")
        return redirect("ledger:count", count_id=count.pk)
    form = forms.CountForm(request.POST, lots=selectors.count_lots(count))
    if form.is_valid():
        try:
            result = services.submit_count(_actor(request), count, form.cleaned_data["counted"])
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            if not result.complete:
                messages.success(
                    request,
                    "Your count is in. A second person now counts on their own; the figures "
                    "are compared once they have entered theirs.",
                )
            elif result.discrepancies:
                messages.error(
                    request,
                    f"Count complete: {len(result.discrepancies)} discrepanc"
                    f"{'y' if len(result.discrepancies) == 1 else 'ies'} opened.",
                )
            else:
                messages.success(request, "Count complete: both counts agree with the book.")
            return redirect("ledger:count", count_id=count.pk)
    return _count_page(request, count_id, count_form=form)


# --- discrepancies ---------------------------------------------------------------------------


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def discrepancy_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.discrepancies(_clinic(request)), 50).get_page(
        request.GET.get("page")
    )
    page.object_list = [
        (d, selectors.quantity_text(d.expected_ug, d.lot.product), selectors.discrepancy_figures(d))
        for d in page.object_list
    ]
    return render(
        request, "inventory/discrepancies.html", {"section": "discrepancies", "page": page}
    )


def _discrepancy_page(
    request: HttpRequest, discrepancy_id: int, form: forms.ResolveForm | None = None
) -> HttpResponse:
    d = selectors.get_discrepancy(_clinic(request), discrepancy_id)
    can_resolve = d.is_open and has_perm(request, Perm.LEDGER_RESOLVE)
    return render(
        request,
        "inventory/discrepancy.html",
        {
            "section": "discrepancies",
            "d": d,
            "book": selectors.quantity_text(d.expected_ug, d.lot.product),
            "figures": selectors.discrepancy_figures(d),
            "resolved_by": selectors.signature(d.resolved_by),
            "can_resolve": can_resolve,
            "form": form or forms.ResolveForm() if can_resolve else None,
        },
    )


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def discrepancy_detail(request: HttpRequest, discrepancy_id: int) -> HttpResponse:
    return _discrepancy_page(request, discrepancy_id)


@requires(Perm.LEDGER_RESOLVE)
@require_http_methods(["POST"])
def discrepancy_resolve(request: HttpRequest, discrepancy_id: int) -> HttpResponse:
    d = selectors.get_discrepancy(_clinic(request), discrepancy_id)
    form = forms.ResolveForm(request.POST)
    if form.is_valid():
        try:
            services.resolve_discrepancy(_actor(request), d, form.cleaned_data["resolution"])
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            messages.success(request, "Discrepancy resolved.")
            return redirect("ledger:discrepancy", discrepancy_id=d.pk)
    return _discrepancy_page(request, discrepancy_id, form=form)


# --- inventory ---------------------------------------------------------------------------------


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def inventory_list(request: HttpRequest) -> HttpResponse:
    clinic = _clinic(request)
    return render(
        request,
        "inventory/inventories.html",
        {
            "section": "inventory",
            "inventories": selectors.inventories(clinic)[:100],
            "due": selectors.inventory_due(clinic),
            "today": _today(),
            "annual": clinic.annual_inventory,
        },
    )


@requires(Perm.LEDGER_COUNT)
@require_http_methods(["GET", "POST"])
def inventory_new(request: HttpRequest) -> HttpResponse:
    clinic = _clinic(request)
    lots = selectors.inventory_lots(clinic)
    first = not selectors.inventories(clinic).exists()
    initial = {
        "kind": "initial" if first else ("annual" if clinic.annual_inventory else "biennial")
    }
    form = forms.InventoryForm(request.POST or None, lots=lots, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            inventory = services.take_inventory(
                _actor(request),
                kind=form.cleaned_data["kind"],
                timing=form.cleaned_data["timing"],
                lines=form.cleaned_data["lines"],
            )
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            messages.success(request, "Inventory recorded.")
            return redirect("ledger:inventory", inventory_id=inventory.pk)
    today = _today()
    return render(
        request,
        "inventory/inventory_form.html",
        {
            "section": "inventory",
            "form": form,
            "rows": [
                (
                    lot,
                    sealed,
                    opened,
                    selectors.form_text(lot.product),
                    selectors.expiry_status(lot.expiry, today),
                )
                for lot, sealed, opened in form.rows()
            ],
        },
    )


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def inventory_detail(request: HttpRequest, inventory_id: int) -> HttpResponse:
    inventory = selectors.get_inventory(_clinic(request), inventory_id)
    report = reports.inventory_report(inventory, request.user)  # type: ignore[arg-type]
    fmt = request.GET.get("format", "")
    if fmt in ("pdf", "csv"):
        return reports.export(_actor(request), report, fmt)
    return render(
        request,
        "inventory/report.html",
        {
            "section": "inventory",
            "report": report,
            "range_form": None,
            "download_query": "",
            "back": reverse("ledger:inventories"),
        },
    )


# --- reports -----------------------------------------------------------------------------------


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def report_index(request: HttpRequest) -> HttpResponse:
    today = _today()
    return render(
        request,
        "inventory/reports.html",
        {
            "section": "reports",
            "today": today,
            "month_ago": today - timedelta(days=30),
            "form": forms.RangeForm(initial={"date_from": today, "date_to": today}),
        },
    )


REPORT_DEFAULT_DAYS = {"administrations": 0, "receipts": 30, "discrepancies": 30}


def _report(request: HttpRequest, name: str) -> HttpResponse:
    clinic = _clinic(request)
    today = _today()
    user = request.user
    range_form = None
    if name == "stock":
        report = reports.on_hand(clinic, today, user)  # type: ignore[arg-type]
    else:
        data = request.GET.copy()
        if not data.get("date_from") and not data.get("date_to"):
            data["date_from"] = (today - timedelta(days=REPORT_DEFAULT_DAYS[name])).isoformat()
            data["date_to"] = today.isoformat()
        range_form = forms.RangeForm(data)
        if not range_form.is_valid():
            return render(
                request,
                "inventory/report.html",
                {"section": "reports", "report": None, "range_form": range_form, "title": name},
            )
        start, end = range_form.cleaned_data["date_from"], range_form.cleaned_data["date_to"]
        build = {
            "administrations": reports.administrations,
            "receipts": reports.receipts,
            "discrepancies": reports.discrepancy_report,
        }[name]
        report = build(clinic, start, end, user)  # type: ignore[operator]
    fmt = request.GET.get("format", "")
    if fmt in ("pdf", "csv"):
        return reports.export(_actor(request), report, fmt)
    if report.has_patient_data:
        audit.record_read(
            _actor(request),
            f"ledger_report_{report.name}",
            "",
            patient_id=None,
            detail={"period": report.period, "patients": report.patient_ids},
        )
    query = request.GET.copy()
    query.pop("format", None)
    if range_form is not None:
        query["date_from"] = range_form.cleaned_data["date_from"].isoformat()
        query["date_to"] = range_form.cleaned_data["date_to"].isoformat()
    return render(
        request,
        "inventory/report.html",
        {
            "section": "reports",
            "report": report,
            "range_form": range_form,
            "download_query": query.urlencode(),
            "back": reverse("ledger:reports"),
        },
    )


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def report_administrations(request: HttpRequest) -> HttpResponse:
    return _report(request, "administrations")


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def report_receipts(request: HttpRequest) -> HttpResponse:
    return _report(request, "receipts")


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def report_stock(request: HttpRequest) -> HttpResponse:
    return _report(request, "stock")


@requires(Perm.LEDGER_VIEW)
@require_http_methods(["GET"])
def report_discrepancies(request: HttpRequest) -> HttpResponse:
    return _report(request, "discrepancies")
