"""Rating-scale history for the demo clinic: months of PHQ-9 and C-SSRS screens, with GAD-7,
PCL-5, PEG and clinician MADRS where they fit, written through the real services so the
scores, audit entries and alerts are the ones the app itself would make.

Every treated patient (active, paused, discharged) gets 3 to 12 months of visits: twice a
week during induction, weekly for a few weeks, then every 2 to 4 weeks. Each follows one
trajectory -- remitter, responder, partial responder or non-responder -- on the PHQ-9, and the
other scales follow the same course. Patients still in screening or just referred have a
baseline only.

Alerts: a few patients screen positive for passive suicidal thoughts at baseline and one
relapses mid-course; those alerts are acknowledged by the prescriber with a note. Exactly one
alert stays open: today's portal PHQ-9 of one active patient, item 9 answered "several days".
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from ketaclinic.accounts.models import Clinic, User
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction
from ketaclinic.measures import services
from ketaclinic.measures.models import Alert, ResponseSource, ScaleResponse
from ketaclinic.patients.models import Patient, PatientStatus

REMITTER, RESPONDER, PARTIAL, NON_RESPONDER = "remitter", "responder", "partial", "non_responder"
TREATED = (PatientStatus.ACTIVE, PatientStatus.PAUSED, PatientStatus.DISCHARGED)
PTSD = "F43.10"
PAIN = ("G90.511", "M79.7")
ANXIETY = "F41.1"

# How much each item tends to carry of a total (patients get their own variation on top).
PHQ9_WEIGHTS = (1.3, 1.3, 1.2, 1.4, 0.8, 1.0, 1.0, 0.5)  # items 1-8; item 9 is set on purpose
GAD7_WEIGHTS = (1.3, 1.2, 1.3, 1.1, 0.8, 1.0, 0.9)
# fmt: off
PCL5_WEIGHTS = (
    1.2, 1.1, 0.9, 1.3, 1.1, 1.2, 1.1, 0.7, 1.0, 0.9,
    1.0, 1.1, 1.1, 1.0, 1.1, 0.5, 1.2, 1.1, 1.1, 1.3,
)
# fmt: on
# MADRS items 1-9; item 10 (suicidal thoughts) is kept at 0-1 so it never flags.
MADRS_WEIGHTS = (1.3, 1.3, 1.1, 1.1, 0.8, 1.0, 1.2, 1.2, 0.9)

ACK_NOTES = {
    "suicidality": (
        "Phoned the patient the same day: passive thoughts of being better off dead, no plan, "
        "no intent, no behaviour. Safety plan reviewed with them, crisis numbers given; partner "
        "aware. Continue treatment, re-screen at every visit."
    ),
    "cssrs": (
        "Reviewed in person before the infusion: passive death wish in the past month, no "
        "method, plan or intent. Safety plan written together; firearms not in the home. "
        "Cleared to proceed."
    ),
    "phq9_rise": (
        "Rise after two missed maintenance sessions and a job loss. Seen in clinic: no "
        "suicidal thoughts on interview. Booster infusion booked this week, therapist informed."
    ),
}


@dataclass
class Plan:
    """One patient's course of scales, worked out before anything is written."""

    patient: Patient
    archetype: str
    start: date
    days: list[int]  # visit days after start; the last is the end of the history
    baseline: int  # PHQ-9 at day 0
    final: int  # PHQ-9 at the last visit
    tau: float  # days for the improvement to get ~63 % of the way
    self_report: bool  # answers the patient-rated scales on the tablet/portal
    weights: dict[str, list[float]] = field(default_factory=dict)
    gad7: bool = False
    pcl5: bool = False
    peg: bool = False
    madrs: bool = False
    baseline_si: str = ""  # "passive" or "active_no_intent": positive screens at day 0
    relapse_day: int | None = None
    open_alert: bool = False  # the last PHQ-9 comes from the portal, now, with item 9 = 1


