"""Stock for the controlled-substance ledger tests: a clinic A with a safe and a cart, a
supplier, racemic ketamine 50 mg/mL x 10 mL vials (500,000 µg each), esketamine kits, and
two patients. Everything is made through the inventory services."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from ketaclinic.accounts.models import User
from ketaclinic.accounts.roles import Role
from ketaclinic.audit.context import Actor
from ketaclinic.inventory import services
from ketaclinic.inventory.models import (
    Container,
    CountLine,
    Discrepancy,
    Form,
    LedgerChain,
    LedgerEntry,
    Lot,
    Product,
    StorageLocation,
    Supplier,
)
from tests.conftest import PASSWORD, World, register

SUPPLIER_DEA = "RS1234563"  # check digit: 1+3+5 + 2*(2+4+6) = 33 -> 3
VIAL_UG = 500_000  # 50 mg/mL x 10 mL


@dataclass
class Stock:
    world: World
    nurse: Actor
    prescriber: Actor
    supplier: Supplier
    ketamine: Product
    spray: Product
    safe: StorageLocation
    cart: StorageLocation
    patient: Any
    patient_2: Any

    @property
    def clinic(self):  # type: ignore[no-untyped-def]
        return self.world.clinic_a

    def user(self, role: str) -> User:
        return self.world.staff_a[role]

    def actor(self, role: str) -> Actor:
        return Actor.system(self.clinic, user=self.user(role), label="test")

    def receive(
        self,
        containers: int = 1,
        *,
        lot_number: str = "K100",
        product: Product | None = None,
        location: StorageLocation | None = None,
        expiry: date | None = None,
        received_on: date | None = None,
        actor: Actor | None = None,
    ) -> list[Container]:
        entries = services.receive(
            actor or self.nurse,
            product=product or self.ketamine,
            lot_number=lot_number,
            expiry=expiry or timezone.localdate() + timedelta(days=365),
            supplier=self.supplier,
            invoice_number="INV-1",
            received_on=received_on or timezone.localdate(),
            containers=containers,
            location=location or self.safe,
        )
        return [Container.objects.get(pk=e.container_id) for e in entries]


@pytest.fixture
def stock(world: World) -> Stock:
    admin = Actor.system(world.clinic_a, user=world.staff_a[Role.CLINIC_ADMIN], label="test")
    supplier = services.create_supplier(
        admin, name="Rx Wholesale", address="2 Depot Rd, Springfield", dea_number=SUPPLIER_DEA
    )
    ketamine = services.create_product(
        admin,
        drug="ketamine",
        name="Ketamine HCl 50 mg/mL, 10 mL vial",
        ndc="0409-2051-05",
        form=Form.INJECTION,
        concentration_mg_per_ml="50",
        container_volume_ml="10",
    )
    spray = services.create_product(
        admin,
        drug="esketamine",
        name="Spravato 28 mg device, kit of 3",
        ndc="50458-028-03",
        form=Form.NASAL_SPRAY,
        device_mg=28,
        devices_per_container=3,
    )
    assert ketamine.container_content_ug == VIAL_UG
    assert spray.container_content_ug == 84_000
    return Stock(
        world=world,
        nurse=Actor.system(world.clinic_a, user=world.nurse, label="test"),
        prescriber=Actor.system(world.clinic_a, user=world.prescriber, label="test"),
        supplier=supplier,
        ketamine=ketamine,
        spray=spray,
        safe=services.create_location(admin, "Safe", "safe"),
        cart=services.create_location(admin, "Cart 1", "cart"),
        patient=register(world.clinic_a, world.nurse),
        patient_2=register(world.clinic_a, world.nurse, given_name="Bob", family_name="Jones"),
    )


def witness(user: User) -> dict[str, str]:
    """A witness who signs with their password."""
    return {"witness_username": user.username, "witness_secret": PASSWORD}


def verify_passes() -> str:
    out = io.StringIO()
    call_command("ledger", "verify", stdout=out)
    assert "Ledger intact" in out.getvalue()
    return out.getvalue()


def verify_fails() -> str:
    with pytest.raises(CommandError) as failure:
        call_command("ledger", "verify", stdout=io.StringIO())
    return str(failure.value)


def snapshot() -> dict[str, Any]:
    """Everything a refused operation must leave as it was."""
    return {
        "entries": list(LedgerEntry.objects.order_by("pk").values_list("pk", flat=True)),
        "chains": list(
            LedgerChain.objects.order_by("pk").values_list("pk", "last_sequence", "last_hash")
        ),
        "containers": list(
            Container.objects.order_by("pk").values_list(
                "pk", "balance_ug", "location_id", "opened_at", "closed_at"
            )
        ),
        "lots": list(Lot.objects.order_by("pk").values_list("pk", "balance_ug", "expiry")),
        "count_lines": CountLine.objects.count(),
        "discrepancies": list(Discrepancy.objects.order_by("pk").values_list("pk", "resolved_at")),
    }


@contextmanager
def append_only_trigger_off(*, deletes: bool = False) -> Iterator[None]:
    """What someone with direct database access could do. DDL is transactional on both
    databases, so the test's rollback puts the trigger back."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER ledger_entry_no_update")
            if deletes:
                cursor.execute("DROP TRIGGER ledger_entry_no_delete")
        elif connection.vendor == "postgresql":
            # PostgreSQL will not ALTER a table with pending (deferred) trigger events from rows
            # written in this transaction: run the deferred foreign-key checks now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "ALTER TABLE inventory_ledgerentry DISABLE TRIGGER ledger_entry_append_only"
            )
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        else:  # pragma: no cover
            pytest.fail(f"no append-only trigger known for {connection.vendor}")
    yield
