"""Staff roles and the role-to-permission matrix: the one place that says who may do what.

docs/permissions.md is generated from this table (`ketaclinic permissions --markdown`) and a
test keeps the two in step. Every view and API endpoint declares the permission it needs with
`ketaclinic.accounts.access.requires`.
"""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    PRESCRIBER = "prescriber", "Prescriber"
    NURSE = "nurse", "Nurse / CRNA"
    FRONT_DESK = "front_desk", "Front desk"
    CLINIC_ADMIN = "clinic_admin", "Clinic admin"
    AUDITOR = "auditor", "Auditor"


class Perm(StrEnum):
    PATIENT_VIEW = "patient.view"  # registry, demographics, chart header
    PATIENT_REGISTER = "patient.register"  # create and edit demographics
    CLINICAL_VIEW = "clinical.view"  # measurements and clinical sections of the chart
    MEASUREMENT_RECORD = "measurement.record"  # weight and height
    AUDIT_VIEW = "audit.view"  # the audit log viewer and its CSV export
    STAFF_VIEW = "staff.view"  # the clinic's staff list
    STAFF_MANAGE = "staff.manage"  # add staff, change roles, deactivate, reset 2FA, unlock
    CLINIC_CONFIGURE = "clinic.configure"  # the clinic's details, thresholds and defaults
    SCALE_RECORD = "scale.record"  # record a rating scale for a patient
    SCALE_REQUEST = "scale.request"  # send a patient a self-report link
    ALERT_VIEW = "alert.view"  # the alert queue
    ALERT_ACKNOWLEDGE = "alert.acknowledge"  # acknowledge an alert with a note
    ASSESSMENT_RECORD = "assessment.record"  # record an eligibility assessment
    ASSESSMENT_SIGN = "assessment.sign"  # sign it (prescribers)
    COURSE_MANAGE = "course.manage"  # start a course, decide after induction
    SCHEDULE_VIEW = "schedule.view"  # calendar and course schedules
    SCHEDULE_MANAGE = "schedule.manage"  # book, move, cancel appointments
    CHAIR_MANAGE = "chair.manage"  # chairs and rooms
    LEDGER_VIEW = "ledger.view"  # the controlled-substance ledger, stock and reports
    LEDGER_RECEIVE = "ledger.receive"  # receipts, returns, destruction, adjustments, set-up
    LEDGER_ADMINISTER = "ledger.administer"  # draws, administration, witnessed waste, transfers
    LEDGER_COUNT = "ledger.count"  # blind counts and inventories
    LEDGER_RESOLVE = "ledger.resolve"  # resolve discrepancies, reverse entries, report losses
    SESSION_RECORD = "session.record"  # run a dosing session: checks, dose, vitals, discharge
    SESSION_DECIDE = "session.decide"  # prescriber decisions in a session, co-signature
    SESSION_CONFIGURE = "session.configure"  # clinic dosing settings and after-care text


# Why these: the front desk registers and schedules but does not see clinical detail;
# auditors read everything and change nothing; only clinicians record clinical data.
ROLE_PERMISSIONS: dict[Role, frozenset[Perm]] = {
    Role.PRESCRIBER: frozenset(
        {
            Perm.PATIENT_VIEW,
            Perm.PATIENT_REGISTER,
            Perm.CLINICAL_VIEW,
            Perm.MEASUREMENT_RECORD,
            Perm.SCALE_RECORD,
            Perm.SCALE_REQUEST,
            Perm.ALERT_VIEW,
            Perm.ALERT_ACKNOWLEDGE,
            Perm.LEDGER_VIEW,
            Perm.LEDGER_RECEIVE,
            Perm.LEDGER_ADMINISTER,
            Perm.LEDGER_COUNT,
            Perm.LEDGER_RESOLVE,
            Perm.ASSESSMENT_RECORD,
            Perm.ASSESSMENT_SIGN,
            Perm.COURSE_MANAGE,
            Perm.SCHEDULE_VIEW,
            Perm.SCHEDULE_MANAGE,
            Perm.SESSION_RECORD,
            Perm.SESSION_DECIDE,
            Perm.SESSION_CONFIGURE,
        }
    ),
    Role.NURSE: frozenset(
        {
            Perm.PATIENT_VIEW,
            Perm.PATIENT_REGISTER,
            Perm.CLINICAL_VIEW,
            Perm.MEASUREMENT_RECORD,
            Perm.SCALE_RECORD,
            Perm.SCALE_REQUEST,
            Perm.ALERT_VIEW,
            Perm.ALERT_ACKNOWLEDGE,
            Perm.LEDGER_VIEW,
            Perm.LEDGER_ADMINISTER,
            Perm.LEDGER_COUNT,
            Perm.ASSESSMENT_RECORD,
            Perm.SCHEDULE_VIEW,
            Perm.SCHEDULE_MANAGE,
            Perm.SESSION_RECORD,
        }
    ),
    # The front desk schedules and sends the questionnaire links before a visit but sees no
    # clinical results.
    Role.FRONT_DESK: frozenset(
        {
            Perm.PATIENT_VIEW,
            Perm.PATIENT_REGISTER,
            Perm.SCALE_REQUEST,
            Perm.SCHEDULE_VIEW,
            Perm.SCHEDULE_MANAGE,
        }
    ),
    Role.CLINIC_ADMIN: frozenset(
        {
            Perm.PATIENT_VIEW,
            Perm.PATIENT_REGISTER,
            Perm.CLINICAL_VIEW,
            Perm.AUDIT_VIEW,
            Perm.STAFF_VIEW,
            Perm.STAFF_MANAGE,
            Perm.CLINIC_CONFIGURE,
            Perm.ALERT_VIEW,
            Perm.LEDGER_VIEW,
            Perm.LEDGER_RECEIVE,
            Perm.LEDGER_COUNT,
            Perm.LEDGER_RESOLVE,
            Perm.SCHEDULE_VIEW,
            Perm.SCHEDULE_MANAGE,
            Perm.CHAIR_MANAGE,
            Perm.SESSION_CONFIGURE,
        }
    ),
    Role.AUDITOR: frozenset(
        {
            Perm.PATIENT_VIEW,
            Perm.CLINICAL_VIEW,
            Perm.AUDIT_VIEW,
            Perm.STAFF_VIEW,
            Perm.ALERT_VIEW,
            Perm.LEDGER_VIEW,
            Perm.SCHEDULE_VIEW,
        }
    ),
}

# Roles that must use TOTP two-factor sign-in whatever the clinic's own setting says.
ROLES_REQUIRING_TWO_FACTOR = frozenset({Role.PRESCRIBER, Role.CLINIC_ADMIN})


def role_has(role: str, perm: Perm) -> bool:
    return perm in ROLE_PERMISSIONS.get(Role(role), frozenset())


def permissions_markdown() -> str:
    roles = list(Role)
    lines = [
        "| permission | " + " | ".join(r.label for r in roles) + " |",
        "|---|" + "---|" * len(roles),
    ]
    for perm in Perm:
        marks = ["yes" if perm in ROLE_PERMISSIONS[r] else "" for r in roles]
        lines.append(f"| `{perm.value}` | " + " | ".join(marks) + " |")
    return "\n".join(lines) + "\n"
