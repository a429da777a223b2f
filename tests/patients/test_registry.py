"""The patient registry: what it refuses, the MRNs it hands out, the history it keeps and how
staff find a patient again."""

from __future__ import annotations

import html
import re
import threading
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.urls import reverse

from ketaclinic.accounts.models import Clinic
from ketaclinic.audit.context import Actor
from ketaclinic.patients import services as patient_services
from ketaclinic.patients.models import BodyMeasurement, Patient
from ketaclinic.patients.search import prefix_upper_bound
from tests.conftest import register, signed_in

NEW_PATIENT = {
    "given_name": "Nell",
    "family_name": "Newcome",
    "date_of_birth": "1979-10-02",
    "sex_at_birth": "female",
    "status": "referred",
}


def field_errors(response, field: str) -> str:  # type: ignore[no-untyped-def]
    """The error list shown at `field` on the page (empty if none)."""
    body = response.content.decode()
    match = re.search(rf'<ul class="errorlist" id="id_{field}-errors">(.*?)</ul>', body, re.S)
    return html.unescape(match.group(1)) if match else ""


def create(client, **changes: str):  # type: ignore[no-untyped-def]
    return client.post(reverse("patients:create"), {**NEW_PATIENT, **changes})


# --- bad input: a message at the field, nothing stored --------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("date_of_birth", "2023-02-30", "Enter a real date as YYYY-MM-DD"),
        ("date_of_birth", "1984-13-01", "Enter a real date as YYYY-MM-DD"),
        ("date_of_birth", "yesterday", "Enter a real date as YYYY-MM-DD"),
        (
            "date_of_birth",
            (date.today() + timedelta(days=2)).isoformat(),
            "cannot be in the future",
        ),
        ("date_of_birth", "1899-12-31", "1900 or later"),
        ("diagnosis_codes_text", "F33.2, F3", "'F3' is not an ICD-10-CM code"),
        ("diagnosis_codes_text", "33.2", "is not an ICD-10-CM code"),
        ("diagnosis_codes_text", "F33.23456", "is not an ICD-10-CM code"),
        ("mrn", "ABC 123", "only letters, digits and dashes"),
        ("given_name", "", "This field is required"),
        ("email", "not-an-email", "Enter a valid email address"),
    ],
)
def test_it_refuses_bad_registration_input_at_the_field(world, field, value, message):  # type: ignore[no-untyped-def]
    response = create(signed_in(world.nurse), **{field: value})
    assert response.status_code == 200
    assert message in field_errors(response, field)
    assert "Nothing was saved." in response.content.decode()
    assert not Patient.objects.exists()


def test_the_form_keeps_what_was_typed_when_it_refuses_it(world):  # type: ignore[no-untyped-def]
    response = create(signed_in(world.nurse), date_of_birth="2023-02-30")
    assert 'value="2023-02-30"' in response.content.decode()


def test_it_refuses_a_hand_entered_mrn_already_in_use(world):  # type: ignore[no-untyped-def]
    client = signed_in(world.nurse)
    assert create(client, mrn="EXT-1001").status_code == 302
    response = create(client, mrn="EXT-1001", given_name="Other")
    assert response.status_code == 200
    assert "MRN EXT-1001 is already in use in this clinic." in field_errors(response, "mrn")
    assert list(Patient.objects.values_list("given_name", flat=True)) == ["Nell"]


def test_another_clinic_may_use_the_same_hand_entered_mrn(world):  # type: ignore[no-untyped-def]
    assert create(signed_in(world.nurse), mrn="EXT-1001").status_code == 302
    assert create(signed_in(world.prescriber_b), mrn="EXT-1001").status_code == 302
    assert Patient.objects.filter(mrn="EXT-1001").count() == 2


def test_it_normalises_and_stores_valid_diagnosis_codes(world):  # type: ignore[no-untyped-def]
    assert (
        create(signed_in(world.nurse), diagnosis_codes_text="f332; F41.1, f33.2").status_code == 302
    )
    assert Patient.objects.get().diagnosis_codes == ["F33.2", "F41.1"]


