"""Dosing sessions for the demo clinic, run through the dosing services step by step with the
clock set to each step's time, so every record (states, vitals flowsheet, scales, ledger
entries, signatures, audit) is the one the nurse's screen would have made.

- The last days' IV and esketamine sessions are complete: check-in, today's PHQ-9 and C-SSRS,
  pre-dose gate, the infusion (draw, pump, stop with the residue wasted before a witness) or
  each nasal device 5 minutes apart, vitals at the protocol's times, CADSS-6 at 40 minutes,
  side effects now and then, modified Aldrete, discharge, the nurse's signature and the
  prescriber's co-signature; esketamine sessions get their REMS monitoring form (the older
  ones submitted). One signed note is amended.
- Today: two or three sessions in progress on the chair board (an infusion running, an
  esketamine patient in observation, a patient checked in at the pre-dose checks).

The ledger demo calls `complete_session` for each of those past sessions, in time order with
its own entries, so draws, administrations and wastes land in the one ledger.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ketaclinic.accounts.models import Clinic, User
from ketaclinic.audit.context import Actor
from ketaclinic.demo.courses_demo import _gate_takes
from ketaclinic.demo.inventory_demo import _clock
from ketaclinic.demo.scales import PHQ9_WEIGHTS, Plan, cssrs_answers, phq9_answers
from ketaclinic.dosing import selectors, services
from ketaclinic.dosing.models import DosingSession, PregnancyStatus
from ketaclinic.inventory.models import Container
from ketaclinic.measures import services as measures
from ketaclinic.measures.models import Alert, ResponseSource, ScaleResponse
from ketaclinic.treatment import services as treatment
from ketaclinic.treatment.models import Appointment, AppointmentStatus, Chair

NO_MEDICINES = {k: False for k in services.MEDICINE_KEYS}
RESIDUE_UG = 2_500  # as the ledger demo: 0.05 mL of 50 mg/mL left in the syringe


class GateRefused(RuntimeError):
    """The pre-dose gate refused a demo session (a rule the demo's schedule broke)."""


@dataclass
class DosingDemo:
    completed: list[DosingSession] = field(default_factory=list)
    in_progress: list[DosingSession] = field(default_factory=list)
    amended: DosingSession | None = None


class Runner:
    def __init__(
        self, clinic: Clinic, users: dict[str, User], password: str, rng: random.Random
    ) -> None:
        self.clinic = clinic
        self.tz = ZoneInfo(clinic.time_zone)
        self.rng = rng
        self.password = password
        self.prescriber_user = users["prescriber"]
        self.desk = Actor.system(clinic, user=users["frontdesk"], label="demo")
        self.nurse = Actor.system(clinic, user=users["nurse"], label="demo")
        self.prescriber = Actor.system(clinic, user=users["prescriber"], label="demo")
        self.patient_actor = Actor(user=None, clinic=clinic, user_agent="ketaclinic demo portal")
        self.demo = DosingDemo()
        self.alerted = set(
            Alert.objects.filter(clinic=clinic, acknowledged_at__isnull=True).values_list(
                "patient_id", flat=True
            )
        )

    # --- steps ----------------------------------------------------------------------------------

    def fresh(self, session: DosingSession) -> DosingSession:
        session.refresh_from_db()
        return session

    def scales(self, appointment: Appointment, when: datetime) -> None:
        """Today's PHQ-9 (on the tablet) and the nurse's C-SSRS, where the patient stands."""
        patient = appointment.patient
        latest = (
            ScaleResponse.objects.filter(patient=patient, instrument_code="phq9")
            .order_by("-administered_at", "-pk")
            .first()
        )
        total = max(0, int(latest.total if latest and latest.total is not None else 12) - 1)
        weights = [w * self.rng.uniform(0.7, 1.4) for w in PHQ9_WEIGHTS]
        plan = Plan(patient, "", when.date(), [0], total, total, 1, True, {"phq9": weights})
        with _clock(when + timedelta(minutes=12)):
            measures.record_response(
                self.patient_actor,
                patient,
                "phq9",
                phq9_answers(self.rng, plan, total),
                administered_at=when,
                source=ResponseSource.SELF_REPORT,
                visit_id=appointment.pk,
            )
            measures.record_response(
                self.nurse,
                patient,
                "cssrs_screen",
                cssrs_answers(),
                administered_at=when + timedelta(minutes=8),
                source=ResponseSource.STAFF,
                visit_id=appointment.pk,
            )

    def check_in_and_predose(self, appointment: Appointment, start: datetime) -> DosingSession:
        with _clock(start - timedelta(minutes=20)):
            session = services.check_in(self.desk, appointment, at=start - timedelta(minutes=20))
        self.scales(appointment, start - timedelta(minutes=18))
        female = appointment.patient.sex_at_birth != "male"
        when = start - timedelta(minutes=2)
        with _clock(when):
            gate = services.record_predose(
                self.nurse,
                session,
                expected_version=self.fresh(session).version,
                sbp=self.rng.randint(112, 136),
                dbp=self.rng.randint(68, 86),
                hr=self.rng.randint(62, 90),
                spo2=self.rng.randint(96, 99),
                rr=self.rng.randint(12, 18),
                temp_c=Decimal("36.7"),
                fasting=True,
                ride_name=self.rng.choice(["Partner", "Sister", "Friend", "Son", "Daughter"]),
                ride_phone=f"555-{self.rng.randint(100, 999)}-{self.rng.randint(1000, 9999)}",
                pregnancy_status=PregnancyStatus.NOT_PREGNANT if female else "",
                medicines=NO_MEDICINES,
                scales_done=True,
                cssrs_reviewed=True,
                taken_at=when,
            )
            if not gate.ok:
                if not gate.needs_decision or not all(b.overridable for b in gate.blocks):
                    raise GateRefused(
                        f"demo session {session.pk}: the pre-dose gate refused "
                        f"{[b.message for b in gate.blocks]}"
                    )
                # A session the front desk moved inside its window to fit clinic hours.
                services.record_prescriber_decision(
                    self.prescriber,
                    session,
                    expected_version=self.fresh(session).version,
                    decision="proceed",
                    reason="Moved within its window to fit clinic hours; reviewed, proceed.",
                )
        return self.fresh(session)

    def vitals(
        self, session: DosingSession, when: datetime, *, rise: int = 0, moaas: int = 5
    ) -> None:
        with _clock(when):
            services.record_vitals(
                self.nurse,
                session,
                sbp=self.rng.randint(118, 134) + rise,
                dbp=self.rng.randint(70, 84) + rise // 2,
                hr=self.rng.randint(64, 92),
                spo2=self.rng.randint(95, 99),
                rr=self.rng.randint(12, 18),
                moaas=moaas,
                taken_at=when,
            )

    def dissociation(self, session: DosingSession, when: datetime) -> None:
        answers = [self.rng.choice((0, 1, 1, 2)) for _ in range(6)]
        with _clock(when + timedelta(minutes=3)):
            services.record_dissociation(
                self.nurse, session, code="cadss6", answers=answers, administered_at=when
            )

    def infuse(self, session: DosingSession, start: datetime, container: Container) -> None:
        dose_ug = int(selectors.dose_plan(session).dose_mg * 1000)
        with _clock(start):
            services.start_infusion(
                self.nurse,
                session,
                expected_version=self.fresh(session).version,
                container=container,
                drawn_ug=dose_ug + RESIDUE_UG,
                at=start,
            )

    def stop(self, session: DosingSession, when: datetime) -> None:
        with _clock(when):
            services.stop_infusion(
                self.nurse,
                session,
                expected_version=self.fresh(session).version,
                at=when,
                witness_username=self.prescriber_user.username,
                witness_secret=self.password,
                waste_reason="residue in syringe",
            )

    def devices(self, session: DosingSession, start: datetime, container: Container) -> None:
        count = int(session.dose_mg) // 28
        for n in range(count):
            when = start + timedelta(minutes=5 * n)
            with _clock(when):
                services.record_device(self.nurse, session, container=container, at=when)

    def finish(self, session: DosingSession, ends: datetime, index: int) -> None:
        """Discharge score, (stability), discharge, note, signatures."""
        with _clock(ends - timedelta(minutes=6)):
            services.record_discharge_score(
                self.nurse,
                session,
                answers=[2, 2, 2, 2, 2],
                administered_at=ends - timedelta(minutes=6),
            )
        if session.is_esketamine:
            with _clock(ends - timedelta(minutes=4)):
                services.confirm_stability(
                    self.prescriber,
                    session,
                    expected_version=self.fresh(session).version,
                    note="Alert, steady on standing, BP back to baseline.",
                )
        with _clock(ends):
            minutes = int((ends - self.fresh(session).first_dose_at).total_seconds() // 60)
            services.discharge(
                self.nurse,
                session,
                expected_version=self.fresh(session).version,
                ride_present=True,
                ready_to_leave_minutes=minutes - 5,
                at=ends,
            )
        with _clock(ends + timedelta(minutes=5)):
            services.update_note(
                self.nurse,
                session,
                expected_version=self.fresh(session).version,
                note=self.rng.choice(
                    [
                        "Tolerated well. Mild dissociation at the peak, settled by the end of "
                        "observation. Left with their ride; after-care sheet given.",
                        "Uneventful session. Patient reports feeling calmer than last week. "
                        "Discharged to their ride home.",
                        "Some perceptual changes mid-dose, reassured; resolved without "
                        "treatment. Discharged well.",
                    ]
                ),
            )
            services.sign(self.nurse, session, expected_version=self.fresh(session).version)
        cosigned = min(ends + timedelta(minutes=40 + index % 3 * 30), timezone.now())
        with _clock(max(cosigned, ends + timedelta(minutes=6))):
            services.cosign(self.prescriber, session, expected_version=self.fresh(session).version)

    # --- sessions -------------------------------------------------------------------------------

    def complete(self, appointment: Appointment, container: Container) -> DosingSession:
        start = timezone.localtime(appointment.starts_at, self.tz)  # type: ignore[arg-type]
        index = len(self.demo.completed)
        session = self.check_in_and_predose(appointment, start)
        if session.is_esketamine:
            self.devices(session, start, container)
            first = start
            self.vitals(session, first + timedelta(minutes=40), rise=14, moaas=4)
            self.dissociation(session, first + timedelta(minutes=40))
            if index % 3 == 1:
                self.side_effect(session, first + timedelta(minutes=25), "dissociation")
            self.vitals(session, first + timedelta(minutes=70), rise=6)
            self.vitals(session, first + timedelta(minutes=100))
            self.vitals(session, first + timedelta(minutes=118))
            ends = first + timedelta(minutes=125)
        else:
            minutes = session.infusion_minutes or 40
            self.infuse(session, start, container)
            for n in range(1, minutes // 10 + 1):
                # One infusion shows a raised reading (flagged, then settling).
                high = index % 4 == 2 and n == 3
                when = start + timedelta(minutes=10 * n)
                if high:
                    with _clock(when):
                        services.record_vitals(
                            self.nurse,
                            session,
                            sbp=182,
                            dbp=98,
                            hr=96,
                            spo2=97,
                            rr=16,
                            moaas=4,
                            note="Rate unchanged, rechecked in 10 minutes.",
                            taken_at=when,
                        )
                else:
                    self.vitals(session, when, rise=8 + 2 * n, moaas=4 if n >= 2 else 5)
            self.dissociation(session, start + timedelta(minutes=40))
            if index % 3 == 0:
                self.side_effect(session, start + timedelta(minutes=30), "nausea")
            stopped = start + timedelta(minutes=minutes)
            self.stop(session, stopped)
            observe = services.settings_for(self.clinic).min_observation_minutes
            for n in range(1, observe // 15 + 1):
                self.vitals(session, stopped + timedelta(minutes=15 * n), rise=max(0, 8 - 3 * n))
            ends = stopped + timedelta(minutes=observe + 3)
        self.finish(session, ends, index)
        session = self.fresh(session)
        if session.is_esketamine and index % 2 == 0:
            self.submit_pmf(session, ends + timedelta(days=1))
        self.demo.completed.append(session)
        return session

    def side_effect(self, session: DosingSession, when: datetime, kind: str) -> None:
        with _clock(when):
            services.record_side_effect(
                self.nurse,
                session,
                kind=kind,
                severity="mild",
                onset_at=when,
                action="Reassurance, lights dimmed"
                if kind == "dissociation"
                else "Ondansetron 4 mg IV",
                outcome="resolved" if kind == "dissociation" else "resolved_with_treatment",
            )

    def submit_pmf(self, session: DosingSession, when: datetime) -> None:
        if when > timezone.now():
            return
        with _clock(when):
            services.mark_pmf_submitted(
                self.nurse,
                session.rems_form,
                confirmation_number=f"PMF{self.rng.randint(10**7, 10**8 - 1)}",
                submitted_on=timezone.localtime(when, self.tz).date(),
            )

    def amend_one(self) -> None:
        """A signed note corrected afterwards: the original stays visible beside it."""
        infusions = [s for s in self.demo.completed if not s.is_esketamine]
        with_effect = [s for s in infusions if s.side_effects.exists()]
        session = self.fresh((with_effect or infusions or self.demo.completed)[-1])
        if session.side_effects.exists():
            addition = (
                " Correction: mild nausea 30 minutes into the infusion, ondansetron 4 mg IV "
                "given, resolved before discharge (see side effects)."
            )
            reason = "The note left out the nausea and ondansetron recorded on the flowsheet."
        else:
            addition = (
                " Addendum: walked to the car with the nurse at the patient's request; steady "
                "on standing, ride home confirmed in person."
            )
            reason = "The note did not say how the patient left the clinic."
        when = max(session.cosigned_at, timezone.now() - timedelta(hours=2))
        with _clock(when):
            services.amend(
                self.nurse,
                session,
                object_type="session",
                object_id=session.pk,
                field="note",
                new_value=session.note + addition,
                reason=reason,
            )
        self.demo.amended = session


def complete_session(runner: Runner, appointment_id: int, container: Container) -> None:
    """Run one past session in full (the ledger demo calls this at its time)."""
    appointment = Appointment.objects.select_related("patient", "course").get(pk=appointment_id)
    if appointment.patient_id in runner.alerted:
        raise RuntimeError("the demo keeps the open-alert patient's latest PHQ-9 as it is")
    runner.complete(appointment, container)


def cart_container(clinic: Clinic, drug: str, needed_ug: int, devices: int = 0) -> Container:
    """A container on the treatment cart holding `needed_ug` (a kit of `devices` devices for
    esketamine), brought from the safe when the cart has none."""
    from ketaclinic.inventory import services as ledger
    from ketaclinic.inventory.models import Product, StorageLocation

    products = Product.objects.filter(clinic=clinic, drug=drug)
    if devices:
        products = products.filter(devices_per_container=devices)
    product = products.order_by("pk").first()
    if product is None:
        raise RuntimeError(f"the demo ledger has no {drug} product")
    cart = StorageLocation.objects.get(clinic=clinic, kind="cart")
    today = timezone.localdate()
    found = ledger.available_containers(clinic.pk, product, cart, needed_ug, today)
    if not found:
        safe = StorageLocation.objects.get(clinic=clinic, kind="safe")
        stock = ledger.available_containers(clinic.pk, product, safe, needed_ug, today)
        if not stock:
            raise RuntimeError(f"the demo ledger has no {product.name} left")
        with _clock(timezone.now() - timedelta(hours=2)):
            ledger.transfer(
                Actor.system(clinic, user=User.objects.get(username="nurse"), label="demo"),
                stock[0],
                cart,
            )
        found = ledger.available_containers(clinic.pk, product, cart, needed_ug, today)
    return found[0]


def _move_to_today(runner: Runner, appointment: Appointment, start: datetime) -> bool:
    """Move a booking of this week to `start` today, in the first chair free then."""
    esketamine = appointment.course.drug == "esketamine"
    chairs = sorted(
        Chair.objects.filter(clinic=runner.clinic, is_active=True).exclude(name="Therapy room"),
        key=lambda c: (esketamine != ("Spravato" in c.name), c.name),
    )
    for chair in chairs:
        try:
            with _clock(start - timedelta(hours=3)):
                treatment.book(
                    runner.desk,
                    appointment,
                    starts_at=start,
                    chair=chair,
                    staff=runner.nurse.user,
                    reason="Patient asked to come in today instead.",
                )
            return True
        except ValidationError as exc:
            # Only "that chair is taken then": try the next chair.
            if set(getattr(exc, "message_dict", {})) != {"starts_at"}:
                raise
    return False


def start_today(runner: Runner) -> None:
    """Sessions in progress now, on the chair board: an infusion running, an esketamine
    patient in observation, a patient at the pre-dose checks."""
    now = timezone.now()
    local_now = timezone.localtime(now, runner.tz)
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = local_now.date()
    # Each course's next session, unless it had one in the last three days (the protocol's
    # minimum gap); the ones whose window takes today first, then the soonest.
    recent = set(
        Appointment.objects.filter(
            clinic=runner.clinic,
            kind="dosing",
            starts_at__gte=now - timedelta(days=3),
            starts_at__lte=now + timedelta(hours=3),
        ).values_list("course_id", flat=True)
    )
    upcoming = (
        Appointment.objects.filter(
            Q(status=AppointmentStatus.BOOKED, starts_at__gt=now + timedelta(hours=3))
            | Q(status=AppointmentStatus.PLANNED),
            clinic=runner.clinic,
            kind="dosing",
            target__gte=today - timedelta(days=3),
            course__status__in=["active", "maintenance"],
        )
        .exclude(patient_id__in=runner.alerted)
        .exclude(course_id__in=recent)
        .select_related("patient", "course")
        .order_by("target", "pk")
    )
    under_way = set(  # courses already under way (not a first session moved to today)
        Appointment.objects.filter(
            clinic=runner.clinic, status=AppointmentStatus.COMPLETED
        ).values_list("course_id", flat=True)
    )
    nexts: dict[int, Appointment] = {}
    for appointment in upcoming:
        if appointment.course_id in under_way:
            nexts.setdefault(appointment.course_id, appointment)
    candidates = sorted(
        nexts.values(),
        key=lambda a: (not (a.earliest <= today <= a.latest), a.target, a.pk),
    )
    taken: set[int] = set()

    def pick(drug: str) -> Appointment | None:
        for appointment in candidates:
            if (
                appointment.course.drug == drug
                and appointment.patient_id not in taken
                and _gate_takes(appointment.course)
            ):
                taken.add(appointment.patient_id)
                return appointment
        return None

    for drug, dose_minutes_ago in (("ketamine", 25), ("esketamine", 55), ("ketamine", -1)):
        dose_start = (now - timedelta(minutes=dose_minutes_ago)).replace(second=0, microsecond=0)
        booked_at = dose_start - timedelta(minutes=20)
        booked_at = booked_at.replace(minute=booked_at.minute - booked_at.minute % 15)
        if booked_at < midnight:
            continue
        session = None
        while session is None and (appointment := pick(drug)) is not None:
            # A visit moved to today may be too soon for its protocol: the gate refuses it,
            # as it would in the clinic; undo the move and try the next patient.
            try:
                with transaction.atomic():
                    if not _move_to_today(runner, appointment, booked_at):
                        continue
                    appointment.refresh_from_db()
                    session = runner.check_in_and_predose(appointment, dose_start)
            except GateRefused:
                session = None
        if session is None:
            continue
        if dose_minutes_ago < 0:  # waiting for the dose
            runner.demo.in_progress.append(session)
            continue
        if drug == "esketamine":
            devices = int(session.dose_mg) // 28
            container = cart_container(runner.clinic, drug, devices * 28_000, devices)
            runner.devices(session, dose_start, container)
            runner.vitals(session, dose_start + timedelta(minutes=40), rise=14, moaas=4)
            runner.dissociation(session, dose_start + timedelta(minutes=40))
        else:
            dose_ug = int(selectors.dose_plan(session).dose_mg * 1000)
            container = cart_container(runner.clinic, drug, dose_ug + RESIDUE_UG)
            runner.infuse(session, dose_start, container)
            for n in (1, 2):
                runner.vitals(session, dose_start + timedelta(minutes=10 * n), rise=8 + 2 * n)
        runner.demo.in_progress.append(runner.fresh(session))
    # The reminders of the moved visits were due when they were moved: the worker finds the
    # patients already checked in and skips them.
    with _clock(now - timedelta(hours=2)):
        treatment.send_due_reminders(now=now - timedelta(hours=2))
