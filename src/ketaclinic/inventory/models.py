"""The controlled-substance ledger. Quantities are integer micrograms (µg) of drug as labelled
(see ketaclinic.clinical.ledger). Entries are append-only and hash-chained per clinic."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ketaclinic.accounts.models import validate_dea_number


class Drug(models.TextChoices):
    KETAMINE = "ketamine", "Ketamine (racemic)"
    ESKETAMINE = "esketamine", "Esketamine"


class Form(models.TextChoices):
    INJECTION = "injection", "Injection, solution"
    NASAL_SPRAY = "nasal_spray", "Nasal spray device"


class Product(models.Model):
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    drug = models.CharField(max_length=20, choices=Drug.choices)
    name = models.CharField(max_length=120, help_text="e.g. Ketamine HCl 50 mg/mL, 10 mL vial")
    ndc = models.CharField("NDC", max_length=13)
    form = models.CharField(max_length=20, choices=Form.choices)
    # Solutions: concentration and volume per container. Devices: µg per device and devices
    # per kit. Either way the container's content in µg is stored, so arithmetic never
    # depends on the form.
    concentration_mg_per_ml = models.DecimalField(
        max_digits=7, decimal_places=3, null=True, blank=True
    )
    container_volume_ml = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    device_ug = models.PositiveIntegerField(null=True, blank=True)
    devices_per_container = models.PositiveSmallIntegerField(null=True, blank=True)
    container_content_ug = models.PositiveBigIntegerField()
    dea_schedule = models.CharField(max_length=4, default="CIII")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "ndc"], name="product_ndc_per_clinic")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def container_label(self) -> str:
        if self.form == Form.INJECTION:
            return (
                f"{self.concentration_mg_per_ml.normalize():f} mg/mL x "
                f"{self.container_volume_ml.normalize():f} mL vial"
            )  # type: ignore[union-attr]
        return f"kit of {self.devices_per_container} x {self.device_ug // 1000} mg devices"  # type: ignore[operator]


class Supplier(models.Model):
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200)
    address = models.TextField()
    dea_number = models.CharField("DEA number", max_length=9, validators=[validate_dea_number])

    def __str__(self) -> str:
        return f"{self.name} ({self.dea_number})"


class StorageLocation(models.Model):
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=80)
    kind = models.CharField(
        max_length=10, choices=[("safe", "Safe"), ("cart", "Cart"), ("cabinet", "Locked cabinet")]
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="location_name_per_clinic")
        ]

    def __str__(self) -> str:
        return self.name


class Lot(models.Model):
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="lots")
    lot_number = models.CharField(max_length=40)
    expiry = models.DateField()
    supplier = models.ForeignKey(Supplier, on_delete=models.PROTECT, related_name="+")
    invoice_number = models.CharField(max_length=60)
    received_on = models.DateField()
    # Running balance of the whole lot; changed only with a ledger entry, under a row lock.
    balance_ug = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "lot_number"], name="lot_number_per_product")
        ]

    def __str__(self) -> str:
        return f"{self.product.name} lot {self.lot_number}"


class Container(models.Model):
    """One vial or kit. Its balance changes only with a ledger entry, under a row lock."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="containers")
    label = models.CharField(max_length=40, help_text="e.g. lot number and vial 3 of 10")
    location = models.ForeignKey(
        StorageLocation, on_delete=models.PROTECT, related_name="containers"
    )
    balance_ug = models.BigIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)  # returned, destroyed, lost, empty

    def __str__(self) -> str:
        return self.label


class EntryKind(models.TextChoices):
    RECEIPT = "receipt", "Receipt"
    TRANSFER = "transfer", "Transfer"
    DRAW = "draw", "Draw"
    ADMINISTRATION = "administration", "Administration"
    WASTE = "waste", "Waste"
    RETURN = "return", "Return to supplier"
    DESTRUCTION = "destruction", "Destruction"
    LOSS = "loss", "Loss or theft"
    ADJUSTMENT = "adjustment", "Count adjustment"
    REVERSAL = "reversal", "Reversal"


class LedgerChain(models.Model):
    clinic = models.OneToOneField(
        "accounts.Clinic", on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    last_sequence = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)