@pytest.mark.parametrize(
    ("weight", "message"),
    [
        ("0", "more than 0 kg and at most 400 kg"),
        ("-4.0", "more than 0 kg and at most 400 kg"),
        ("400.1", "more than 0 kg and at most 400 kg"),
        ("1200", "more than 0 kg and at most 400 kg"),
        ("72.45", "Weight takes one decimal place"),
        ("seventy", "Enter a number"),
        ("", "This field is required"),
    ],
)
def test_it_refuses_an_impossible_weight_at_the_field(world, weight, message):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    response = signed_in(world.nurse).post(
        reverse("patients:measurement_add", args=[patient.pk]), {"weight_kg": weight}
    )
    assert response.status_code == 400
    assert message in field_errors(response, "weight_kg")
    assert not BodyMeasurement.objects.exists()


@pytest.mark.parametrize("weight", ["0.1", "72.4", "400", "400.0"])
def test_it_records_weights_up_to_400_kg_with_one_decimal(world, weight):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    response = signed_in(world.nurse).post(
        reverse("patients:measurement_add", args=[patient.pk]), {"weight_kg": weight}
    )
    assert response.status_code == 302
    assert BodyMeasurement.objects.get().weight_kg == Decimal(weight)


# --- MRNs ----------------------------------------------------------------------------------------


def luhn_valid(number: str) -> bool:
    """Standard Luhn check over the whole number, check digit included."""
    total = 0
    for position, char in enumerate(reversed(number)):
        d = int(char)
        if position % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def test_luhn_check_helper_is_itself_right():
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")


def test_mrns_are_unique_per_clinic_with_a_luhn_check_digit(world):  # type: ignore[no-untyped-def]
    a = [register(world.clinic_a, world.nurse, given_name=f"A{n}").mrn for n in range(25)]
    b = [register(world.clinic_b, world.prescriber_b, given_name=f"B{n}").mrn for n in range(3)]
    assert a[0] == "00000018"  # the documented first MRN
    assert len(set(a)) == len(a) and len(set(b)) == len(b)
    for mrn in a + b:
        assert re.fullmatch(r"\d{8}", mrn) and luhn_valid(mrn), mrn
    # Any single mistyped digit gives an invalid MRN.
    for mrn in a[:5]:
        for i in range(8):
            typo = mrn[:i] + str((int(mrn[i]) + 3) % 10) + mrn[i + 1 :]
            assert not luhn_valid(typo)


def test_generated_mrns_skip_ones_entered_by_hand(world):  # type: ignore[no-untyped-def]
    actor = Actor.system(world.clinic_a, user=world.nurse, label="test")
    data = {
        "given_name": "H",
        "family_name": "Hand",
        "date_of_birth": date(1970, 1, 1),
        "sex_at_birth": "male",
    }
    patient_services.register_patient(actor, data, mrn="00000026")  # what sequence 2 would be
    generated = [register(world.clinic_a, world.nurse).mrn for _ in range(3)]
    assert generated == ["00000018", "00000034", "00000042"]


