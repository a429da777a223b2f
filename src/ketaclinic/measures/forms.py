from __future__ import annotations

from typing import Any

from django import forms

from ketaclinic.clinical.instruments import list_instruments
from ketaclinic.clinical.instruments.model import Instrument, Item
from ketaclinic.measures.services import SELF_REPORT_CODES


def _encode(value: int | bool) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _decode(raw: str) -> int | bool | None:
    if raw in ("", None):
        return None
    if raw == "yes":
        return True
    if raw == "no":
        return False
    return int(raw)


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
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.instrument = instrument
        for number, item in enumerate(instrument.items, start=1):
            self.fields[item.id] = forms.TypedChoiceField(
                label=f"{number}. {texts[item.id]}",
                choices=[(_encode(o.value), o.label) for o in item.options],
                coerce=_decode,
                empty_value=None,
                widget=forms.RadioSelect,
                required=require_all and item.required and item.asked_if is None,
                help_text="" if item.scored else "Not part of the score.",
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