class LedgerEntry(models.Model):
    """One movement of drug. Never edited or deleted: a mistake is corrected by a reversal
    that names the entry it reverses."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    sequence = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=20, choices=EntryKind.choices)
    at = models.DateTimeField(help_text="When it happened (the actual date, 21 CFR 1304.21(d)).")
    recorded_at = models.DateTimeField()
    container = models.ForeignKey(Container, on_delete=models.PROTECT, related_name="entries")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="entries")
    quantity_ug = models.BigIntegerField(help_text="Amount moved, always positive.")
    delta_ug = models.BigIntegerField(help_text="Signed change to the container's balance.")
    container_balance_ug = models.BigIntegerField()
    lot_balance_ug = models.BigIntegerField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    witness = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    second_witness = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    witness_method = models.CharField(max_length=10, blank=True)  # password or totp
    patient = models.ForeignKey(
        "patients.Patient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    dosing_session_id = models.BigIntegerField(null=True, blank=True)
    draw = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="uses"
    )
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    from_location = models.ForeignKey(
        StorageLocation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_location = models.ForeignKey(
        StorageLocation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    # Receipt, return, destruction (Form 41) and loss (Form 106) details.
    detail = models.JSONField(default=dict, blank=True)
    previous_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "sequence"], name="ledger_sequence"),
            models.CheckConstraint(
                condition=models.Q(quantity_ug__gt=0), name="ledger_quantity_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(container_balance_ug__gte=0),
                name="ledger_container_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(lot_balance_ug__gte=0), name="ledger_lot_not_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["clinic", "kind", "at"], name="ledger_kind_time"),
            models.Index(fields=["container", "sequence"], name="ledger_by_container"),
        ]

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.pk is not None:
            raise RuntimeError("Ledger entries are append-only; record a reversal instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("Ledger entries are append-only; record a reversal instead.")


class CountStatus(models.TextChoices):
    OPEN = "open", "Counting"
    DONE = "done", "Done"


class Count(models.Model):
    """A blind count of one location by two staff: neither sees the book quantity or the
    other's figures until both have entered theirs."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(
        max_length=10, choices=[("shift", "Shift"), ("daily", "Daily")], default="daily"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=CountStatus.choices, default=CountStatus.OPEN)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Who has entered their figures (user ids), even a count of an empty location that has
    # no lines to show it: the count completes when two different people have counted.
    counters = models.JSONField(default=list, blank=True)


class CountLine(models.Model):
    count = models.ForeignKey(Count, on_delete=models.PROTECT, related_name="lines")
    counter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="+")
    counted_ug = models.BigIntegerField()
    entered_at = models.DateTimeField()
    # The book quantity, filled in only when the count completes (blind until then).
    expected_ug = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["count", "counter", "lot"], name="one_line_per_counter_lot"
            )
        ]


class Discrepancy(models.Model):
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    count = models.ForeignKey(
        Count, null=True, blank=True, on_delete=models.PROTECT, related_name="discrepancies"
    )
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="+")
    expected_ug = models.BigIntegerField()
    counted = models.JSONField(help_text="each counter's figure in µg")
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution = models.TextField(blank=True)

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class Inventory(models.Model):
    """The initial, biennial (or annual) inventory (21 CFR 1304.11)."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(
        max_length=10,
        choices=[("initial", "Initial"), ("biennial", "Biennial"), ("annual", "Annual")],
    )
    taken_at = models.DateTimeField()
    timing = models.CharField(
        max_length=10, choices=[("opening", "Opening of business"), ("close", "Close of business")]
    )
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    lines = models.JSONField(help_text="per lot: sealed containers, opened estimate, book")


class LossReport(models.Model):
    """Theft or significant loss: the DEA notice (one business day) and Form 106 (45 days)
    deadlines, tracked until done (21 CFR 1301.76(b))."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="loss")
    kind = models.CharField(max_length=10, choices=[("theft", "Theft"), ("loss", "Loss")])
    discovered_at = models.DateTimeField()
    description = models.TextField()
    notice_due = models.DateField()
    form_106_due = models.DateField()
    notice_sent_at = models.DateTimeField(null=True, blank=True)
    form_106_filed_at = models.DateTimeField(null=True, blank=True)
    dea_confirmation = models.CharField(max_length=60, blank=True)
