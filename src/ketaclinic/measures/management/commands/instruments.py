"""`ketaclinic instruments list | load FILE --clinic X | export CODE`.

`load` reads a FHIR R4 Questionnaire a clinic holds the rights to (e.g. a licensed MADRS form),
works out which instrument it is, reads each item's wording and stores it as the clinic's
InstrumentWording, replacing any earlier load. The staff scale forms and the patient portal
then show that wording; scoring never depends on it. Nothing is stored when anything is wrong.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from ketaclinic.accounts.models import Clinic
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction
from ketaclinic.clinical.fhir_questionnaire import (
    LOINC_SYSTEM,
    questionnaire_for,
    wording_from_questionnaire,
)
from ketaclinic.clinical.instruments import (
    INSTRUMENT_CODES,
    Instrument,
    UnknownInstrumentError,
    get_instrument,
    list_instruments,
)
from ketaclinic.measures.models import InstrumentWording


def _loose(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def _named(text: object) -> str | None:
    """The instrument code a name, id, short name or title stands for, if any."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return get_instrument(text).code
    except UnknownInstrumentError:
        pass
    key = _loose(text.replace("+", "positive"))
    for instrument in list_instruments():
        names = (instrument.short_name.replace("+", "positive"), instrument.name)
        if key in {_loose(name) for name in names}:
            return instrument.code
    return None


def instruments_claimed(questionnaire: dict[str, Any]) -> set[str]:
    """Codes of the instruments a Questionnaire says it is: our identifier, its LOINC panel
    code, the last part of its url, its id, name or title."""
    claims: set[str] = set()
    by_panel = {i.loinc_panel: i.code for i in list_instruments() if i.loinc_panel}
    for coding in questionnaire.get("code") or []:
        if isinstance(coding, dict) and coding.get("system") == LOINC_SYSTEM:
            if coding.get("code") in by_panel:
                claims.add(by_panel[coding["code"]])
    for identifier in questionnaire.get("identifier") or []:
        if isinstance(identifier, dict) and str(identifier.get("system", "")).endswith(
            "/instrument-code"
        ):
            code = _named(identifier.get("value"))
            if code:
                claims.add(code)
    url = questionnaire.get("url")
    if isinstance(url, str) and url:
        tail = url.rstrip("/").rsplit("/", 1)[-1].split("|")[0]
        code = by_panel.get(tail) or _named(tail)
        if code:
            claims.add(code)
    for key in ("id", "name", "title"):
        code = _named(questionnaire.get(key))
        if code:
            claims.add(code)
    return claims


def find_clinic(value: str) -> Clinic:
    if value.strip().isdigit():
        clinic = Clinic.objects.filter(pk=int(value)).first()
        if clinic is not None:
            return clinic
    matches = list(Clinic.objects.filter(name__iexact=value.strip())[:2])
    if len(matches) > 1:
        raise CommandError(f"Several clinics are named {value!r}; give the clinic's id instead.")
    if not matches:
        raise CommandError(f"No clinic has the id or name {value!r}.")
    return matches[0]