def spread(
    rng: random.Random, total: int, maxima: Sequence[int], weights: Sequence[float]
) -> list[int]:
    """Item answers within each item's range that add up to `total` exactly."""
    if not 0 <= total <= sum(maxima):
        raise ValueError(f"cannot spread {total} over items of at most {list(maxima)}")
    values = [0] * len(maxima)
    for _ in range(total):
        room = [i for i, top in enumerate(maxima) if values[i] < top]
        # Fill evenly-ish: an item already high is a little less likely to rise further.
        chosen = rng.choices(room, [weights[i] / (1 + 0.35 * values[i]) for i in room])[0]
        values[chosen] += 1
    return values


def _difficulty(total: int, cuts: tuple[int, int, int]) -> int:
    """The unscored 'how difficult' item, consistent with the total."""
    return sum(total >= c for c in cuts)


def phq9_answers(rng: random.Random, plan: Plan, total: int, item9: int = 0) -> dict[str, int]:
    items = spread(rng, total - item9, [3] * 8, plan.weights["phq9"])
    answers = {f"q{n}": v for n, v in enumerate(items, start=1)}
    answers["q9"] = item9
    answers["q10"] = _difficulty(total, (5, 10, 20))
    return answers


def gad7_answers(rng: random.Random, plan: Plan, total: int) -> dict[str, int]:
    items = spread(rng, total, [3] * 7, plan.weights["gad7"])
    answers = {f"q{n}": v for n, v in enumerate(items, start=1)}
    answers["q8"] = _difficulty(total, (5, 10, 15))
    return answers


def pcl5_answers(rng: random.Random, plan: Plan, total: int) -> dict[str, int]:
    items = spread(rng, total, [4] * 20, plan.weights["pcl5"])
    return {f"q{n}": v for n, v in enumerate(items, start=1)}


def madrs_answers(rng: random.Random, plan: Plan, total: int) -> dict[str, int]:
    item10 = 1 if total >= 24 and rng.random() < 0.5 else 0
    items = spread(rng, total - item10, [6] * 9, plan.weights["madrs"])
    answers = {f"q{n}": v for n, v in enumerate(items, start=1)}
    answers["q10"] = item10
    return answers


def peg_answers(rng: random.Random, mean: float) -> dict[str, int]:
    items = spread(rng, round(mean * 3), [10, 10, 10], (1.15, 1.0, 0.95))
    return {"q1": items[0], "q2": items[1], "q3": items[2]}


def cssrs_answers(kind: str = "") -> dict[str, bool | None]:
    """C-SSRS screener with its skip logic: 3-5 only after a Yes to 2, 6a only after 6."""
    if kind == "passive":  # wish to be dead, nothing more
        return {"q1": True, "q2": False, "q6": False}
    if kind == "active_no_intent":  # thoughts with a method, no intent or plan
        return {"q1": True, "q2": True, "q3": True, "q4": False, "q5": False, "q6": False}
    return {"q1": False, "q2": False, "q6": False}


def visit_days(rng: random.Random, span: int) -> list[int]:
    """Twice weekly for ~3 weeks (6 infusions), weekly for 2-3 weeks, then every 2-4 weeks."""
    days = [0, 3, 7, 10, 14, 17]
    day = days[-1]
    for _ in range(rng.randint(2, 3)):
        day += 7
        days.append(day)
    while True:
        day += rng.choice((14, 21, 21, 28, 28))
        if day > span - 10:
            break
        days.append(day)
    days.append(span)
    return days


def phq9_course(plan: Plan, day: int) -> float:
    """The noise-free PHQ-9 on `day`: baseline at 0, exponential approach to the final value."""
    end = plan.days[-1]
    reach = (1 - math.exp(-day / plan.tau)) / (1 - math.exp(-end / plan.tau))
    return plan.baseline + (plan.final - plan.baseline) * reach