def test_registrations_through_stale_clinic_objects_do_not_collide(world):  # type: ignore[no-untyped-def]
    # Two requests that loaded the clinic before either registered: the counter is read under
    # a row lock, not from the object the request holds.
    first = Actor.system(Clinic.objects.get(pk=world.clinic_a.pk), user=world.nurse)
    second = Actor.system(Clinic.objects.get(pk=world.clinic_a.pk), user=world.prescriber)
    data = {
        "given_name": "S",
        "family_name": "Stale",
        "date_of_birth": date(1970, 1, 1),
        "sex_at_birth": "male",
    }
    mrns = [
        patient_services.register_patient(actor, data).mrn
        for actor in (first, second, first, second, second, first)
    ]
    assert len(set(mrns)) == 6


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite's in-memory test database takes one writer at a time; PostgreSQL runs this",
)
@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_get_distinct_mrns(world):  # type: ignore[no-untyped-def]
    workers, each = 6, 4
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            clinic = Clinic.objects.get(pk=world.clinic_a.pk)
            actor = Actor.system(clinic, user=world.nurse)
            barrier.wait(timeout=10)
            for i in range(each):
                patient_services.register_patient(
                    actor,
                    {
                        "given_name": f"T{n}x{i}",
                        "family_name": "Thread",
                        "date_of_birth": date(1970, 1, 1),
                        "sex_at_birth": "male",
                    },
                )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    mrns = list(Patient.objects.filter(clinic=world.clinic_a).values_list("mrn", flat=True))
    assert len(mrns) == workers * each == len(set(mrns))
    assert all(luhn_valid(m) for m in mrns)


# --- edit history --------------------------------------------------------------------------------


def edit_data(patient: Patient, **changes: str) -> dict[str, str]:
    fields = [
        "given_name",
        "family_name",
        "preferred_name",
        "sex_at_birth",
        "gender_identity",
        "phone",
        "email",
        "address_line1",
        "address_line2",
        "city",
        "state",
        "postal_code",
        "emergency_contact_name",
        "emergency_contact_phone",
        "emergency_contact_relationship",
        "referring_clinician",
        "referring_clinician_contact",
        "status",
    ]
    data = {name: str(getattr(patient, name) or "") for name in fields}
    data["date_of_birth"] = patient.date_of_birth.isoformat()
    data["diagnosis_codes_text"] = ", ".join(patient.diagnosis_codes)
    return {**data, **changes}


def test_edits_keep_who_what_and_when_on_the_history_page(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse, phone="555-000-1111", family_name="Smith")
    url = reverse("patients:edit", args=[patient.pk])
    assert (
        signed_in(world.nurse).post(url, edit_data(patient, phone="555-222-3333")).status_code
        == 302
    )
    patient.refresh_from_db()
    assert (
        signed_in(world.prescriber)
        .post(url, edit_data(patient, family_name="Smythe", diagnosis_codes_text="F33.2"))
        .status_code
        == 302
    )
    patient.refresh_from_db()
    assert patient.family_name == "Smythe" and patient.phone == "555-222-3333"

    response = signed_in(world.staff_a["front_desk"]).get(
        reverse("patients:history", args=[patient.pk])
    )
    assert response.status_code == 200
    items = re.findall(r"<li><b>(.*?)</li>\s*(?=<li><b>|</ol>)", response.content.decode(), re.S)
    assert len(items) == 3, items
    newest, middle, oldest = items
    assert newest.startswith("Changed") and world.prescriber.display_name in newest
    assert "Family name: <s>Smith</s> → Smythe" in newest
    assert "Diagnosis codes (ICD-10-CM)" in newest and "Phone" not in newest
    assert middle.startswith("Changed") and world.nurse.display_name in middle
    assert "Phone: <s>555-000-1111</s> → 555-222-3333" in middle
    assert oldest.startswith("Registered") and world.nurse.display_name in oldest
    today = patient.updated_at.astimezone(ZoneInfo(world.clinic_a.time_zone)).strftime("%Y-%m-%d")
    assert all(today in item for item in items)


