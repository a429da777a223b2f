"""Writes to the controlled-substance ledger. Every movement is one transaction that locks the
clinic's ledger chain, the container and its lot, appends one hash-chained entry with the
running balances after it, and refuses anything that would take a balance below zero."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts.models import Membership, User
from ketaclinic.accounts.roles import Role
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction, AuditEntry
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
    LedgerChain,
    LedgerEntry,
    LossReport,
    Lot,
    Product,
    StorageLocation,
    Supplier,
)
from ketaclinic.patients.models import Patient

WITNESS_ROLES = {Role.PRESCRIBER, Role.NURSE, Role.CLINIC_ADMIN}
# An entry's `at` may run this far ahead of the server's clock (a tablet's clock drifts).
CLOCK_SKEW = timedelta(minutes=5)


def _fail(field: str | None, message: str) -> ValidationError:
    return ValidationError({field: message} if field else message)


# --- the one append path ----------------------------------------------------------------------

HASHED_FIELDS = (
    "clinic_id",
    "sequence",
    "kind",
    "at",
    "container_id",
    "lot_id",
    "quantity_ug",
    "delta_ug",
    "container_balance_ug",
    "lot_balance_ug",
    "actor_id",
    "witness_id",
    "second_witness_id",
    "witness_method",
    "patient_id",
    "dosing_session_id",
    "draw_id",
    "reverses_id",
    "from_location_id",
    "to_location_id",
    "reason",
    "detail",
)


def entry_payload(entry: LedgerEntry) -> str:
    values: dict[str, Any] = {}
    for name in HASHED_FIELDS:
        value = getattr(entry, name)
        if isinstance(value, datetime):
            # In UTC, as the database gives it back: an `at` made in the clinic's time zone
            # (a back-dated receipt during a request) must hash the same once reloaded.
            if timezone.is_naive(value):
                value = timezone.make_aware(value, timezone.get_default_timezone())
            value = value.astimezone(UTC).isoformat(timespec="microseconds")
        values[name] = value
    return json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(previous_hash: str, entry: LedgerEntry) -> str:
    return hashlib.sha256((previous_hash + entry_payload(entry)).encode()).hexdigest()


def _append(
    actor: Actor,
    *,
    kind: str,
    container: Container,
    quantity_ug: int,
    delta_ug: int,
    at: datetime | None = None,
    **fields: Any,
) -> LedgerEntry:
    """Append one entry. Callers hold a transaction; this takes the locks in a fixed order
    (chain, container, lot) so concurrent writers queue instead of deadlocking."""
    for amount in (quantity_ug, delta_ug):
        if isinstance(amount, bool) or not isinstance(amount, int):
            # A fraction of a µg would be stored truncated while the hash and the running
            # balances kept the fraction: the ledger's unit is the whole µg.
            raise _fail("quantity", f"Quantities are whole micrograms; got {amount!r}.")
    if quantity_ug <= 0:
        raise _fail("quantity", "The quantity must be more than 0.")
    if quantity_ug > rules.MAX_QUANTITY_UG or abs(delta_ug) > rules.MAX_QUANTITY_UG:
        raise _fail("quantity", "The quantity is more than the ledger takes in one entry.")
    now = timezone.now()
    if at is not None:
        if timezone.is_naive(at):
            at = timezone.make_aware(at, timezone.get_current_timezone())
        if at > now + CLOCK_SKEW:
            # 21 CFR 1304.21(d): the record carries the actual date of the movement; a time
            # still to come cannot be one (a few minutes allow for a device's clock).
            raise _fail(
                "at",
                f"The time {timezone.localtime(at):%Y-%m-%d %H:%M} cannot be in the future; "
                "record the time it happened.",
            )
    chain, _ = LedgerChain.objects.select_for_update().get_or_create(clinic=actor.clinic)
    locked = Container.objects.select_for_update().get(pk=container.pk, clinic=actor.clinic)
    lot = Lot.objects.select_for_update().get(pk=locked.lot_id)
    container_after = locked.balance_ug + delta_ug
    lot_after = lot.balance_ug + delta_ug
    if container_after < 0:
        raise _fail(
            "quantity",
            (
                f"{locked.label} holds {rules.format_mg(locked.balance_ug)}; this would take it "
                f"{rules.format_mg(-container_after)} below zero. Nothing was recorded."
            ),
        )
    entry = LedgerEntry(
        clinic=actor.clinic,
        sequence=chain.last_sequence + 1,
        kind=kind,
        at=at or now,
        recorded_at=now,
        container=locked,
        lot=lot,
        quantity_ug=quantity_ug,
        delta_ug=delta_ug,
        container_balance_ug=container_after,
        lot_balance_ug=lot_after,
        actor=actor.user,
        previous_hash=chain.last_hash,
        **fields,
    )
    entry.entry_hash = entry_hash(chain.last_hash, entry)
    entry.save()
    if delta_ug:
        locked.balance_ug = container_after
        if locked.opened_at is None and delta_ug < 0:
            locked.opened_at = entry.at
        if container_after == 0 and locked.closed_at is None:
            locked.closed_at = entry.at
        elif container_after > 0:
            locked.closed_at = None  # a reversal put drug back: the container is in use again
        locked.save(update_fields=["balance_ug", "opened_at", "closed_at"])
        lot.balance_ug = lot_after
        lot.save(update_fields=["balance_ug"])
    chain.last_sequence = entry.sequence
    chain.last_hash = entry.entry_hash
    chain.save(update_fields=["last_sequence", "last_hash"])
    container.refresh_from_db()
    if entry.patient_id:
        audit.record(
            actor, AuditAction.CREATE, f"ledger_{kind}", entry.pk, patient_id=entry.patient_id
        )
    return entry


# --- set-up -------------------------------------------------------------------------------------


def create_location(actor: Actor, name: str, kind: str = "safe") -> StorageLocation:
    location = StorageLocation(clinic=actor.clinic, name=name, kind=kind)
    location.full_clean()
    location.save()
    return location


def create_supplier(actor: Actor, *, name: str, address: str, dea_number: str) -> Supplier:
    if not dea_number.strip():
        raise _fail(
            "dea_number",
            "The supplier's DEA number is required on every CIII receipt "
            "record (21 CFR 1304.22(c)).",
        )
    supplier = Supplier(
        clinic=actor.clinic, name=name, address=address, dea_number=dea_number.strip().upper()
    )
    supplier.full_clean()
    supplier.save()
    return supplier


def _product_figure(field: str, raw: Any, label: str, places: int) -> Decimal:
    """A concentration or volume as a Decimal: positive, finite, below 10,000, and no finer
    than the model stores; else a ValidationError at its field (never an overflow)."""
    try:
        value = rules.decimal_value(raw, label)
    except ValueError as exc:
        raise _fail(field, str(exc)) from None
    if value <= 0:
        raise _fail(field, f"{label} must be more than 0; got {value}.")
    if value >= 10_000:
        raise _fail(field, f"{label} is too large; got {value}.")
    if rules.decimal_places(value) > places:
        raise _fail(field, f"{label} takes at most {places} decimal places.")
    return value


def create_product(
    actor: Actor,
    *,
    drug: str,
    name: str,
    ndc: str,
    form: str,
    concentration_mg_per_ml: Any = None,
    container_volume_ml: Any = None,
    device_mg: int | None = None,
    devices_per_container: int | None = None,
) -> Product:
    if form == Form.INJECTION:
        if not concentration_mg_per_ml or not container_volume_ml:
            raise _fail(None, "A solution needs its concentration (mg/mL) and vial volume (mL).")
        concentration_mg_per_ml = _product_figure(
            "concentration_mg_per_ml", concentration_mg_per_ml, "The concentration", 3
        )
        container_volume_ml = _product_figure(
            "container_volume_ml", container_volume_ml, "The vial volume", 2
        )
        try:
            content = rules.ml_to_ug(container_volume_ml, concentration_mg_per_ml)
        except ValueError as exc:
            raise _fail("container_volume_ml", str(exc)) from None
    else:
        if not device_mg or not devices_per_container:
            raise _fail(None, "A nasal spray kit needs mg per device and devices per kit.")
        content = device_mg * 1000 * devices_per_container
    product = Product(
        clinic=actor.clinic,
        drug=drug,
        name=name,
        ndc=ndc,
        form=form,
        concentration_mg_per_ml=concentration_mg_per_ml,
        container_volume_ml=container_volume_ml,
        device_ug=device_mg * 1000 if device_mg else None,
        devices_per_container=devices_per_container,
        container_content_ug=content,
    )
    product.full_clean()
    product.save()
    return product


# --- receipts, transfers ----------------------------------------------------------------------


@transaction.atomic
def receive(
    actor: Actor,
    *,
    product: Product,
    lot_number: str,
    expiry: date,
    supplier: Supplier | None,
    invoice_number: str,
    received_on: date,
    containers: int,
    location: StorageLocation,
) -> list[LedgerEntry]:
    """Receive whole containers of one lot into a location: one receipt entry per container."""
    errors: dict[str, str] = {}
    if supplier is None or not supplier.dea_number:
        errors["supplier"] = (
            "Choose a supplier with a DEA number: every receipt records the "
            "supplier's name, address and DEA number (21 CFR 1304.22(c))."
        )
    if not lot_number.strip():
        errors["lot_number"] = "Enter the lot number printed on the container."
    if not invoice_number.strip():
        errors["invoice_number"] = "Enter the invoice number (the receipt record for CIII)."
    if not 1 <= containers <= 500:
        errors["containers"] = "Receive between 1 and 500 containers at a time."
    today = actor.clinic.today()
    if received_on > today:
        errors["received_on"] = "The receipt date cannot be in the future."
    if expiry <= received_on:
        errors["expiry"] = "This lot is expired on arrival; do not receive it into stock."
    for obj, name in ((product, "product"), (location, "location"), (supplier, "supplier")):
        if obj is not None and obj.clinic_id != actor.clinic.pk:
            errors[name] = "Not part of this clinic."
    if errors:
        raise ValidationError(errors)
    lot, created = Lot.objects.get_or_create(
        product=product,
        lot_number=lot_number.strip(),
        defaults={
            "clinic": actor.clinic,
            "expiry": expiry,
            "supplier": supplier,
            "invoice_number": invoice_number.strip(),
            "received_on": received_on,
        },
    )
    if not created and lot.expiry != expiry:
        raise _fail(
            "expiry",
            f"Lot {lot.lot_number} is on record with expiry {lot.expiry}; check the label.",
        )
    already = lot.containers.count()
    entries = []
    at = (
        timezone.now()
        if received_on == today
        else datetime.combine(
            received_on, datetime.min.time(), tzinfo=timezone.get_current_timezone()
        )
    )
    for n in range(1, containers + 1):
        container = Container.objects.create(
            clinic=actor.clinic,
            lot=lot,
            location=location,
            label=f"{lot.lot_number} #{already + n}",
        )
        entries.append(
            _append(
                actor,
                kind=EntryKind.RECEIPT,
                container=container,
                quantity_ug=product.container_content_ug,
                delta_ug=product.container_content_ug,
                at=at,
                to_location=location,
                detail={
                    "supplier": supplier.name,
                    "supplier_address": supplier.address,  # type: ignore[union-attr]
                    "supplier_dea": supplier.dea_number,
                    "invoice": invoice_number.strip(),  # type: ignore[union-attr]
                    "containers_in_receipt": containers,
                },
            )
        )
    return entries


def _current(actor: Actor, container: Container) -> Container:
    """The container as it is now, read under the chain lock that _append takes next: the
    caller's object may predate another write (a page loaded before a colleague's change)."""
    LedgerChain.objects.select_for_update().get_or_create(clinic=actor.clinic)
    return Container.objects.select_related("location").get(pk=container.pk, clinic=actor.clinic)


@transaction.atomic
def transfer(actor: Actor, container: Container, to_location: StorageLocation) -> LedgerEntry:
    if to_location.clinic_id != actor.clinic.pk:
        raise _fail("to_location", "Not part of this clinic.")
    current = _current(actor, container)
    if current.location_id == to_location.pk:
        raise _fail("to_location", f"{current.label} is already in {to_location.name}.")
    if current.balance_ug <= 0:
        raise _fail(None, f"{current.label} is empty; there is nothing to transfer.")
    from_location = current.location
    entry = _append(
        actor,
        kind=EntryKind.TRANSFER,
        container=container,
        quantity_ug=current.balance_ug,
        delta_ug=0,
        from_location=from_location,
        to_location=to_location,
    )
    Container.objects.filter(pk=container.pk).update(location=to_location)
    container.refresh_from_db()
    return entry


# --- draws, administration, waste -------------------------------------------------------------


def available_containers(
    clinic_id: int, product: Product, location: StorageLocation, needed_ug: int, today: date
) -> list[Container]:
    """Usable containers, first-expiring lot first, open containers before sealed ones."""
    candidates = (
        Container.objects.filter(
            clinic_id=clinic_id,
            lot__product=product,
            location=location,
            balance_ug__gte=needed_ug,
            lot__expiry__gt=today,
        )
        .select_related("lot")
        .order_by("lot__expiry", "opened_at", "pk")
    )
    return sorted(candidates, key=lambda c: (c.lot.expiry, c.opened_at is None, c.pk))


@transaction.atomic
def draw(
    actor: Actor,
    *,
    patient: Patient,
    quantity_ug: int,
    container: Container | None = None,
    product: Product | None = None,
    location: StorageLocation | None = None,
    at: datetime | None = None,
    dosing_session_id: int | None = None,
) -> LedgerEntry:
    """Draw drug from a container for one patient (into the actor's custody)."""
    if patient.clinic_id != actor.clinic.pk:
        raise PermissionError("Patient belongs to another clinic.")
    today = actor.clinic.today()
    if container is None:
        if product is None or location is None:
            raise _fail(None, "Choose a container, or a product and a location.")
        choices = available_containers(actor.clinic.pk, product, location, quantity_ug, today)
        if not choices:
            raise _fail(
                "quantity",
                f"No unexpired {product.name} container in {location.name} "
                f"holds {rules.format_mg(quantity_ug)}.",
            )
        container = choices[0]
    if container.clinic_id != actor.clinic.pk:
        raise PermissionError("Container belongs to another clinic.")
    if container.lot.expiry <= today:
        raise _fail(
            "container",
            f"Lot {container.lot.lot_number} expired on "
            f"{container.lot.expiry}; it cannot be drawn. Quarantine it "
            "for return or destruction.",
        )
    return _append(
        actor,
        kind=EntryKind.DRAW,
        container=container,
        quantity_ug=quantity_ug,
        delta_ug=-quantity_ug,
        at=at,
        patient=patient,
        dosing_session_id=dosing_session_id,
    )


def undispensed_ug(draw_entry: LedgerEntry) -> int:
    """What is still in the syringe: drawn minus administered and wasted (not reversed)."""
    used = (
        LedgerEntry.objects.filter(
            draw=draw_entry,
            reversed_by__isnull=True,
            kind__in=[EntryKind.ADMINISTRATION, EntryKind.WASTE],
        ).aggregate(total=Sum("quantity_ug"))["total"]
        or 0
    )
    return draw_entry.quantity_ug - used


def _lock_draw(actor: Actor, draw_entry: LedgerEntry) -> LedgerEntry:
    # Lock the chain first so two uses of one draw cannot both see the same remainder.
    LedgerChain.objects.select_for_update().get_or_create(clinic=actor.clinic)
    locked = LedgerEntry.objects.get(pk=draw_entry.pk, clinic=actor.clinic)
    if locked.kind != EntryKind.DRAW:
        raise _fail(None, "Administration and syringe waste must name a draw.")
    if hasattr(locked, "reversed_by"):
        raise _fail(None, "That draw was reversed.")
    return locked


@transaction.atomic
def administer(
    actor: Actor,
    draw_entry: LedgerEntry,
    quantity_ug: int,
    at: datetime | None = None,
    dosing_session_id: int | None = None,
) -> LedgerEntry:
    locked = _lock_draw(actor, draw_entry)
    remaining = undispensed_ug(locked)
    if quantity_ug > remaining:
        raise _fail(
            "quantity",
            f"Only {rules.format_mg(remaining)} of this draw is left to "
            f"administer; {rules.format_mg(quantity_ug)} is more.",
        )
    return _append(
        actor,
        kind=EntryKind.ADMINISTRATION,
        container=locked.container,
        quantity_ug=quantity_ug,
        delta_ug=0,
        at=at,
        patient=locked.patient,
        draw=locked,
        dosing_session_id=dosing_session_id or locked.dosing_session_id,
    )


WITNESS_AUDIT = "witness_authentication"
WITNESS_MISMATCH = "The witness's username and password (or code) did not match."


def witness_lockout_policy() -> tuple[int, timedelta]:
    """The login's lockout numbers (django-axes settings): failures allowed, and the window."""
    limit = int(getattr(settings, "AXES_FAILURE_LIMIT", 5))
    cooloff = getattr(settings, "AXES_COOLOFF_TIME", None)
    if isinstance(cooloff, timedelta):
        window = cooloff
    elif isinstance(cooloff, int | float) and not isinstance(cooloff, bool):
        window = timedelta(hours=cooloff)  # axes reads a number as hours
    else:
        window = timedelta(minutes=15)
    return limit, window


def _minutes(window: timedelta) -> str:
    minutes = max(1, round(window.total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def authenticate_witness(actor: Actor, username: str, secret: str) -> tuple[User, str]:
    """The witness proves who they are now, with their password or a current TOTP code.

    The witness must be another active clinician or admin of this clinic, never the actor.
    Wrong secrets are throttled like the login (AXES_FAILURE_LIMIT failures within
    AXES_COOLOFF_TIME lock that witness's sign-in here; a success clears the count), and
    every attempt is audited with the username tried, never the secret. The audit row is
    written in its own transaction before the refusal is raised, so call this outside the
    transaction of the write it witnesses (a refusal would roll the record back with it).
    """
    name = username.strip()
    limit, window = witness_lockout_policy()
    now = timezone.now()
    with transaction.atomic():
        # Attempts on one witness queue on their user row, so a burst cannot slip past the
        # count. FOR NO KEY UPDATE: rows that merely refer to the user (an entry naming them
        # as actor or witness takes FOR KEY SHARE) do not wait on it, so no deadlock.
        user = (
            User.objects.select_for_update(no_key=True)
            .filter(username=name, is_active=True)
            .first()
        )
        recent = AuditEntry.objects.filter(
            clinic=actor.clinic,
            object_type=WITNESS_AUDIT,
            detail__username=name,
            detail__result__in=["failed", "ok"],
            at__gt=now - window,
        ).order_by("-sequence")
        failures = 0
        for result in recent.values_list("detail__result", flat=True)[: limit + 1]:
            if result == "ok":
                break  # a success clears the failures before it
            if result == "failed":
                failures += 1

        def attempt(result: str) -> None:
            audit.record(
                actor,
                AuditAction.SIGN,
                WITNESS_AUDIT,
                user.pk if user else "",
                detail={"username": name[:150], "result": result},
            )

        if failures >= limit:
            attempt("locked_out")
            outcome: tuple[User, str] | str = (
                f"Too many failed witness sign-ins for {name}: their witness sign-in is "
                f"locked for {_minutes(window)}. Ask another witness."
            )
        elif user is None or not secret:
            attempt("failed")
            outcome = WITNESS_MISMATCH
        elif actor.user is not None and user.pk == actor.user.pk:
            outcome = "The witness must be someone other than the person wasting."
        elif (
            member := Membership.objects.filter(
                user=user, clinic=actor.clinic, is_active=True
            ).first()
        ) is None or member.role not in WITNESS_ROLES:
            outcome = "The witness must be a prescriber, nurse or clinic admin of this clinic."
        else:
            outcome = WITNESS_MISMATCH
            if secret.strip().isdigit() and len(secret.strip()) == 6:
                for device in TOTPDevice.objects.filter(user=user, confirmed=True):
                    if device.verify_token(secret.strip()):
                        outcome = (user, "totp")
                        break
            if isinstance(outcome, str) and check_password(secret, user.password):
                outcome = (user, "password")
            attempt("failed" if isinstance(outcome, str) else "ok")
    if isinstance(outcome, str):
        raise _fail("witness", outcome)
    return outcome


@dataclass(frozen=True)
class WitnessProof:
    """A witness's sign-in, made by sign_in_witness() before the caller opens the
    transaction of the write it witnesses, and good for that actor for a few minutes."""

    user: User
    method: str
    clinic_id: int
    actor_user_id: int | None
    at: datetime


WITNESS_PROOF_LIFETIME = timedelta(minutes=5)


def sign_in_witness(actor: Actor, username: str, secret: str) -> WitnessProof:
    """authenticate_witness() for a caller whose write runs in its own transaction (a dosing
    session's stop): call this first, outside that transaction, so a failed attempt is
    committed (audited, counted for the lockout) even though the write is then not made;
    pass the proof to waste(witness_proof=...)."""
    user, method = authenticate_witness(actor, username, secret)
    return WitnessProof(
        user=user,
        method=method,
        clinic_id=actor.clinic.pk,
        actor_user_id=actor.user.pk if actor.user else None,
        at=timezone.now(),
    )


def _check_proof(actor: Actor, proof: WitnessProof) -> tuple[User, str]:
    if proof.clinic_id != actor.clinic.pk or proof.actor_user_id != (
        actor.user.pk if actor.user else None
    ):
        raise _fail("witness", "This witness signed in for someone else; sign in again.")
    if timezone.now() - proof.at > WITNESS_PROOF_LIFETIME:
        raise _fail("witness", "The witness signed in too long ago; sign in again, now.")
    return proof.user, proof.method


def waste(
    actor: Actor,
    *,
    quantity_ug: int,
    witness_username: str = "",
    witness_secret: str = "",
    draw_entry: LedgerEntry | None = None,
    container: Container | None = None,
    reason: str = "",
    at: datetime | None = None,
    witness_proof: WitnessProof | None = None,
) -> LedgerEntry:
    """Waste residue, witnessed: from a syringe (names its draw) or left in a container.
    The witness signs in first, on its own (a failed attempt stays on record), unless the
    caller already did with sign_in_witness() and passes the proof."""
    if witness_proof is not None:
        witness, method = _check_proof(actor, witness_proof)
    else:
        witness, method = authenticate_witness(actor, witness_username, witness_secret)
    return _waste(
        actor,
        quantity_ug=quantity_ug,
        witness=witness,
        method=method,
        draw_entry=draw_entry,
        container=container,
        reason=reason,
        at=at,
    )


@transaction.atomic
def _waste(
    actor: Actor,
    *,
    quantity_ug: int,
    witness: User,
    method: str,
    draw_entry: LedgerEntry | None,
    container: Container | None,
    reason: str,
    at: datetime | None,
) -> LedgerEntry:
    if draw_entry is not None:
        locked = _lock_draw(actor, draw_entry)
        remaining = undispensed_ug(locked)
        if quantity_ug > remaining:
            raise _fail(
                "quantity",
                f"Only {rules.format_mg(remaining)} of this draw is left; "
                f"cannot waste {rules.format_mg(quantity_ug)}.",
            )
        return _append(
            actor,
            kind=EntryKind.WASTE,
            container=locked.container,
            quantity_ug=quantity_ug,
            delta_ug=0,
            at=at,
            patient=locked.patient,
            draw=locked,
            witness=witness,
            witness_method=method,
            reason=reason,
            dosing_session_id=locked.dosing_session_id,
        )
    if container is None:
        raise _fail(None, "Waste names the draw (syringe residue) or the container.")
    return _append(
        actor,
        kind=EntryKind.WASTE,
        container=container,
        quantity_ug=quantity_ug,
        delta_ug=-quantity_ug,
        at=at,
        witness=witness,
        witness_method=method,
        reason=reason or "residue left in container",
    )


# --- leaving stock: return, destruction, loss, adjustment -------------------------------------


@transaction.atomic
def return_to_supplier(
    actor: Actor,
    container: Container,
    *,
    recipient_name: str,
    recipient_address: str,
    recipient_dea: str,
    reason: str,
) -> LedgerEntry:
    from ketaclinic.clinical.identifiers import dea_number

    try:
        recipient_dea = dea_number(recipient_dea)
    except ValueError as exc:
        raise _fail("recipient_dea", str(exc)) from None
    current = _current(actor, container)
    if current.balance_ug <= 0:
        raise _fail(None, f"{current.label} is empty.")
    return _append(
        actor,
        kind=EntryKind.RETURN,
        container=container,
        quantity_ug=current.balance_ug,
        delta_ug=-current.balance_ug,
        reason=reason,
        detail={
            "recipient": recipient_name,
            "recipient_address": recipient_address,
            "recipient_dea": recipient_dea,
        },
    )


def destroy(
    actor: Actor,
    container: Container,
    *,
    quantity_ug: int,
    method: str,
    place: str,
    witnesses: tuple[tuple[str, str], tuple[str, str]],
    reason: str,
) -> LedgerEntry:
    """Destruction of inventory with DEA Form 41 data and two witnesses (clinical.md §5.6).
    The witnesses sign in first, on their own (a failed attempt stays on record)."""
    first, first_method = authenticate_witness(actor, *witnesses[0])
    second, _ = authenticate_witness(actor, *witnesses[1])
    if first.pk == second.pk:
        raise _fail("witness", "Destruction needs two different witnesses.")
    return _destroy(
        actor,
        container,
        quantity_ug=quantity_ug,
        method=method,
        place=place,
        first=first,
        second=second,
        first_method=first_method,
        reason=reason,
    )


@transaction.atomic
def _destroy(
    actor: Actor,
    container: Container,
    *,
    quantity_ug: int,
    method: str,
    place: str,
    first: User,
    second: User,
    first_method: str,
    reason: str,
) -> LedgerEntry:
    lot = container.lot
    return _append(
        actor,
        kind=EntryKind.DESTRUCTION,
        container=container,
        quantity_ug=quantity_ug,
        delta_ug=-quantity_ug,
        witness=first,
        second_witness=second,
        witness_method=first_method,
        reason=reason,
        detail={
            "form_41": {
                "ndc": lot.product.ndc,
                "name": lot.product.name,
                "batch": lot.lot_number,
                "method": method,
                "place": place,
                "quantity_mg": str(rules.ug_to_mg(quantity_ug)),
            }
        },
    )


@transaction.atomic
def report_loss(
    actor: Actor,
    container: Container,
    *,
    quantity_ug: int,
    kind: str,
    discovered_at: datetime,
    description: str,
) -> LossReport:
    if kind not in ("theft", "loss"):
        raise _fail("kind", "Choose theft or loss.")
    if not description.strip():
        raise _fail("description", "Describe what was found missing and how.")
    entry = _append(
        actor,
        kind=EntryKind.LOSS,
        container=container,
        quantity_ug=quantity_ug,
        delta_ug=-quantity_ug,
        reason=description,
        detail={"kind": kind},
    )
    # Deadlines run in the clinic's own days, whatever time zone is active (a CLI has UTC).
    local = timezone.localtime(discovered_at, ZoneInfo(actor.clinic.time_zone))
    return LossReport.objects.create(
        clinic=actor.clinic,
        entry=entry,
        kind=kind,
        discovered_at=discovered_at,
        description=description,
        notice_due=rules.next_business_day_end(local),
        form_106_due=rules.form_106_due(local),
    )


@transaction.atomic
def adjust(
    actor: Actor,
    container: Container,
    *,
    delta_ug: int,
    reason: str,
    discrepancy: Discrepancy | None = None,
) -> LedgerEntry:
    if not reason.strip():
        raise _fail("reason", "A count adjustment needs its reason.")
    if delta_ug == 0:
        raise _fail("quantity", "The adjustment must change the balance.")
    return _append(
        actor,
        kind=EntryKind.ADJUSTMENT,
        container=container,
        quantity_ug=abs(delta_ug),
        delta_ug=delta_ug,
        reason=reason,
        detail={"discrepancy": discrepancy.pk} if discrepancy else {},
    )


@transaction.atomic
def reverse(actor: Actor, entry: LedgerEntry, reason: str) -> LedgerEntry:
    """Correct a mistake with an entry that undoes `entry` and names it."""
    if not reason.strip():
        raise _fail("reason", "Say why the entry is wrong.")
    LedgerChain.objects.select_for_update().get_or_create(clinic=actor.clinic)
    original = LedgerEntry.objects.get(pk=entry.pk, clinic=actor.clinic)
    if original.kind == EntryKind.REVERSAL:
        raise _fail(None, "A reversal cannot itself be reversed; record the correct entry.")
    if LedgerEntry.objects.filter(reverses=original).exists():
        raise _fail(None, f"Entry {original.sequence} is already reversed.")
    if (
        original.kind == EntryKind.DRAW
        and LedgerEntry.objects.filter(draw=original, reversed_by__isnull=True).exists()
    ):
        raise _fail(None, "Reverse this draw's administrations and wastes first.")
    if (
        original.to_location_id
        and Container.objects.get(pk=original.container_id).location_id != original.to_location_id
    ):
        # Undoing a receipt or transfer after the container moved on would record it leaving
        # a place it is not in (and a transfer reversal would put it back in the wrong one).
        raise _fail(None, "This container has moved since; reverse its later transfer first.")
    result = _append(
        actor,
        kind=EntryKind.REVERSAL,
        container=original.container,
        quantity_ug=original.quantity_ug,
        delta_ug=-original.delta_ug,
        reverses=original,
        reason=reason,
        patient=original.patient,
        from_location=original.to_location,
        to_location=original.from_location,
    )
    if original.kind == EntryKind.TRANSFER and original.from_location_id:
        Container.objects.filter(pk=original.container_id).update(
            location_id=original.from_location_id
        )
    return result


# --- counts, discrepancies, inventory ---------------------------------------------------------


def book_by_lot(location: StorageLocation) -> dict[int, int]:
    rows = (
        Container.objects.filter(location=location, balance_ug__gt=0)
        .values("lot_id")
        .annotate(total=Sum("balance_ug"))
    )
    return {r["lot_id"]: r["total"] for r in rows}


@transaction.atomic
def start_count(actor: Actor, location: StorageLocation, kind: str = "daily") -> Count:
    """Open a count of one location. One open count per location: starts queue on the
    location's row, so two people pressing Start together get one count, not two."""
    locked = (
        StorageLocation.objects.select_for_update()
        .filter(pk=location.pk, clinic=actor.clinic)
        .first()
    )
    if locked is None:
        raise _fail("location", "Not part of this clinic.")
    if Count.objects.filter(location=locked, status=CountStatus.OPEN).exists():
        raise _fail(
            "location",
            f"A count of {locked.name} is already under way; enter your figures in that one.",
        )
    return Count.objects.create(
        clinic=actor.clinic,
        location=locked,
        kind=kind,
        started_by=actor.user,
        started_at=timezone.now(),
    )


@dataclass(frozen=True)
class CountResult:
    count: Count
    complete: bool
    discrepancies: list[Discrepancy]


@transaction.atomic
def submit_count(actor: Actor, count: Count, counted: dict[int, int]) -> CountResult:
    """One counter's figures (lot id -> µg on hand). The second counter completes the count."""
    locked = Count.objects.select_for_update().get(pk=count.pk, clinic=actor.clinic)
    if locked.status != CountStatus.OPEN:
        raise _fail(None, "This count is finished.")
    counted_before = set(locked.counters) | set(
        CountLine.objects.filter(count=locked).values_list("counter_id", flat=True)
    )
    if actor.user is None:
        raise _fail(None, "A count is entered by the person who counted.")
    if actor.user.pk in counted_before:
        raise _fail(None, "You have already entered your count; a second person must count.")
    expected_lots = set(book_by_lot(locked.location))
    missing = expected_lots - set(counted)
    if missing:
        raise _fail(None, "Enter a figure for every lot listed (0 if none is there).")
    # Only lots kept at this location (a container there, or already counted in this count):
    # a figure for a lot stored elsewhere would open a false discrepancy here.
    kept = set(
        Container.objects.filter(location=locked.location, clinic=actor.clinic)
        .values_list("lot_id", flat=True)
        .distinct()
    ) | set(CountLine.objects.filter(count=locked).values_list("lot_id", flat=True))
    strangers = sorted(set(counted) - kept)
    if strangers:
        names = dict(
            Lot.objects.filter(pk__in=strangers, clinic=actor.clinic).values_list(
                "pk", "lot_number"
            )
        )
        # Another clinic's lot is named by its id only: its number is not this clinic's business.
        listed = ", ".join(f"Lot {names[pk]}" if pk in names else f"lot #{pk}" for pk in strangers)
        raise _fail(
            None,
            f"{listed} {'is' if len(strangers) == 1 else 'are'} not kept in "
            f"{locked.location.name}; count only the lots listed.",
        )
    if any(isinstance(v, bool) or not isinstance(v, int) for v in counted.values()):
        raise _fail(None, "Counts are whole micrograms.")
    if any(value < 0 for value in counted.values()):
        raise _fail(None, "A count cannot be negative.")
    if any(value > rules.MAX_QUANTITY_UG for value in counted.values()):
        raise _fail(None, "A count is more than the ledger takes for one lot; check the figure.")
    now = timezone.now()
    CountLine.objects.bulk_create(
        CountLine(count=locked, counter=actor.user, lot_id=lot_id, counted_ug=value, entered_at=now)
        for lot_id, value in counted.items()
    )
    locked.counters = sorted(counted_before | {actor.user.pk})
    locked.save(update_fields=["counters"])
    if len(locked.counters) < 2:
        return CountResult(locked, complete=False, discrepancies=[])
    book = book_by_lot(locked.location)
    discrepancies = []
    lines = list(CountLine.objects.filter(count=locked))
    for line in lines:
        line.expected_ug = book.get(line.lot_id, 0)
    CountLine.objects.bulk_update(lines, ["expected_ug"])
    for lot_id in sorted({line.lot_id for line in lines} | set(book)):
        figures = {str(line.counter_id): line.counted_ug for line in lines if line.lot_id == lot_id}
        expected = book.get(lot_id, 0)
        if any(v != expected for v in figures.values()) or len(figures) < 2:
            discrepancies.append(
                Discrepancy.objects.create(
                    clinic=actor.clinic,
                    count=locked,
                    lot_id=lot_id,
                    location=locked.location,
                    expected_ug=expected,
                    counted=figures,
                    opened_at=now,
                )
            )
    locked.status = CountStatus.DONE
    locked.completed_at = now
    locked.save(update_fields=["status", "completed_at"])
    return CountResult(locked, complete=True, discrepancies=discrepancies)


@transaction.atomic
def resolve_discrepancy(actor: Actor, discrepancy: Discrepancy, resolution: str) -> Discrepancy:
    if not resolution.strip():
        raise _fail("resolution", "Explain what was found and what was done.")
    locked = Discrepancy.objects.select_for_update().get(pk=discrepancy.pk, clinic=actor.clinic)
    if locked.resolved_at is not None:
        raise _fail(None, "This discrepancy is already resolved.")
    locked.resolved_at = timezone.now()
    locked.resolved_by = actor.user
    locked.resolution = resolution.strip()
    locked.save(update_fields=["resolved_at", "resolved_by", "resolution"])
    audit.record(
        actor, AuditAction.UPDATE, "ledger_discrepancy", locked.pk, reason=locked.resolution
    )
    return locked


@transaction.atomic
def take_inventory(
    actor: Actor, *, kind: str, timing: str, lines: list[dict[str, Any]]
) -> Inventory:
    """Record an inventory: per lot, sealed containers counted exactly and opened containers
    estimated (allowed for CIII-V, 21 CFR 1304.11(e)(3)); the book figure is kept beside."""
    if timing not in ("opening", "close"):
        raise _fail(
            "timing",
            "State whether the inventory was taken at opening or close of "
            "business (21 CFR 1304.11(a)).",
        )
    stored = []
    for line in lines:
        lot = Lot.objects.select_related("product").get(pk=line["lot_id"], clinic=actor.clinic)
        book = Container.objects.filter(lot=lot).aggregate(t=Sum("balance_ug"))["t"] or 0
        counted = line["sealed"] * lot.product.container_content_ug + line["opened_estimate_ug"]
        stored.append(
            {
                "lot_id": lot.pk,
                "lot": lot.lot_number,
                "product": lot.product.name,
                "ndc": lot.product.ndc,
                "sealed": line["sealed"],
                "opened_estimate_ug": line["opened_estimate_ug"],
                "counted_ug": counted,
                "book_ug": book,
            }
        )
    return Inventory.objects.create(
        clinic=actor.clinic,
        kind=kind,
        timing=timing,
        taken_at=timezone.now(),
        taken_by=actor.user,
        lines=stored,
    )