def final_for(rng: random.Random, archetype: str, baseline: int) -> int:
    if archetype == REMITTER:
        return rng.randint(1, 4)
    if archetype == RESPONDER:
        return rng.randint(5, baseline // 2)
    if archetype == PARTIAL:
        # 25-45 % better: a real change that falls short of a response.
        return max(baseline // 2 + 1, round(baseline * rng.uniform(0.58, 0.72)))
    return baseline + rng.choice((-2, -1, -1, 0, 1))


# Trajectories by status, taken in turn: discharged patients mostly did well, paused ones
# mostly did not, active ones are a mix.
ARCHETYPE_CYCLES = {
    PatientStatus.DISCHARGED: (REMITTER, RESPONDER, REMITTER, NON_RESPONDER, RESPONDER),
    PatientStatus.PAUSED: (NON_RESPONDER, PARTIAL),
    PatientStatus.ACTIVE: (RESPONDER, NON_RESPONDER, REMITTER, PARTIAL, RESPONDER, REMITTER),
}


def plan_courses(rng: random.Random, patients: list[Patient], today: date) -> list[Plan]:
    plans: list[Plan] = []
    turns = {status: 0 for status in ARCHETYPE_CYCLES}
    for patient in patients:
        if patient.status not in TREATED:
            continue
        cycle = ARCHETYPE_CYCLES[patient.status]
        archetype = cycle[turns[patient.status] % len(cycle)]
        turns[patient.status] += 1
        span = rng.randint(95, 355)
        # Active patients were seen in the past week; paused and discharged ones stopped earlier.
        ended = {
            PatientStatus.ACTIVE: rng.randint(1, 6),
            PatientStatus.PAUSED: rng.randint(18, 45),
            PatientStatus.DISCHARGED: rng.randint(21, 120),
        }[patient.status]
        end = today - timedelta(days=ended)
        baseline = rng.randint(14, 23)
        dx = set(patient.diagnosis_codes)
        plan = Plan(
            patient=patient,
            archetype=archetype,
            start=end - timedelta(days=span),
            days=visit_days(rng, span),
            baseline=baseline,
            final=final_for(rng, archetype, baseline),
            tau=rng.uniform(8, 28),
            self_report=rng.random() < 0.5,
            gad7=ANXIETY in dx or rng.random() < 0.3,
            pcl5=PTSD in dx,
            peg=bool(dx & set(PAIN)),
        )
        plan.weights = {
            name: [w * rng.uniform(0.6, 1.5) for w in weights]
            for name, weights in (
                ("phq9", PHQ9_WEIGHTS),
                ("gad7", GAD7_WEIGHTS),
                ("pcl5", PCL5_WEIGHTS),
                ("madrs", MADRS_WEIGHTS),
            )
        }
        plans.append(plan)

    active = [p for p in plans if p.patient.status == PatientStatus.ACTIVE]
    improving = [p for p in plans if p.archetype in (REMITTER, RESPONDER)]
    # A few clinician-rated MADRS courses; one active patient with PTSD has every scale.
    showcase = next((p for p in active if p.pcl5), active[3])
    showcase.gad7 = True
    for plan in (active[0], active[2], showcase, improving[-1]):
        plan.madrs = True
    # Positive suicide screens at baseline (acknowledged long ago).
    improving[0].baseline_si = "passive"
    improving[2].baseline_si = "active_no_intent"
    improving[4].baseline_si = "passive"
    # One responder relapses for a visit during maintenance (+5 over baseline).
    for plan in improving[5:]:
        middle = [d for d in plan.days if 60 <= d < plan.days[-1]]
        if plan.archetype == RESPONDER and plan.baseline <= 18 and middle:
            plan.relapse_day = middle[0]
            break
    # The open alert: today's portal PHQ-9 of an active partial responder.
    next(p for p in active if p.archetype == PARTIAL).open_alert = True
    return plans


class Writer:
    """Writes the planned responses through the services and settles the alerts they raise."""

    def __init__(self, clinic: Clinic, users: dict[str, User], rng: random.Random):
        self.clinic = clinic
        self.rng = rng
        self.tz = ZoneInfo(clinic.time_zone)
        self.nurse = Actor.system(clinic, user=users["nurse"], label="demo")
        self.prescriber = Actor.system(clinic, user=users["prescriber"], label="demo")
        self.patient_actor = Actor(user=None, clinic=clinic, user_agent="ketaclinic demo portal")
        self.now = timezone.now()

    def at(self, day: date, minutes_after_8: int) -> datetime:
        when = datetime.combine(day, time(8), tzinfo=self.tz) + timedelta(minutes=minutes_after_8)
        return min(when, self.now - timedelta(minutes=30))

    def record(
        self,
        actor: Actor,
        plan: Plan,
        code: str,
        answers: Mapping[str, object],
        when: datetime,
        source: str,
    ) -> ScaleResponse:
        response = services.record_response(
            actor, plan.patient, code, answers, administered_at=when, source=source
        )
        for alert in Alert.objects.filter(response=response):
            self.acknowledge(alert, when)
        return response

    def acknowledge(self, alert: Alert, when: datetime) -> None:
        codes = {r["code"] for r in alert.reasons}
        key = (
            "phq9_rise"
            if "phq9_rise" in codes
            else "cssrs"
            if alert.response.instrument_code == "cssrs_screen"
            else "suicidality"
        )
        services.acknowledge_alert(self.prescriber, alert, ACK_NOTES[key])
        # The service stamps "now"; the demo places the alert where its response happened,
        # so the queue and the chart read as a real history (the audit chain keeps "now").
        opened = when + timedelta(minutes=2)
        Alert.objects.filter(pk=alert.pk).update(
            opened_at=opened,
            acknowledged_at=opened + timedelta(minutes=self.rng.randint(25, 240)),
        )

    def patient_scale_source(self, plan: Plan) -> tuple[Actor, str]:
        if plan.self_report:
            return self.patient_actor, ResponseSource.SELF_REPORT
        return self.nurse, ResponseSource.STAFF

    def write(self, plan: Plan) -> None:
        rng = self.rng
        last = {"gad7": -999, "pcl5": -999, "peg": -999, "madrs": -999}
        end = plan.days[-1]
        for index, day in enumerate(plan.days):
            first, final = index == 0, day == end
            visit = plan.start + timedelta(days=day)
            minutes = rng.randint(0, 7 * 60)
            severity = phq9_course(plan, day)  # noise-free, for the other scales
            relative = severity / plan.baseline
            actor, source = self.patient_scale_source(plan)
            # PHQ-9 and C-SSRS before most visits (always the first and the last).
            if first or final or day == plan.relapse_day or rng.random() < 0.85:
                item9 = 1 if first and plan.baseline_si else 0
                if first:
                    total = plan.baseline
                elif final and not plan.open_alert:
                    total = plan.final
                elif day == plan.relapse_day:
                    total = plan.baseline + rng.randint(5, 6)
                else:
                    # Noise, but never 5+ over the baseline (that would be an alert).
                    total = round(severity + rng.gauss(0, 1.4))
                    total = max(0, min(total, plan.baseline + 3, 24))
                self.record(
                    actor,
                    plan,
                    "phq9",
                    phq9_answers(rng, plan, total, item9),
                    self.at(visit, minutes),
                    source,
                )
                if first or rng.random() < 0.9:
                    self.record(
                        self.nurse,
                        plan,
                        "cssrs_screen",
                        cssrs_answers(plan.baseline_si if first else ""),
                        self.at(visit, minutes + 12),
                        ResponseSource.STAFF,
                    )
            if plan.gad7 and (first or final or day - last["gad7"] >= 21):
                base = min(20, round(plan.baseline * 0.72) + 2)
                total = max(0, min(21, round(base * relative + rng.gauss(0, 1.2))))
                if first:
                    total = base
                self.record(
                    actor,
                    plan,
                    "gad7",
                    gad7_answers(rng, plan, total),
                    self.at(visit, minutes + 4),
                    source,
                )
                last["gad7"] = day
            if plan.pcl5 and (first or final or day - last["pcl5"] >= 28):
                base = min(70, round(plan.baseline * 2.6) + 4)
                total = max(0, min(80, round(base * relative + rng.gauss(0, 3))))
                self.record(
                    actor,
                    plan,
                    "pcl5",
                    pcl5_answers(rng, plan, base if first else total),
                    self.at(visit, minutes + 6),
                    source,
                )
                last["pcl5"] = day
            if plan.peg and (first or final or day - last["peg"] >= 14):
                # Pain eases less than mood does.
                base = 6.0 + (plan.patient.pk % 5) * 0.4
                mean = base * (1 - 0.45 * (1 - relative)) + rng.gauss(0, 0.3)
                self.record(
                    actor,
                    plan,
                    "peg",
                    peg_answers(rng, max(0.0, min(10.0, base if first else mean))),
                    self.at(visit, minutes + 8),
                    source,
                )
                last["peg"] = day
            if plan.madrs and (
                first or final or (day >= 17 and last["madrs"] == 0) or day - last["madrs"] >= 56
            ):
                base = min(44, round(plan.baseline * 1.65) + 2)
                total = max(0, min(54, round(base * relative + rng.gauss(0, 2))))
                self.record(
                    self.prescriber,
                    plan,
                    "madrs",
                    madrs_answers(rng, plan, base if first else total),
                    self.at(visit, minutes + 40),
                    ResponseSource.STAFF,
                )
                last["madrs"] = day
        if plan.open_alert:
            self.open_alert(plan)

    def open_alert(self, plan: Plan) -> None:
        """This morning's questionnaire from the portal: item 9 'several days', not yet seen."""
        sent = services.create_self_report_request(
            self.nurse, plan.patient, ["phq9"], channel="email", deliver=False
        )
        answers = phq9_answers(self.rng, plan, plan.final, item9=1)
        submission = services.submit_self_report(
            sent.request.pk, {"phq9": answers}, user_agent="ketaclinic demo portal"
        )
        if not submission.suicidality:
            raise RuntimeError("the demo's open alert did not flag suicidality")


def baseline_only(writer: Writer, rng: random.Random, patient: Patient, today: date) -> None:
    """Screening and referred patients: the intake PHQ-9 and C-SSRS, a week or two ago."""
    plan = Plan(
        patient=patient,
        archetype="",
        start=today - timedelta(days=rng.randint(3, 20)),
        days=[0],
        baseline=rng.randint(12, 23),
        final=0,
        tau=1,
        self_report=True,
        weights={"phq9": [w * rng.uniform(0.6, 1.5) for w in PHQ9_WEIGHTS]},
    )
    minutes = rng.randint(0, 7 * 60)
    writer.record(
        writer.patient_actor,
        plan,
        "phq9",
        phq9_answers(rng, plan, plan.baseline),
        writer.at(plan.start, minutes),
        ResponseSource.SELF_REPORT,
    )
    writer.record(
        writer.nurse,
        plan,
        "cssrs_screen",
        cssrs_answers(),
        writer.at(plan.start, minutes + 15),
        ResponseSource.STAFF,
    )


def assign_prescriber(actor: Actor, patients: list[Patient], prescriber: User) -> None:
    for patient in patients:
        patient.responsible_prescriber = prescriber
        patient._history_user = actor.user  # type: ignore[attr-defined]
        patient.save(update_fields=["responsible_prescriber"])
        audit.record(
            actor,
            AuditAction.UPDATE,
            "patient",
            patient.pk,
            patient_id=patient.pk,
            detail={"fields": ["responsible_prescriber"]},
        )


def load_scales(
    clinic: Clinic, users: dict[str, User], rng: random.Random, today: date
) -> list[Plan]:
    """Write the scale history of every patient of `clinic`; returns the treated courses."""
    patients = list(Patient.objects.filter(clinic=clinic).order_by("pk"))
    admin = Actor.system(clinic, user=users["admin"], label="demo")
    assign_prescriber(admin, patients, users["prescriber"])
    writer = Writer(clinic, users, rng)
    plans = plan_courses(rng, patients, today)
    for plan in plans:
        writer.write(plan)
    for patient in patients:
        if patient.status not in TREATED:
            baseline_only(writer, rng, patient, today)
    still_open = list(Alert.objects.filter(clinic=clinic, acknowledged_at__isnull=True))
    if len(still_open) != 1 or "suicidality" not in still_open[0].response.flags:
        raise RuntimeError(
            f"the demo should leave exactly one open suicidality alert, not {len(still_open)}"
        )
    return plans