def test_an_edit_that_changes_nothing_adds_no_history(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    before = patient.history_records.count()
    response = signed_in(world.nurse).post(
        reverse("patients:edit", args=[patient.pk]), edit_data(patient)
    )
    assert response.status_code == 302
    assert patient.history_records.count() == before


# --- search --------------------------------------------------------------------------------------


@pytest.fixture
def people(world):  # type: ignore[no-untyped-def]
    a = world.clinic_a
    made = {
        "ann": register(a, world.nurse, given_name="Ann", family_name="Smith"),
        "jose": register(
            a, world.nurse, given_name="José", family_name="García", date_of_birth=date(1984, 3, 7)
        ),
        "siobhan": register(a, world.nurse, given_name="Siobhán", family_name="O'Brien"),
        "anna": register(a, world.nurse, given_name="Anna", family_name="Jones"),
        "smithers": register(a, world.nurse, given_name="Walter", family_name="Smithers"),
    }
    actor = Actor.system(a, user=world.nurse)
    made["hand"] = patient_services.register_patient(
        actor,
        {
            "given_name": "Hana",
            "family_name": "Handley",
            "date_of_birth": date(1960, 2, 2),
            "sex_at_birth": "female",
        },
        mrn="EXT-4471",
    )
    # The same people in clinic B: never found from clinic A.
    for given, family, dob in [
        ("Ann", "Smith", date(1980, 5, 17)),
        ("José", "García", date(1984, 3, 7)),
    ]:
        register(
            world.clinic_b,
            world.prescriber_b,
            given_name=given,
            family_name=family,
            date_of_birth=dob,
        )
    return made


def found(client, q: str, page: int | None = None) -> list[Patient]:  # type: ignore[no-untyped-def]
    data = {"q": q} if page is None else {"q": q, "page": str(page)}
    response = client.post(reverse("patients:search"), data)
    assert response.status_code == 200
    return list(response.context["page"].object_list)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("smi ann", {"ann"}),
        ("ann smi", {"ann"}),
        ("Smith, Ann", {"ann"}),
        ("SMITH", {"ann", "smithers"}),
        ("ann", {"ann", "anna"}),
        ("jose", {"jose"}),
        ("josé garcía", {"jose"}),
        ("garcia j", {"jose"}),
        ("obrien", {"siobhan"}),
        ("o'brien", {"siobhan"}),
        ("O’Brien siob", {"siobhan"}),
        ("siobhan", {"siobhan"}),
        ("1984-03-07", {"jose"}),
        ("03/07/1984", {"jose"}),
        ("nobody", set()),
    ],
)
def test_search_finds_by_name_prefix_and_birth_date(world, people, query, expected):  # type: ignore[no-untyped-def]
    results = found(signed_in(world.nurse), query)
    assert {p.pk for p in results} == {people[k].pk for k in expected}
    assert all(p.clinic_id == world.clinic_a.pk for p in results)


def test_search_finds_full_names_that_end_in_z(world):  # type: ignore[no-untyped-def]
    lopez = register(world.clinic_a, world.nurse, given_name="Inez", family_name="López")
    register(world.clinic_a, world.nurse, given_name="Ana", family_name="Lopes")
    client = signed_in(world.nurse)
    assert [p.pk for p in found(client, "lopez")] == [lopez.pk]
    assert [p.pk for p in found(client, "inez lopez")] == [lopez.pk]


SEARCH_KEYS = [
    "lopez",
    "lopeza",
    "lopezz",
    "lopf",
    "lopes",
    "lope",
    "ab9",
    "ab90",
    "aba",
    "ab",
    "z",
    "zz",
    "zza",
    "smith",
    "smithers",
    "smiz",
    "smj",
    "0",
    "09",
    "1",
]
SEARCH_TOKENS = ["lopez", "ab9", "smi", "z", "zz", "0", "09", "smiz", "a"]


def test_the_search_range_holds_exactly_the_keys_with_the_prefix():
    for token in SEARCH_TOKENS:
        bound = prefix_upper_bound(token)
        # Only key characters: the range then sorts the same under the C collation and under
        # linguistic ones (ICU and glibc give '{' or ':' no weight, so "lope{" < "lopez").
        assert bound is None or re.fullmatch(r"[a-z0-9]+", bound), (token, bound)
        for key in SEARCH_KEYS:
            in_range = key >= token and (bound is None or key < bound)
            assert in_range == key.startswith(token), (token, bound, key)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="collations are PostgreSQL's")
