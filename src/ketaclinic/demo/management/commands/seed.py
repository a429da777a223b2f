from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ketaclinic.accounts.models import Clinic
from ketaclinic.accounts.services import create_clinic
from ketaclinic.clinical.identifiers import medical_record_number
from ketaclinic.demo.synthetic import person
from ketaclinic.patients.models import BodyMeasurement, Patient
from ketaclinic.patients.search import name_key

BATCH = 2000


class Command(BaseCommand):
    help = (
        "Generate synthetic patients at scale (for benchmarks): "
        "ketaclinic seed --patients 100000 --clinics 4"
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--patients", type=int, required=True)
        parser.add_argument("--clinics", type=int, default=1)
        parser.add_argument(
            "--measurements", type=int, default=2, help="body measurements per patient"
        )
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args, **o):  # type: ignore[no-untyped-def]
        if o["patients"] < 1 or o["clinics"] < 1:
            raise CommandError("--patients and --clinics must be at least 1")
        from ketaclinic.accounts.models import User

        recorder = User.objects.filter(
            username="seed-recorder"
        ).first() or User.objects.create_user(
            "seed-recorder", password=None, first_name="Seed", last_name="Recorder"
        )
        rng = random.Random(o["seed"])
        clinics = []
        for k in range(1, o["clinics"] + 1):
            name = f"Seed Clinic {k}"
            clinics.append(
                Clinic.objects.filter(name=name).first()
                or create_clinic(name=name, time_zone="America/New_York")
            )
        today = timezone.localdate()
        now = timezone.now()
        total = o["patients"]
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=False,
        ) as progress:
            task = progress.add_task("Seeding patients", total=total)
            done = 0
            while done < total:
                size = min(BATCH, total - done)
                with transaction.atomic():
                    self._batch(rng, clinics, size, done, today, now, recorder, o["measurements"])
                done += size
                progress.update(task, completed=done)
        self.stdout.write(
            self.style.SUCCESS(f"Seeded {total} patients across {len(clinics)} clinic(s).")
        )

    def _batch(self, rng, clinics, size, offset, today, now, recorder, per_patient):  # type: ignore[no-untyped-def]
        locked = {c.pk: Clinic.objects.select_for_update().get(pk=c.pk) for c in clinics}
        patients = []
        sizes = []
        for i in range(size):
            clinic = locked[clinics[(offset + i) % len(clinics)].pk]
            p = person(rng, today)
            mrn = medical_record_number(clinic.next_mrn_sequence)
            clinic.next_mrn_sequence += 1
            patients.append(
                Patient(
                    clinic=clinic,
                    mrn=mrn,
                    given_name=p.given_name,
                    family_name=p.family_name,
                    given_name_key=name_key(p.given_name),
                    family_name_key=name_key(p.family_name),
                    date_of_birth=p.date_of_birth,
                    sex_at_birth=p.sex_at_birth,
                    phone=p.phone,
                    email=p.email,
                    address_line1=p.address_line1,
                    city=p.city,
                    state=p.state,
                    postal_code=p.postal_code,
                    emergency_contact_name=p.emergency_contact_name,
                    emergency_contact_phone=p.emergency_contact_phone,
                    emergency_contact_relationship=p.emergency_contact_relationship,
                    diagnosis_codes=p.diagnosis_codes,
                    status=p.status,
                )
            )
            sizes.append((p.height_cm, p.weight_kg))
        for clinic in locked.values():
            clinic.save(update_fields=["next_mrn_sequence"])
        created = Patient.objects.bulk_create(patients)
        if created and created[0].pk is None:  # backends that do not return ids
            created = list(
                Patient.objects.filter(
                    mrn__in=[p.mrn for p in patients], clinic__in=list(locked.values())
                )
            )
        measurements = []
        for patient, (height, weight) in zip(created, sizes, strict=False):
            for n in range(per_patient):
                measurements.append(
                    BodyMeasurement(
                        clinic_id=patient.clinic_id,
                        patient=patient,
                        measured_at=now - timedelta(days=30 * (per_patient - n)),
                        weight_kg=Decimal(str(round(weight + rng.uniform(-1, 1), 1))),
                        height_cm=Decimal(str(height)) if n == 0 else None,
                        recorded_by=recorder,
                    )
                )
        BodyMeasurement.objects.bulk_create(measurements)