def read_questionnaire(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CommandError(f"File not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise CommandError(f"{path} is not UTF-8 text; expected FHIR JSON.") from None
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from None
    if not isinstance(data, dict) or data.get("resourceType") != "Questionnaire":
        kind = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
        raise CommandError(
            f"{path} is not a FHIR Questionnaire (resourceType {kind!r}); export the form "
            "as a FHIR R4 Questionnaire JSON."
        )
    return data


def choose_instrument(questionnaire: dict[str, Any], requested: str | None) -> Instrument:
    claimed = instruments_claimed(questionnaire)
    if requested:
        try:
            instrument = get_instrument(requested)
        except UnknownInstrumentError as exc:
            raise CommandError(str(exc)) from None
        if claimed and instrument.code not in claimed:
            raise CommandError(
                f"This Questionnaire is for {', '.join(sorted(claimed))}, not "
                f"{instrument.short_name} ({instrument.code})."
            )
        return instrument
    if len(claimed) == 1:
        return get_instrument(claimed.pop())
    if claimed:
        raise CommandError(
            f"The Questionnaire names several instruments ({', '.join(sorted(claimed))}); "
            "pass --instrument CODE."
        )
    raise CommandError(
        "Cannot tell which instrument this Questionnaire is (no known url, LOINC code, name "
        f"or title); pass --instrument CODE, one of: {', '.join(INSTRUMENT_CODES)}."
    )


class Command(BaseCommand):
    help = (
        "Rating-scale definitions: `list` them, `load FILE --clinic X` a licensed FHIR "
        "Questionnaire's item wording for a clinic, `export CODE` a Questionnaire as JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        listing = actions.add_parser("list", help="Every instrument, and a clinic's wording.")
        listing.add_argument("--clinic", help="Clinic id or name: show its loaded wording.")
        load = actions.add_parser(
            "load", help="Store a FHIR Questionnaire's item wording for a clinic."
        )
        load.add_argument("file", help="FHIR R4 Questionnaire JSON file.")
        load.add_argument("--clinic", required=True, help="Clinic id or name.")
        load.add_argument(
            "--instrument", help="Instrument code, when the file does not say (e.g. madrs)."
        )
        export = actions.add_parser("export", help="Print an instrument's Questionnaire JSON.")
        export.add_argument("code", help="Instrument code, e.g. phq9.")
        export.add_argument("--clinic", help="Clinic id or name: include its loaded wording.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            self.show_list(options.get("clinic"))
        elif action == "load":
            self.load_file(Path(options["file"]), options["clinic"], options.get("instrument"))
        else:
            self.export_json(options["code"], options.get("clinic"))

    def show_list(self, clinic_name: str | None) -> None:
        clinic = find_clinic(clinic_name) if clinic_name else None
        loaded = (
            {w.instrument_code: w for w in InstrumentWording.objects.filter(clinic=clinic)}
            if clinic
            else {}
        )
        for instrument in list_instruments():
            shipped = sum(1 for item in instrument.items if item.wording)
            if instrument.code in loaded:
                row = loaded[instrument.code]
                when = timezone.localtime(row.loaded_at).strftime("%Y-%m-%d %H:%M")
                wording = (
                    f"clinic wording for {len(row.wording)} items "
                    f"({row.source_name or 'no source'}, loaded {when})"
                )
            elif shipped == len(instrument.items):
                wording = "full wording shipped"
            elif shipped:
                wording = f"wording shipped for {shipped} of {len(instrument.items)} items"
            else:
                wording = "item topics only"
            panel = f"LOINC {instrument.loinc_panel}" if instrument.loinc_panel else "no LOINC"
            self.stdout.write(
                f"{instrument.code:<18} {instrument.short_name:<17} "
                f"{len(instrument.items):>3} items  {panel:<16} {wording}"
            )

    def load_file(self, path: Path, clinic_name: str, requested: str | None) -> None:
        clinic = find_clinic(clinic_name)
        questionnaire = read_questionnaire(path)
        instrument = choose_instrument(questionnaire, requested)
        try:
            wording = wording_from_questionnaire(instrument.code, questionnaire)
            instrument.with_wording(wording)  # the same checks the pages will rely on
        except ValueError as exc:
            raise CommandError(f"{path.name}: {exc}") from None
        title = questionnaire.get("title") or questionnaire.get("name") or instrument.short_name
        version = questionnaire.get("version")
        source_name = f"{title}{f' {version}' if version else ''} ({path.name})"[:200]
        with transaction.atomic():
            row, created = InstrumentWording.objects.update_or_create(
                clinic=clinic,
                instrument_code=instrument.code,
                defaults={"wording": wording, "source_name": source_name},
            )
            audit.record(
                Actor.system(clinic, label="instruments load"),
                AuditAction.CREATE if created else AuditAction.UPDATE,
                "instrument_wording",
                row.pk,
                detail={"instrument": instrument.code, "items": sorted(wording)},
            )
        kept = [item.id for item in instrument.items if item.id not in wording]
        self.stdout.write(
            self.style.SUCCESS(
                f"{'Loaded' if created else 'Replaced'} {instrument.short_name} wording for "
                f"{clinic.name}: {len(wording)} of {len(instrument.items)} items from "
                f"{path.name}."
            )
        )
        for item in instrument.items:
            if item.id in wording:
                self.stdout.write(f"  {item.id:<5} {wording[item.id]}")
        if kept:
            self.stdout.write(
                f"  Items without wording in the file keep their shipped text: {', '.join(kept)}."
            )

    def export_json(self, code: str, clinic_name: str | None) -> None:
        try:
            instrument = get_instrument(code)
        except UnknownInstrumentError as exc:
            raise CommandError(str(exc)) from None
        overrides = None
        if clinic_name:
            clinic = find_clinic(clinic_name)
            overrides = (
                InstrumentWording.objects.filter(clinic=clinic, instrument_code=instrument.code)
                .values_list("wording", flat=True)
                .first()
            )
        self.stdout.write(
            json.dumps(questionnaire_for(instrument, overrides), indent=2, ensure_ascii=False)
        )