def test_the_search_range_holds_under_a_linguistic_collation(db):  # type: ignore[no-untyped-def]
    with connection.cursor() as cursor:
        cursor.execute("SELECT collname FROM pg_collation WHERE collname = 'und-x-icu'")
        if cursor.fetchone() is None:
            pytest.skip("this PostgreSQL has no ICU collations")
        for token in SEARCH_TOKENS:
            bound = prefix_upper_bound(token)
            for key in SEARCH_KEYS:
                cursor.execute(
                    'SELECT %s COLLATE "und-x-icu" >= %s AND '
                    '(%s::text IS NULL OR %s COLLATE "und-x-icu" < %s)',
                    [key, token, bound, key, bound],
                )
                assert cursor.fetchone()[0] == key.startswith(token), (token, bound, key)


def test_search_finds_by_mrn(world, people):  # type: ignore[no-untyped-def]
    client = signed_in(world.nurse)
    jose = people["jose"]
    assert [p.pk for p in found(client, jose.mrn)] == [jose.pk]
    assert [p.pk for p in found(client, f"{jose.mrn[:4]}-{jose.mrn[4:]}")] == [jose.pk]
    # A hand-entered MRN from another system, as typed or in lower case.
    assert [p.pk for p in found(client, "EXT-4471")] == [people["hand"].pk]
    assert [p.pk for p in found(client, "ext-4471")] == [people["hand"].pk]


def test_search_never_returns_another_clinic_s_patients(world, people):  # type: ignore[no-untyped-def]
    client = signed_in(world.prescriber_b)
    for q in ["ann smith", "jose", "1984-03-07", people["ann"].mrn, "EXT-4471", "obrien"]:
        assert all(p.clinic_id == world.clinic_b.pk for p in found(client, q)), q
    assert found(client, "obrien") == [] and found(client, "EXT-4471") == []


def test_search_lists_each_match_once_in_name_order(world):  # type: ignore[no-untyped-def]
    """Matches come from family names and from given names (a UNION): each patient once,
    in the list's order (family, given), whichever name matched."""
    by_given = register(world.clinic_a, world.nurse, given_name="Smitha", family_name="Adams")
    by_family = register(world.clinic_a, world.nurse, given_name="Zoe", family_name="Smitten")
    by_both = register(world.clinic_a, world.nurse, given_name="Smitty", family_name="Smitten")
    register(world.clinic_a, world.nurse, given_name="Ann", family_name="Jones")
    client = signed_in(world.nurse)
    assert [p.pk for p in found(client, "smit")] == [by_given.pk, by_both.pk, by_family.pk]
    assert [p.pk for p in found(client, "smitt smitt")] == [by_both.pk, by_family.pk]
    assert [p.pk for p in found(client, "z smitten")] == [by_family.pk]


def test_search_results_paginate(world):  # type: ignore[no-untyped-def]
    for n in range(30):
        register(world.clinic_a, world.nurse, given_name=f"Pat{n:02d}", family_name="Pagely")
    client = signed_in(world.nurse)
    first, second = found(client, "pagely"), found(client, "pagely", page=2)
    assert len(first) == 25 and len(second) == 5
    assert {p.pk for p in first}.isdisjoint(p.pk for p in second)
    assert [p.given_name for p in first + second] == [f"Pat{n:02d}" for n in range(30)]
    assert found(client, "pagely", page=99) == second  # past the end: the last page


def test_the_patient_list_paginates(world):  # type: ignore[no-untyped-def]
    for n in range(27):
        register(world.clinic_a, world.nurse, given_name=f"Pat{n:02d}", family_name="Listed")
    client = signed_in(world.staff_a["front_desk"])
    first = client.get(reverse("patients:list"))
    second = client.get(reverse("patients:list"), {"page": 2})
    assert len(first.context["page"].object_list) == 25
    assert len(second.context["page"].object_list) == 2
    assert "Page 1 of 2" in first.content.decode()
