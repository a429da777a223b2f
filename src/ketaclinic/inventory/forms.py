"""Forms for the ledger pages. Quantities are typed as text and turned into integer µg with the
ledger's own rules (ketaclinic.clinical.ledger), so a figure with more precision than the unit
allows, a zero or a negative figure is refused at its field before any service is called."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from ketaclinic.accounts.models import Clinic
from ketaclinic.clinical import identifiers
from ketaclinic.clinical import ledger as rules
from ketaclinic.inventory import selectors
from ketaclinic.inventory.models import (
    Container,
    Discrepancy,
    Drug,
    EntryKind,
    Form,
    Lot,
    Product,
    StorageLocation,
    Supplier,
)

DATE_ERROR = "Enter a real date as YYYY-MM-DD, for example 2026-03-07."
UNIT_CHOICES = [("mg", "mg"), ("ml", "mL"), ("devices", "devices")]
WITNESS_HELP = "The witness types their own password, or the 6-digit code from their app."


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, format="%Y-%m-%d")


def _date_field(label: str, **kwargs: Any) -> forms.DateField:
    return forms.DateField(
        label=label, widget=DateInput(), error_messages={"invalid": DATE_ERROR}, **kwargs
    )


def _quantity_field(label: str = "Quantity", **kwargs: Any) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        **kwargs,
    )


def _unit_field(initial: str = "mg") -> forms.ChoiceField:
    return forms.ChoiceField(label="Unit", choices=UNIT_CHOICES, initial=initial)


def _witness_username(label: str = "Witness") -> forms.CharField:
    return forms.CharField(
        label=f"{label}'s username",
        max_length=150,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )


def _witness_secret(label: str = "Witness") -> forms.CharField:
    return forms.CharField(
        label=f"{label}'s password or code",
        max_length=128,
        strip=False,
        help_text=WITNESS_HELP,
        # new-password: browsers must not fill in the signed-in user's own password here.
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


def to_ug(raw: str, unit: str, product: Product, *, what: str = "Quantity") -> int:
    """A positive quantity typed in mg, mL (solutions) or devices (kits) as integer µg.
    ValueError with a message for the user."""
    raw = (raw or "").strip()
    if not raw:
        raise ValueError(f"Enter the {what.lower()}.")
    if unit == "mg":
        ug = rules.mg_to_ug(raw, what=what)
    elif unit == "ml":
        if product.form != Form.INJECTION or not product.concentration_mg_per_ml:
            raise ValueError(
                f"{product.name} is not a solution; enter the {what.lower()} in mg or devices."
            )
        ug = rules.ml_to_ug(raw, product.concentration_mg_per_ml, what=what)
    elif unit == "devices":
        if product.form == Form.INJECTION or not product.device_ug:
            raise ValueError(f"{product.name} is a solution; enter the {what.lower()} in mg or mL.")
        devices = _whole_number(raw, what)
        if devices <= 0:
            raise ValueError(f"{what} must be at least 1 device; got {raw}.")
        ug = devices * product.device_ug
    else:
        raise ValueError("Choose mg, mL or devices.")
    if product.form != Form.INJECTION and product.device_ug and ug % product.device_ug:
        raise ValueError(
            f"{product.name} is used in whole {rules.format_mg(product.device_ug)} devices; "
            f"{rules.format_mg(ug)} is not a whole number of devices."
        )
    return ug


def _whole_number(raw: str, what: str) -> int:
    try:
        number = Decimal(raw.strip())
    except InvalidOperation:
        raise ValueError(f"{what} must be a whole number; got {raw!r}.") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise ValueError(f"{what} must be a whole number; got {raw}.")
    if abs(number) > 100_000:
        raise ValueError(f"{what} is too large; got {raw}.")
    return int(number)


def counted_ug(raw: str, product: Product, what: str) -> int:
    """A count on hand (0 allowed): mL to 0.01 for solutions, whole devices for kits."""
    raw = (raw or "").strip()
    if not raw:
        raise ValueError(f"Enter the {what} (0 if there is none).")
    if product.form == Form.INJECTION:
        try:
            number = Decimal(raw)
        except InvalidOperation:
            raise ValueError(
                f"Enter the volume in mL as a number, e.g. 9.25; got {raw!r}."
            ) from None
        if number.is_finite() and number == 0:
            return 0
        if number.is_finite() and number < 0:
            raise ValueError(f"A count cannot be negative; got {raw} mL.")
        return rules.ml_to_ug(raw, product.concentration_mg_per_ml, what="Volume")
    devices = _whole_number(raw, "The number of devices")
    if devices < 0:
        raise ValueError(f"A count cannot be negative; got {raw} devices.")
    return devices * (product.device_ug or 0)


class ContainerChoiceField(forms.ModelChoiceField):
    def __init__(self, *args: Any, today: date | None = None, **kwargs: Any) -> None:
        self.today = today or timezone.localdate()
        super().__init__(*args, **kwargs)

    def label_from_instance(self, obj: Container) -> str:  # type: ignore[override]
        return selectors.container_choice_label(obj, self.today)


class LedgerForm(forms.Form):
    """Clinic-scoped choices, and service errors put next to the field they are about."""

    # service error key -> this form's field
    service_fields: dict[str, str] = {}
    # (legend, [field names]) to lay the form out in fieldsets; None: one fieldset.
    layout: list[tuple[str, list[str]]] | None = None

    def __init__(self, *args: Any, clinic: Clinic, today: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clinic = clinic
        self.today = today
        for f in self.fields.values():
            if isinstance(f, ContainerChoiceField):
                f.queryset = selectors.containers_in_stock(clinic)
                f.today = today

    def add_service_error(self, exc: ValidationError) -> None:
        if hasattr(exc, "error_dict"):
            for key, errors in exc.error_dict.items():
                target = self.service_fields.get(key, key)
                if target not in self.fields:
                    target = None  # type: ignore[assignment]
                for error in errors:
                    self.add_error(target, error.messages)
        else:
            self.add_error(None, exc.messages)

    def fieldsets(self) -> list[tuple[str, list[forms.BoundField]]]:
        layout = self.layout or [("", list(self.fields))]
        return [
            (legend, [self[name] for name in names if name in self.fields])
            for legend, names in layout
        ]

    def quantity(
        self,
        product: Product | None,
        field: str = "quantity",
        unit_field: str = "unit",
        what: str = "Quantity",
    ) -> int | None:
        """The typed quantity in µg, or None (with an error at the field)."""
        raw = self.cleaned_data.get(field, "")
        if product is None or not raw:
            return None
        try:
            return to_ug(raw, self.cleaned_data.get(unit_field, "mg"), product, what=what)
        except ValueError as exc:
            self.add_error(field, str(exc))
            return None


# --- set-up ------------------------------------------------------------------------------------


class ProductForm(LedgerForm):
    drug = forms.ChoiceField(choices=Drug.choices)
    name = forms.CharField(max_length=120, help_text="e.g. Ketamine HCl 50 mg/mL, 10 mL vial")
    ndc = forms.CharField(label="NDC", max_length=13, help_text="e.g. 42023-0114-10")
    form = forms.ChoiceField(choices=Form.choices)
    concentration_mg_per_ml = forms.CharField(
        label="Concentration (mg/mL)",
        required=False,
        max_length=12,
        help_text="Solutions only, e.g. 50",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    container_volume_ml = forms.CharField(
        label="Vial volume (mL)",
        required=False,
        max_length=12,
        help_text="Solutions only, e.g. 10",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    device_mg = forms.IntegerField(
        label="mg per device",
        required=False,
        min_value=1,
        max_value=1000,
        help_text="Nasal spray kits, e.g. 28",
    )
    devices_per_container = forms.IntegerField(
        label="Devices per kit",
        required=False,
        min_value=1,
        max_value=20,
        help_text="Nasal spray kits, e.g. 2 (56 mg) or 3 (84 mg)",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("form") == Form.INJECTION:
            for name, places, label in (
                ("concentration_mg_per_ml", 3, "The concentration"),
                ("container_volume_ml", 2, "The vial volume"),
            ):
                raw = (data.get(name) or "").strip()
                if not raw:
                    self.add_error(name, f"{label} is needed for a solution.")
                    continue
                try:
                    value = Decimal(raw)
                except InvalidOperation:
                    self.add_error(name, f"{label} must be a number; got {raw!r}.")
                    continue
                if not value.is_finite() or value <= 0:
                    self.add_error(name, f"{label} must be more than 0; got {raw}.")
                elif value >= 10_000:
                    # Before normalize(): '1E+9999999999' overflows the decimal context.
                    self.add_error(name, f"{label} is too large; got {raw}.")
                elif value.adjusted() < -places or (
                    -value.normalize().as_tuple().exponent > places  # type: ignore[operator]
                ):
                    self.add_error(name, f"{label} takes at most {places} decimal places.")
                else:
                    data[name] = value
            if not self.errors:
                try:
                    rules.ml_to_ug(data["container_volume_ml"], data["concentration_mg_per_ml"])
                except ValueError as exc:
                    self.add_error("container_volume_ml", str(exc))
        elif data.get("form") == Form.NASAL_SPRAY:
            for name in ("device_mg", "devices_per_container"):
                if not data.get(name):
                    self.add_error(name, "Needed for a nasal spray kit.")
            data["concentration_mg_per_ml"] = None
            data["container_volume_ml"] = None
        return data


class SupplierForm(LedgerForm):
    service_fields = {"__all__": "name"}
    name = forms.CharField(max_length=200)
    address = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    dea_number = forms.CharField(
        label="DEA number", max_length=9, required=False, help_text="2 letters and 7 digits"
    )

    def clean_dea_number(self) -> str:
        raw = self.cleaned_data.get("dea_number", "").strip()
        if not raw:
            raise ValidationError(
                "The supplier's DEA number is required on every CIII receipt record "
                "(21 CFR 1304.22(c))."
            )
        try:
            return identifiers.dea_number(raw)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class LocationForm(LedgerForm):
    name = forms.CharField(max_length=80, help_text="e.g. Main safe, Treatment cart 1")
    kind = forms.ChoiceField(
        choices=[("safe", "Safe"), ("cart", "Cart"), ("cabinet", "Locked cabinet")]
    )


# --- receipts and movements ----------------------------------------------------------------------


class ReceiveForm(LedgerForm):
    service_fields = {
        "dea_number": "new_supplier_dea",
        "name": "new_supplier_name",
        "address": "new_supplier_address",
    }
    layout = [
        ("What arrived", ["product", "lot_number", "expiry", "containers", "location"]),
        ("Supplier and invoice", ["supplier", "invoice_number", "received_on"]),
        (
            "A supplier not in the list",
            ["new_supplier_name", "new_supplier_address", "new_supplier_dea"],
        ),
    ]
    product = forms.ModelChoiceField(queryset=Product.objects.none())
    lot_number = forms.CharField(max_length=40, help_text="As printed on the container")
    expiry = _date_field("Expiry date")
    containers = forms.IntegerField(
        label="Number of containers",
        min_value=1,
        max_value=500,
        help_text="Vials or kits in this delivery of this lot",
        error_messages={
            "min_value": "Receive at least 1 container.",
            "max_value": "Receive at most 500 containers at a time.",
        },
    )
    location = forms.ModelChoiceField(label="Into", queryset=StorageLocation.objects.none())
    supplier = forms.ModelChoiceField(
        queryset=Supplier.objects.none(), required=False, empty_label="A new supplier (enter below)"
    )
    new_supplier_name = forms.CharField(label="New supplier: name", max_length=200, required=False)
    new_supplier_address = forms.CharField(
        label="New supplier: address", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    new_supplier_dea = forms.CharField(
        label="New supplier: DEA number",
        max_length=9,
        required=False,
        help_text="Required on every receipt record (21 CFR 1304.22(c))",
    )
    invoice_number = forms.CharField(max_length=60)
    received_on = _date_field("Date received", help_text="The actual date it arrived")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["product"].queryset = selectors.products(self.clinic)  # type: ignore[attr-defined]
        self.fields["location"].queryset = selectors.locations(self.clinic)  # type: ignore[attr-defined]
        self.fields["supplier"].queryset = selectors.suppliers(self.clinic)  # type: ignore[attr-defined]
        self.fields["received_on"].initial = self.today
        known = list(selectors.suppliers(self.clinic)[:2])
        if len(known) == 1:
            self.fields["supplier"].initial = known[0].pk
        safe = selectors.locations(self.clinic).filter(kind="safe").first()
        if safe is not None:
            self.fields["location"].initial = safe.pk

    def clean_received_on(self) -> date:
        day: date = self.cleaned_data["received_on"]
        if day > self.today:
            raise ValidationError("The receipt date cannot be in the future.")
        if day < self.today - timedelta(days=365):
            raise ValidationError("That is more than a year ago; check the date.")
        return day

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("expiry") and data.get("received_on") and data["expiry"] <= data["received_on"]:
            self.add_error(
                "expiry", "This lot is expired on arrival; do not receive it into stock."
            )
        if data.get("supplier") is None:
            if not (data.get("new_supplier_name") or "").strip():
                self.add_error(
                    "new_supplier_name",
                    "Choose a supplier above, or enter the new supplier's name.",
                )
            if not (data.get("new_supplier_address") or "").strip():
                self.add_error(
                    "new_supplier_address", "Enter the supplier's address (21 CFR 1304.22(c))."
                )
            raw = (data.get("new_supplier_dea") or "").strip()
            if not raw:
                self.add_error(
                    "new_supplier_dea",
                    "The supplier's DEA number is required on every CIII receipt record "
                    "(21 CFR 1304.22(c)).",
                )
            else:
                try:
                    data["new_supplier_dea"] = identifiers.dea_number(raw)
                except ValueError as exc:
                    self.add_error("new_supplier_dea", str(exc))
        return data


class DrawForm(LedgerForm):
    service_fields = {"quantity": "quantity", "container": "container"}
    layout = [
        ("Patient", ["patient_mrn"]),
        ("From", ["product", "location"]),
        ("A particular container (optional)", ["container"]),
        ("Amount drawn", ["quantity", "unit"]),
    ]
    patient_mrn = forms.CharField(
        label="Patient MRN",
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )
    product = forms.ModelChoiceField(queryset=Product.objects.none(), required=False)
    location = forms.ModelChoiceField(queryset=StorageLocation.objects.none(), required=False)
    container = ContainerChoiceField(
        queryset=Container.objects.none(),
        required=False,
        empty_label="Automatic: the first-expiring unexpired container",
        help_text="Leave on automatic unless you are using a particular vial or kit.",
    )
    quantity = _quantity_field(
        "Quantity drawn",
        help_text="The dose plus any residue you will waste, e.g. 37.5 mg or 0.75 mL",
    )
    unit = _unit_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        products = selectors.products(self.clinic)
        places = selectors.locations(self.clinic)
        self.fields["product"].queryset = products  # type: ignore[attr-defined]
        self.fields["location"].queryset = places  # type: ignore[attr-defined]
        first = products.filter(drug=Drug.KETAMINE).first() or products.first()
        if first is not None:
            self.fields["product"].initial = first.pk
        cart = places.filter(kind="cart").first() or places.first()
        if cart is not None:
            self.fields["location"].initial = cart.pk
        self.patient = None

    def clean_patient_mrn(self) -> str:
        mrn = self.cleaned_data["patient_mrn"].strip()
        patient = selectors.patient_by_mrn(self.clinic, mrn)
        if patient is None:
            raise ValidationError(f"No patient of this clinic has MRN {mrn}.")
        self.patient = patient
        return mrn

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        container: Container | None = data.get("container")
        # A particular container names its own product (whatever the product list shows).
        product = container.lot.product if container else data.get("product")
        if container is None:
            if data.get("product") is None and "product" not in self.errors:
                self.add_error("product", "Choose the product, or a particular container below.")
            if data.get("location") is None and "location" not in self.errors:
                self.add_error("location", "Choose where you are drawing from, or a container.")
        data["product"] = product
        data["quantity_ug"] = self.quantity(product)
        return data


class AdministerForm(LedgerForm):
    quantity = _quantity_field("Quantity administered", help_text="e.g. 35 mg or 0.70 mL")
    unit = _unit_field()

    def __init__(self, *args: Any, product: Product, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.product = product

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["quantity_ug"] = self.quantity(self.product)
        return data


class WasteDrawForm(LedgerForm):
    """Residue left in the syringe after a dose, wasted in front of a witness who signs in
    here, on this screen, with their own password or code."""

    service_fields = {"witness": "witness_username"}
    layout = [
        ("Amount wasted", ["quantity", "unit", "reason"]),
        ("Witness (signs in here, now)", ["witness_username", "witness_secret"]),
    ]
    quantity = _quantity_field("Quantity wasted", help_text="e.g. 2.5 mg or 0.05 mL")
    unit = _unit_field()
    reason = forms.CharField(max_length=200, required=False, initial="residue in syringe")
    witness_username = _witness_username()
    witness_secret = _witness_secret()

    def __init__(self, *args: Any, product: Product, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.product = product

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["quantity_ug"] = self.quantity(self.product)
        return data


class WasteContainerForm(LedgerForm):
    service_fields = {"witness": "witness_username"}
    layout = [
        ("Container", ["container"]),
        ("Amount wasted", ["quantity", "unit", "reason"]),
        ("Witness (signs in here, now)", ["witness_username", "witness_secret"]),
    ]
    container = ContainerChoiceField(queryset=Container.objects.none())
    quantity = _quantity_field("Quantity wasted")
    unit = _unit_field()
    reason = forms.CharField(max_length=200, initial="residue left in an opened vial")
    witness_username = _witness_username()
    witness_secret = _witness_secret()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        container = data.get("container")
        data["quantity_ug"] = self.quantity(container.lot.product if container else None)
        return data


class TransferForm(LedgerForm):
    layout = [("Container", ["container"]), ("Move it to", ["to_location"])]
    container = ContainerChoiceField(queryset=Container.objects.none())
    to_location = forms.ModelChoiceField(label="To", queryset=StorageLocation.objects.none())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to_location"].queryset = selectors.locations(self.clinic)  # type: ignore[attr-defined]


class ReturnForm(LedgerForm):
    layout = [
        ("Container", ["container"]),
        (
            "Returned to (supplier or reverse distributor)",
            ["recipient_name", "recipient_address", "recipient_dea", "reason"],
        ),
    ]
    container = ContainerChoiceField(
        queryset=Container.objects.none(), help_text="The whole container goes back."
    )
    reason = forms.CharField(max_length=200, help_text="e.g. expired, recalled, damaged packaging")
    recipient_name = forms.CharField(label="Name", max_length=200)
    recipient_address = forms.CharField(label="Address", widget=forms.Textarea(attrs={"rows": 2}))
    recipient_dea = forms.CharField(label="DEA number", max_length=9)

    def clean_recipient_dea(self) -> str:
        try:
            return identifiers.dea_number(self.cleaned_data["recipient_dea"])
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class DestroyForm(LedgerForm):
    """Destruction of stock on DEA Form 41: two authorised employees witness it, each signing
    in on this screen."""

    layout = [
        ("Container", ["container"]),
        ("What is destroyed", ["quantity", "unit", "reason"]),
        ("How and where (Form 41)", ["method", "place"]),
        ("First witness", ["witness_username", "witness_secret"]),
        ("Second witness", ["second_witness_username", "second_witness_secret"]),
    ]
    container = ContainerChoiceField(queryset=Container.objects.none())
    quantity = _quantity_field("Quantity destroyed")
    unit = _unit_field()
    reason = forms.CharField(max_length=200, help_text="e.g. expired, broken vial")
    method = forms.CharField(max_length=120, help_text="e.g. chemical digestion (Rx Destroyer)")
    place = forms.CharField(max_length=200, help_text="Where it was destroyed")
    witness_username = _witness_username("First witness")
    witness_secret = _witness_secret("First witness")
    second_witness_username = _witness_username("Second witness")
    second_witness_secret = _witness_secret("Second witness")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        container = data.get("container")
        data["quantity_ug"] = self.quantity(container.lot.product if container else None)
        first = (data.get("witness_username") or "").strip().lower()
        second = (data.get("second_witness_username") or "").strip().lower()
        if first and first == second:
            self.add_error("second_witness_username", "Destruction needs two different witnesses.")
        return data


class LossForm(LedgerForm):
    layout = [
        ("Container", ["container"]),
        ("What is missing", ["quantity", "unit", "kind"]),
        ("Discovery", ["discovered_at", "description"]),
    ]
    container = ContainerChoiceField(queryset=Container.objects.none())
    quantity = _quantity_field("Quantity missing")
    unit = _unit_field()
    kind = forms.ChoiceField(choices=[("theft", "Theft"), ("loss", "Significant loss")])
    discovered_at = forms.DateTimeField(
        label="Discovered at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        help_text="The deadlines run from discovery, not from when it happened.",
        error_messages={"invalid": "Enter a real date and time, e.g. 2026-11-22 09:30."},
    )
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What was found missing, how it was discovered, who had access.",
    )

    def clean_discovered_at(self):  # type: ignore[no-untyped-def]
        when = self.cleaned_data["discovered_at"]
        if when > timezone.now() + timedelta(minutes=5):
            raise ValidationError("Discovery cannot be in the future.")
        return when

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        container = data.get("container")
        data["quantity_ug"] = self.quantity(container.lot.product if container else None)
        return data


class LossDoneForm(forms.Form):
    step = forms.ChoiceField(choices=[("notice", "notice"), ("form_106", "form_106")])
    dea_confirmation = forms.CharField(
        label="DEA confirmation number",
        max_length=60,
        required=False,
        help_text="From the Form 106 filing receipt",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("step") == "form_106" and not (data.get("dea_confirmation") or "").strip():
            self.add_error("dea_confirmation", "Enter the confirmation number of the filing.")
        return data


class AdjustForm(LedgerForm):
    service_fields = {"quantity": "quantity"}
    layout = [
        ("Container", ["container"]),
        ("Change", ["direction", "quantity", "unit"]),
        ("Why", ["discrepancy", "reason"]),
    ]
    container = ContainerChoiceField(queryset=Container.objects.none())
    direction = forms.ChoiceField(
        label="Change to the book",
        choices=[
            ("remove", "Remove from the book (less on hand)"),
            ("add", "Add to the book (more on hand)"),
        ],
    )
    quantity = _quantity_field("Quantity")
    unit = _unit_field()
    discrepancy = forms.ModelChoiceField(
        queryset=Discrepancy.objects.none(),
        required=False,
        empty_label="None",
        help_text="The open discrepancy this adjustment explains, if any",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["discrepancy"]
        field.queryset = selectors.discrepancies(self.clinic).filter(resolved_at__isnull=True)  # type: ignore[attr-defined]
        field.label_from_instance = lambda d: (  # type: ignore[attr-defined]
            f"#{d.pk} · lot {d.lot.lot_number} · {d.location.name} · opened "
            f"{timezone.localtime(d.opened_at):%Y-%m-%d}"
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        container = data.get("container")
        ug = self.quantity(container.lot.product if container else None)
        if ug is not None:
            data["delta_ug"] = ug if data.get("direction") == "add" else -ug
        return data


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Why this entry is wrong", widget=forms.Textarea(attrs={"rows": 3}), max_length=1000
    )


class ResolveForm(forms.Form):
    resolution = forms.CharField(
        label="What was found and what was done",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=4000,
    )


# --- counts and inventory ----------------------------------------------------------------------


class CountStartForm(LedgerForm):
    location = forms.ModelChoiceField(queryset=StorageLocation.objects.none())
    kind = forms.ChoiceField(choices=[("daily", "End of day"), ("shift", "Shift change")])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["location"].queryset = selectors.locations(self.clinic)  # type: ignore[attr-defined]


class CountForm(forms.Form):
    """One counter's figures: per lot, the volume in mL (solutions) or devices (kits) on hand.
    No book figure is shown or sent with the form."""

    def __init__(self, *args: Any, lots: list[Lot], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lots = lots
        for lot in lots:
            unit = selectors.count_unit(lot.product)
            self.fields[f"lot_{lot.pk}"] = forms.CharField(
                label=f"{lot.product.name}, lot {lot.lot_number} ({unit})",
                max_length=12,
                help_text=(
                    "Total mL in every vial of this lot, to 0.01 mL"
                    if unit == "mL"
                    else "Unused devices of this lot, sealed kits included"
                ),
                widget=forms.TextInput(
                    attrs={
                        "inputmode": "decimal" if unit == "mL" else "numeric",
                        "autocomplete": "off",
                    }
                ),
            )

    def rows(self) -> list[tuple[Lot, forms.BoundField]]:
        return [(lot, self[f"lot_{lot.pk}"]) for lot in self.lots]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        counted: dict[int, int] = {}
        for lot in self.lots:
            name = f"lot_{lot.pk}"
            if name not in data:
                continue
            try:
                counted[lot.pk] = counted_ug(
                    data[name], lot.product, selectors.count_unit(lot.product)
                )
            except ValueError as exc:
                self.add_error(name, str(exc))
        data["counted"] = counted
        return data


class InventoryForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("initial", "Initial"), ("biennial", "Biennial"), ("annual", "Annual")],
        initial="biennial",
    )
    timing = forms.ChoiceField(
        label="Taken at",
        choices=[
            ("", "Choose…"),
            ("opening", "Opening of business"),
            ("close", "Close of business"),
        ],
        help_text="21 CFR 1304.11(a) asks which.",
    )

    def __init__(self, *args: Any, lots: list[Lot], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lots = lots
        for lot in lots:
            unit = selectors.count_unit(lot.product)
            self.fields[f"sealed_{lot.pk}"] = forms.IntegerField(
                label="Sealed containers",
                min_value=0,
                max_value=10_000,
                error_messages={"min_value": "A count cannot be negative."},
                widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
            )
            self.fields[f"opened_{lot.pk}"] = forms.CharField(
                label=f"Opened, estimated total ({unit})",
                max_length=12,
                required=False,
                help_text="Total left in opened containers; blank if none",
                widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
            )

    def rows(self) -> list[tuple[Lot, forms.BoundField, forms.BoundField]]:
        return [(lot, self[f"sealed_{lot.pk}"], self[f"opened_{lot.pk}"]) for lot in self.lots]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        lines = []
        for lot in self.lots:
            raw = (data.get(f"opened_{lot.pk}") or "").strip() or "0"
            try:
                opened = counted_ug(raw, lot.product, "estimate")
            except ValueError as exc:
                self.add_error(f"opened_{lot.pk}", str(exc))
                continue
            if data.get(f"sealed_{lot.pk}") is not None:
                lines.append(
                    {
                        "lot_id": lot.pk,
                        "sealed": data[f"sealed_{lot.pk}"],
                        "opened_estimate_ug": opened,
                    }
                )
        data["lines"] = lines
        return data


# --- filters and report ranges -------------------------------------------------------------------


class EntryFilterForm(forms.Form):
    kind = forms.ChoiceField(choices=[("", "All kinds"), *EntryKind.choices], required=False)
    lot = forms.CharField(label="Lot number", max_length=40, required=False)
    date_from = _date_field("From", required=False)
    date_to = _date_field("To", required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def to_filter(self) -> selectors.EntryFilter:
        d = self.cleaned_data
        return selectors.EntryFilter(
            kind=d.get("kind") or "",
            lot=d.get("lot") or "",
            date_from=d.get("date_from"),
            date_to=d.get("date_to"),
        )


class RangeForm(forms.Form):
    date_from = _date_field("From")
    date_to = _date_field("To")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end:
            if start > end:
                self.add_error("date_to", "The end date is before the start date.")
            elif (end - start).days > 800:
                self.add_error("date_from", "Choose at most about two years at a time.")
        return data
