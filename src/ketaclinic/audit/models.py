from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditAction(models.TextChoices):
    READ = "read", "Read"
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    EXPORT = "export", "Export"
    OVERRIDE = "override", "Override"
    SIGN = "sign", "Sign"


class AuditChain(models.Model):
    """The head of one clinic's hash chain. Writers lock this row, so entries form one line."""

    clinic = models.OneToOneField(
        "accounts.Clinic", on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    last_sequence = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    # The hash before last_hash: lets one UPDATE ... RETURNING hand the new entry both hashes.
    previous_hash = models.CharField(max_length=64, default="0" * 64)


class AuditEntry(models.Model):
    """One read or write of patient data. Append-only: the database refuses UPDATE and DELETE.

    `entry_hash` = SHA-256 of the previous entry's hash and this entry's canonical fields, so
    changing any stored row breaks the chain from that row on (`ketaclinic audit verify`).
    """

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    sequence = models.PositiveBigIntegerField()
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Plain ids, not foreign keys: the log must outlive and never constrain the records it names.
    patient_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=10, choices=AuditAction.choices)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    # What changed (field names, never values) or what was shown; no free-text PHI.
    detail = models.JSONField(default=dict, blank=True)
    previous_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "sequence"], name="audit_sequence_per_clinic"
            ),
        ]
        indexes = [
            models.Index(fields=["clinic", "patient_id", "-at"], name="audit_by_patient"),
            models.Index(fields=["clinic", "actor", "-at"], name="audit_by_actor"),
            models.Index(fields=["clinic", "-at"], name="audit_by_time"),
        ]

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.pk is not None:
            raise RuntimeError("Audit entries are append-only and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("Audit entries are append-only and cannot be deleted.")
