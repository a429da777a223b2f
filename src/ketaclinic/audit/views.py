from __future__ import annotations

import csv

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from ketaclinic.accounts.access import requires
from ketaclinic.accounts.models import User
from ketaclinic.accounts.roles import Perm
from ketaclinic.audit import selectors
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction


class AuditFilterForm(forms.Form):
    patient = forms.IntegerField(required=False, min_value=1, label="Patient id")
    actor = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, label="Staff member"
    )
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, clinic, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["actor"].queryset = User.objects.filter(  # type: ignore[attr-defined]
            memberships__clinic=clinic
        ).order_by("last_name", "first_name")

    def clean(self):  # type: ignore[no-untyped-def]
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def to_filter(self) -> selectors.AuditFilter:
        d = self.cleaned_data
        return selectors.AuditFilter(
            patient_id=d.get("patient"),
            actor_id=d["actor"].pk if d.get("actor") else None,
            date_from=d.get("date_from"),
            date_to=d.get("date_to"),
        )


@requires(Perm.AUDIT_VIEW)
@require_http_methods(["GET"])
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None, clinic=request.clinic)  # type: ignore[attr-defined]
    page = None
    if not request.GET or form.is_valid():
        f = form.to_filter() if request.GET else selectors.AuditFilter()
        page = Paginator(selectors.entries(request.clinic, f), 50).get_page(  # type: ignore[attr-defined]
            request.GET.get("page")
        )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request, "audit/log.html", {"form": form, "page": page, "query": query.urlencode()}
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: user agents (the patient portal's too) and
    reasons are typed by others, and a leading = + - @ would make them a formula."""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


@requires(Perm.AUDIT_VIEW)
@require_http_methods(["GET"])
def audit_export(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None, clinic=request.clinic)  # type: ignore[attr-defined]
    if request.GET and not form.is_valid():
        return HttpResponse(
            "Invalid filter: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
            status=400,
            content_type="text/plain",
        )
    f = form.to_filter() if request.GET else selectors.AuditFilter()
    audit.record(
        Actor.from_request(request),
        AuditAction.EXPORT,
        "audit_log",
        "",
        detail={
            "patient": f.patient_id,
            "actor": f.actor_id,
            "from": str(f.date_from or ""),
            "to": str(f.date_to or ""),
        },
    )
    writer = csv.writer(_Echo())
    header = [
        "sequence",
        "at_utc",
        "actor",
        "patient_id",
        "action",
        "object_type",
        "object_id",
        "ip",
        "user_agent",
        "request_id",
        "reason",
        "entry_hash",
    ]

    def rows():  # type: ignore[no-untyped-def]
        yield writer.writerow(header)
        for e in selectors.entries(request.clinic, f).iterator(2000):  # type: ignore[attr-defined]
            yield writer.writerow(
                _cell(value)
                for value in [
                    e.sequence,
                    e.at.isoformat(),
                    e.actor.username if e.actor else "system",
                    e.patient_id or "",
                    e.action,
                    e.object_type,
                    e.object_id,
                    e.ip or "",
                    e.user_agent,
                    e.request_id,
                    e.reason,
                    e.entry_hash,
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    return response
