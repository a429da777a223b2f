"""The patient's phone pages: open a one-time link, confirm the birth date, answer one scale
at a time, submit once. Patients never sign in; the link's request lives in the session."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from ketaclinic.accounts.access import public
from ketaclinic.clinical.instruments import get_instrument
from ketaclinic.clinical.instruments.model import Instrument
from ketaclinic.measures import selectors as measure_selectors
from ketaclinic.measures import services
from ketaclinic.measures.forms import ScaleForm
from ketaclinic.measures.models import SelfReportRequest

SESSION_REQUEST = "portal.request_id"
SESSION_VERIFIED = "portal.verified"
SESSION_ANSWERS = "portal.answers"
SESSION_DONE = "portal.done"

PROBLEM_TEXT = {
    "invalid": (
        "This link does not work",
        "The address may be incomplete. Open the link from the message again, or ask "
        "the clinic to send a new one.",
    ),
    "expired": (
        "This link has expired",
        "Questionnaire links work for a limited time. Ask the clinic to send a new one.",
    ),
    "used": (
        "These questionnaires are already done",
        "Your answers were received. Thank you — there is nothing more to do.",
    ),
    "locked": (
        "This link is locked",
        "The date of birth did not match too many times. Please call the clinic.",
    ),
}


def _problem(request: HttpRequest, kind: str) -> HttpResponse:
    title, text = PROBLEM_TEXT[kind]
    status = {"invalid": 404, "expired": 410, "used": 410, "locked": 403}[kind]
    return render(request, "portal/problem.html", {"title": title, "text": text}, status=status)


def _current(request: HttpRequest) -> SelfReportRequest | HttpResponse:
    request_id = request.session.get(SESSION_REQUEST)
    if request_id is None:
        return _problem(request, "invalid")
    found = (
        SelfReportRequest.objects.select_related("clinic", "patient").filter(pk=request_id).first()
    )
    if found is None:
        return _problem(request, "invalid")
    try:
        return services.check_usable(found)
    except services.LinkProblem as exc:
        return _problem(request, exc.kind)


@public
@never_cache
@require_http_methods(["GET"])
def open_link(request: HttpRequest, token: str) -> HttpResponse:
    try:
        found = services.open_request(token)
    except services.LinkProblem as exc:
        return _problem(request, exc.kind)
    # Forget any earlier link's state; move the token out of the address bar.
    for key in (SESSION_VERIFIED, SESSION_ANSWERS, SESSION_DONE):
        request.session.pop(key, None)
    request.session[SESSION_REQUEST] = found.pk
    return redirect("portal:verify")


class BirthDateForm(forms.Form):
    date_of_birth = forms.DateField(
        label="Your date of birth",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={
            "invalid": "Enter your date of birth as YYYY-MM-DD.",
            "required": "Enter your date of birth.",
        },
    )


@public
@never_cache
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    current = _current(request)
    if isinstance(current, HttpResponse):
        return current
    form = BirthDateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        answer: date = form.cleaned_data["date_of_birth"]
        if services.check_birth_date(current, answer):
            request.session[SESSION_VERIFIED] = current.pk
            request.session[SESSION_ANSWERS] = {}
            return redirect("portal:scale", number=1)
        if current.status != "pending":
            return _problem(request, "locked")
        form.add_error(
            "date_of_birth",
            "That date does not match our record. Check it and try again, or call the clinic.",
        )
    return render(request, "portal/verify.html", {"form": form, "clinic": current.clinic})


def patient_errors(instrument: Instrument, answers: dict[str, Any]) -> list[tuple[str | None, str]]:
    """Why these answers cannot be sent, in the patient's words: a question answered that
    applies only after another answer (C-SSRS 3-5 after a Yes to 2, 6a after a Yes to 6)."""
    found: list[tuple[str | None, str]] = []
    by_id = {item.id: item for item in instrument.items}
    for item in instrument.items:
        if item.asked_if is None or answers.get(item.id) is None:
            continue
        parent_id, wanted = item.asked_if
        if answers.get(parent_id) != wanted:
            parent = by_id[parent_id].number
            found.append(
                (
                    item.id,
                    f"Question {item.number} is only for those who answered Yes to question "
                    f'{parent}. Choose "Skip this question", or change your answer to question '
                    f"{parent}.",
                )
            )
    return found or [(None, "Please check your answers to these questions and send them again.")]


@public
@never_cache
@require_http_methods(["GET", "POST"])
def scale(request: HttpRequest, number: int) -> HttpResponse:
    current = _current(request)
    if isinstance(current, HttpResponse):
        return current
    if request.session.get(SESSION_VERIFIED) != current.pk:
        return redirect("portal:verify")
    codes = current.instrument_codes
    if not 1 <= number <= len(codes):
        return redirect("portal:scale", number=1)
    instrument = get_instrument(codes[number - 1])
    texts = measure_selectors.item_texts(current.clinic, instrument)
    saved = request.session.get(SESSION_ANSWERS, {})
    initial = {
        k: ("yes" if v is True else "no" if v is False else v)
        for k, v in (saved.get(instrument.code) or {}).items()
        if v is not None
    }
    form = ScaleForm(
        instrument,
        texts,
        request.POST or None,
        initial=initial,
        require_all=True,
        audience="patient",
    )
    if request.method == "POST" and form.is_valid():
        answers = form.answers()
        # Check the scale's own rules (skip logic) before moving on.
        from ketaclinic.clinical.instruments import score

        if score(instrument.code, answers).errors:
            # The library's messages are written for staff (item ids, "record it as not
            # asked"); the patient gets the same rule in their own words, at the question.
            for item_id, message in patient_errors(instrument, answers):
                form.add_error(item_id, message)
        else:
            saved[instrument.code] = answers
            request.session[SESSION_ANSWERS] = saved
            if number < len(codes):
                return redirect("portal:scale", number=number + 1)
            try:
                submission = services.submit_self_report(
                    current.pk,
                    saved,
                    ip=request.META.get("REMOTE_ADDR"),
                    user_agent=request.META.get("HTTP_USER_AGENT", ""),
                )
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error(None, message)
            except services.LinkProblem as exc:
                return _problem(request, exc.kind)
            else:
                request.session.pop(SESSION_ANSWERS, None)
                request.session.pop(SESSION_VERIFIED, None)
                request.session[SESSION_DONE] = {
                    "clinic": current.clinic.name,
                    "crisis": current.clinic.crisis_text if submission.suicidality else "",
                }
                return redirect("portal:done")
    return render(
        request,
        "portal/scale.html",
        {
            "form": form,
            "instrument": instrument,
            "number": number,
            "count": len(codes),
            "clinic": current.clinic,
            "percent": int((number - 1) / len(codes) * 100),
        },
    )


@public
@never_cache
@require_http_methods(["GET"])
def done(request: HttpRequest) -> HttpResponse:
    info = request.session.get(SESSION_DONE)
    if not info:
        return _problem(request, "invalid")
    return render(request, "portal/done.html", info)
