from __future__ import annotations

import re
from typing import Any

from django import forms

from ketaclinic.clinical.instruments import list_instruments
from ketaclinic.clinical.instruments.model import Instrument, Item
from ketaclinic.measures.services import SELF_REPORT_CODES


def _encode(value: int | bool) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


SKIP = "skip"  # the "not asked" choice of a conditional item; never pre-selected


def _decode(raw: str) -> int | bool | None:
    if raw in ("", None, SKIP):
        return None
    if raw == "yes":
        return True
    if raw == "no":
        return False
    return int(raw)


def display_number(item: Item, position: int) -> str:
    """The item's own number as printed on the scale (C-SSRS "6a", HAM-D "16b"), not its
    position; named items without one (Aldrete "activity") are numbered by position."""
    return item.number if re.fullmatch(r"\d+[a-z]?", item.number) else str(position)


class ScaleForm(forms.Form):
    """One field per item, radio buttons with the scale's own options.

    Skip logic is the scale's: an item asked only after a Yes may stay blank; answering it
    after a No is refused by the scoring library with a message naming the item.
    """

    def __init__(
        self,
        instrument: Instrument,
        texts: dict[str, str],
        *args: Any,
        require_all: bool = False,
        audience: str = "staff",
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.instrument = instrument
        # "patient" on the portal: only the patient's own instructions are rendered (the
        # staff ones are not sent to the phone at all, not merely hidden).
        self.audience = audience
        unscored_help = "Optional." if audience == "patient" else "Not part of the score."
        for position, item in enumerate(instrument.items, start=1):
            number = display_number(item, position)
            choices = [(_encode(o.value), o.label) for o in item.options]
            if item.asked_if is not None:
                # A radio button cannot be unticked: without this, a question ticked by
                # mistake after a No could only be undone by changing the earlier answer.
                choices.append(
                    (SKIP, "Skip this question" if audience == "patient" else "Not asked")
                )
            self.fields[item.id] = forms.TypedChoiceField(
                label=f"{number}. {texts[item.id]}",
                choices=choices,
                coerce=_decode,
                empty_value=None,
                widget=forms.RadioSelect,
                required=require_all and item.required and item.asked_if is None,
                help_text="" if item.scored else unscored_help,
                error_messages={
                    "required": f"Please answer question {number}.",
                    "invalid_choice": f"Question {number}: %(value)s is not one of its answers.",
                },
            )
            self.fields[item.id].item = item  # type: ignore[attr-defined]

    def answers(self) -> dict[str, Any]:
        return {item.id: self.cleaned_data.get(item.id) for item in self.instrument.items}

    def item_fields(self) -> list[tuple[Item, forms.BoundField]]:
        return [(item, self[item.id]) for item in self.instrument.items]


class ChooseScaleForm(forms.Form):
    code = forms.ChoiceField(
        label="Scale", choices=[(i.code, f"{i.short_name} — {i.name}") for i in list_instruments()]
    )


class SelfReportRequestForm(forms.Form):
    instruments = forms.MultipleChoiceField(
        label="Scales to send",
        widget=forms.CheckboxSelectMultiple,
        choices=[
            (i.code, f"{i.short_name} — {i.name}")
            for i in list_instruments()
            if i.code in SELF_REPORT_CODES
        ],
        initial=["phq9", "cssrs_screen"],
    )
    channel = forms.ChoiceField(
        label="Send by",
        choices=[("email", "Email"), ("sms", "SMS")],
        widget=forms.RadioSelect,
        initial="email",
    )


class AcknowledgeForm(forms.Form):
    note = forms.CharField(
        label="What you did or decided", widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )
