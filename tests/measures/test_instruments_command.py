"""`ketaclinic instruments list | load FILE --clinic X | export CODE`."""

from __future__ import annotations

import copy
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from fhir.resources.R4B.questionnaire import Questionnaire

from ketaclinic.audit.models import AuditEntry
from ketaclinic.clinical.fhir_questionnaire import questionnaire_for
from ketaclinic.measures.models import InstrumentWording
from tests.conftest import register, signed_in

MADRS_TEXTS = {f"q{n}": f"Licensed MADRS wording number {n}" for n in range(1, 11)}


def run(*args: str) -> str:
    out = StringIO()
    call_command("instruments", *args, stdout=out)
    return out.getvalue()


def write(tmp_path: Path, data: Any, name: str = "form.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def madrs_form(texts: dict[str, str] | None = None) -> dict[str, Any]:
    """A clinic-licensed MADRS as another system would export it (our url and identifier)."""
    form = questionnaire_for("madrs", texts or MADRS_TEXTS)
    form["title"] = "MADRS (licensed)"
    form["version"] = "2024"
    return form


def bare_form(texts: dict[str, str]) -> dict[str, Any]:
    """A Questionnaire that does not say which instrument it is."""
    return {
        "resourceType": "Questionnaire",
        "status": "active",
        "title": "Depression interview (licensed copy)",
        "item": [
            {"linkId": link_id, "text": text, "type": "choice"} for link_id, text in texts.items()
        ],
    }


def wording(clinic) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {w.instrument_code: w.wording for w in InstrumentWording.objects.filter(clinic=clinic)}


# --- load ----------------------------------------------------------------------------------------


def test_load_stores_the_wording_and_the_record_page_shows_it(world, tmp_path):  # type: ignore[no-untyped-def]
    path = write(tmp_path, madrs_form(), "madrs-licensed.json")
    out = run("load", str(path), "--clinic", "Clinic A")
    assert "Loaded MADRS wording for Clinic A: 10 of 10 items from madrs-licensed.json" in out
    assert "Licensed MADRS wording number 10" in out
    row = InstrumentWording.objects.get(clinic=world.clinic_a, instrument_code="madrs")
    assert row.wording == MADRS_TEXTS
    assert row.source_name == "MADRS (licensed) 2024 (madrs-licensed.json)"
    entry = AuditEntry.objects.filter(clinic=world.clinic_a).latest("sequence")
    assert (entry.action, entry.object_type, entry.patient_id) == (
        "create",
        "instrument_wording",
        None,
    )

    patient = register(world.clinic_a, world.nurse)
    page_url = reverse("measures:record", kwargs={"patient_id": patient.pk}) + "?code=madrs"
    page = signed_in(world.nurse).get(page_url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Licensed MADRS wording number 1" in html
    assert "Apparent sadness (observed)" not in html

    # Another clinic still sees the topics.
    patient_b = register(world.clinic_b, world.prescriber_b)
    other_url = reverse("measures:record", kwargs={"patient_id": patient_b.pk}) + "?code=madrs"
    other = signed_in(world.prescriber_b).get(other_url).content.decode()
    assert "Apparent sadness (observed)" in other
    assert "Licensed MADRS" not in other


def test_load_by_clinic_id_replaces_the_earlier_wording(world, tmp_path):  # type: ignore[no-untyped-def]
    run("load", str(write(tmp_path, madrs_form())), "--clinic", str(world.clinic_a.pk))
    partial = madrs_form({"q1": "Second version of item one", "q2": "Second version of two"})
    partial["item"] = partial["item"][:2]
    out = run("load", str(write(tmp_path, partial, "v2.json")), "--clinic", str(world.clinic_a.pk))
    assert "Replaced MADRS wording" in out and "2 of 10 items" in out
    assert "keep their shipped text: q3, q4" in out
    assert wording(world.clinic_a) == {
        "madrs": {"q1": "Second version of item one", "q2": "Second version of two"}
    }
    assert InstrumentWording.objects.filter(clinic=world.clinic_a).count() == 1


def test_a_loinc_form_is_recognised_by_its_panel_code(world, tmp_path):  # type: ignore[no-untyped-def]
    """LHC-Forms style: LOINC panel code, linkIds that are LOINC codes, items in a group."""
    form = {
        "resourceType": "Questionnaire",
        "status": "active",
        "url": "http://loinc.org/q/44249-1",
        "code": [{"system": "http://loinc.org", "code": "44249-1"}],
        "item": [
            {
                "linkId": "/44249-1",
                "type": "group",
                "text": "PHQ-9",
                "item": [
                    {
                        "linkId": "/44250-9",
                        "type": "choice",
                        "text": "Little interest or pleasure in doing things (clinic copy)",
                        "code": [{"system": "http://loinc.org", "code": "44250-9"}],
                    },
                    {
                        "linkId": "/44261-6",
                        "type": "decimal",
                        "text": "Total score",
                        "readOnly": True,
                        "code": [{"system": "http://loinc.org", "code": "44261-6"}],
                    },
                ],
            }
        ],
    }
    out = run("load", str(write(tmp_path, form)), "--clinic", "clinic a")
    assert "Loaded PHQ-9 wording" in out
    assert wording(world.clinic_a) == {
        "phq9": {"q1": "Little interest or pleasure in doing things (clinic copy)"}
    }


def test_an_anonymous_form_needs_instrument(world, tmp_path):  # type: ignore[no-untyped-def]
    path = write(tmp_path, bare_form(MADRS_TEXTS))
    with pytest.raises(CommandError, match="Cannot tell which instrument.*--instrument"):
        run("load", str(path), "--clinic", "Clinic A")
    run("load", str(path), "--clinic", "Clinic A", "--instrument", "madrs")
    assert wording(world.clinic_a) == {"madrs": MADRS_TEXTS}


# --- errors: a clear message, nothing stored ------------------------------------------------------


def _bad_json(tmp_path: Path) -> list[str]:
    return [str(write(tmp_path, '{"resourceType": "Questionnaire", ')), "--clinic", "Clinic A"]


def _missing(tmp_path: Path) -> list[str]:
    return [str(tmp_path / "nope.json"), "--clinic", "Clinic A"]


def _not_questionnaire(tmp_path: Path) -> list[str]:
    return [str(write(tmp_path, {"resourceType": "Patient"})), "--clinic", "Clinic A"]


def _wrong_instrument(tmp_path: Path) -> list[str]:
    return [str(write(tmp_path, madrs_form())), "--clinic", "Clinic A", "--instrument", "phq9"]


def _unknown_instrument(tmp_path: Path) -> list[str]:
    return [str(write(tmp_path, madrs_form())), "--clinic", "Clinic A", "--instrument", "ybocs"]


def _unknown_link_ids(tmp_path: Path) -> list[str]:
    form = madrs_form()
    form["item"].append({"linkId": "q99", "type": "choice", "text": "Extra"})
    form["item"].append({"linkId": "sleep", "type": "choice", "text": "Extra 2"})
    return [str(write(tmp_path, form)), "--clinic", "Clinic A"]


def _empty_text(tmp_path: Path) -> list[str]:
    form = madrs_form()
    form["item"][3]["text"] = "  "
    return [str(write(tmp_path, form)), "--clinic", "Clinic A"]


def _unknown_clinic(tmp_path: Path) -> list[str]:
    return [str(write(tmp_path, madrs_form())), "--clinic", "Clinic Z"]


def _unknown_clinic_id(tmp_path: Path) -> list[str]:
    return [str(write(tmp_path, madrs_form())), "--clinic", "987654"]


ERRORS = [
    (_missing, "File not found"),
    (_bad_json, "is not valid JSON"),
    (_not_questionnaire, "is not a FHIR Questionnaire"),
    (_wrong_instrument, "This Questionnaire is for madrs, not PHQ-9"),
    (_unknown_instrument, "Unknown instrument 'ybocs'"),
    (_unknown_link_ids, "linkIds 'q99', 'sleep' match no MADRS item"),
    (_empty_text, "'q4' have no text"),
    (_unknown_clinic, "No clinic has the id or name 'Clinic Z'"),
    (_unknown_clinic_id, "No clinic has the id or name '987654'"),
]


@pytest.mark.parametrize(("make", "message"), ERRORS, ids=[e[0].__name__[1:] for e in ERRORS])
def test_errors_are_clear_and_store_nothing(make, message, world, tmp_path):  # type: ignore[no-untyped-def]
    earlier = {"q1": "Wording loaded before"}
    InstrumentWording.objects.create(
        clinic=world.clinic_a, instrument_code="madrs", wording=earlier
    )
    entries = AuditEntry.objects.count()
    with pytest.raises(CommandError) as raised:
        run("load", *make(tmp_path))
    assert message in str(raised.value)
    assert wording(world.clinic_a) == {"madrs": earlier}
    assert InstrumentWording.objects.count() == 1
    assert AuditEntry.objects.count() == entries


def test_several_clinics_with_one_name_need_the_id(world, tmp_path):  # type: ignore[no-untyped-def]
    from ketaclinic.accounts.services import create_clinic

    create_clinic(name="Clinic A", time_zone="America/Denver")
    with pytest.raises(CommandError, match="Several clinics are named 'Clinic A'"):
        run("load", str(write(tmp_path, madrs_form())), "--clinic", "Clinic A")
    assert InstrumentWording.objects.count() == 0


def test_the_load_is_one_transaction(world, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """If the audit entry cannot be written, the wording is not stored either."""
    from ketaclinic.audit import services

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(services, "record", fail)
    with pytest.raises(RuntimeError):
        run("load", str(write(tmp_path, madrs_form())), "--clinic", "Clinic A")
    assert InstrumentWording.objects.count() == 0


# --- list and export -----------------------------------------------------------------------------


def test_list_shows_every_instrument_and_the_clinics_wording(world, tmp_path):  # type: ignore[no-untyped-def]
    run("load", str(write(tmp_path, madrs_form(), "m.json")), "--clinic", "Clinic A")
    plain = run("list").splitlines()
    assert len(plain) == 15
    assert plain[0].split()[:2] == ["phq9", "PHQ-9"]
    assert "LOINC 44249-1" in plain[0]
    madrs_line = next(
        line
        for line in run("list", "--clinic", "Clinic A").splitlines()
        if line.startswith("madrs ")
    )
    assert "clinic wording for 10 items (MADRS (licensed) 2024 (m.json)" in madrs_line
    assert "item topics only" in next(line for line in plain if line.startswith("madrs "))


def test_export_prints_a_valid_questionnaire(world, tmp_path):  # type: ignore[no-untyped-def]
    exported = json.loads(run("export", "PHQ-9"))
    Questionnaire.model_validate(exported)
    assert exported == questionnaire_for("phq9")
    run("load", str(write(tmp_path, madrs_form())), "--clinic", "Clinic A")
    with_wording = json.loads(run("export", "madrs", "--clinic", "Clinic A"))
    Questionnaire.model_validate(with_wording)
    assert with_wording["item"][0]["text"] == "Licensed MADRS wording number 1"
    # An exported, then edited, file loads straight back.
    edited = copy.deepcopy(with_wording)
    edited["item"][0]["text"] = "Edited after export"
    run("load", str(write(tmp_path, edited, "edited.json")), "--clinic", "Clinic A")
    assert wording(world.clinic_a)["madrs"]["q1"] == "Edited after export"


def test_export_of_an_unknown_instrument_is_an_error(db):  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="Unknown instrument 'ybocs'"):
        run("export", "ybocs")
