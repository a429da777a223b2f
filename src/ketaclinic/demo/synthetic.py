"""Synthetic (made-up) people for the demo clinic and the benchmarks. No real data."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

GIVEN_FEMALE = [
    "Olivia",
    "Emma",
    "Ava",
    "Sophia",
    "Isabella",
    "Mia",
    "Amelia",
    "Harper",
    "Evelyn",
    "Abigail",
    "Emily",
    "Ella",
    "Grace",
    "Chloe",
    "Camila",
    "Aaliyah",
    "Priya",
    "Mei",
    "Fatima",
    "Sofia",
    "Zoe",
    "Nora",
    "Lucia",
    "Hana",
    "Ines",
]
GIVEN_MALE = [
    "Liam",
    "Noah",
    "Oliver",
    "Elijah",
    "James",
    "William",
    "Benjamin",
    "Lucas",
    "Henry",
    "Theodore",
    "Jack",
    "Levi",
    "Alexander",
    "Mateo",
    "Daniel",
    "Michael",
    "Omar",
    "Kenji",
    "Ravi",
    "Diego",
    "Samuel",
    "Isaac",
    "Caleb",
    "Jonah",
    "Andre",
]
FAMILY = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "O'Brien",
    "Müller",
    "Kowalski",
    "Okafor",
    "Chen",
    "Patel",
    "Kim",
    "Silva",
]
STREETS = ["Maple", "Oak", "Cedar", "Elm", "Pine", "Walnut", "Lake", "Hill", "Park", "River"]
CITIES = [
    ("Springfield", "IL", "627"),
    ("Madison", "WI", "537"),
    ("Columbus", "OH", "432"),
    ("Richmond", "VA", "232"),
    ("Boulder", "CO", "803"),
    ("Portland", "OR", "972"),
]
DIAGNOSES = [
    "F33.2",
    "F33.1",
    "F32.2",
    "F32.A",
    "F41.1",
    "F43.10",
    "F42.2",
    "F31.81",
    "G90.511",
    "M79.7",
]
STATUS_WEIGHTS = [
    ("active", 50),
    ("screening", 15),
    ("referred", 10),
    ("paused", 10),
    ("discharged", 15),
]


@dataclass
class Person:
    given_name: str
    family_name: str
    sex_at_birth: str
    date_of_birth: date
    phone: str
    email: str
    address_line1: str
    city: str
    state: str
    postal_code: str
    emergency_contact_name: str
    emergency_contact_phone: str
    emergency_contact_relationship: str
    diagnosis_codes: list[str]
    status: str
    height_cm: float
    weight_kg: float


def person(rng: random.Random, today: date) -> Person:
    sex = rng.choice(["female", "male"])
    given = rng.choice(GIVEN_FEMALE if sex == "female" else GIVEN_MALE)
    family = rng.choice(FAMILY)
    age_days = rng.randint(19 * 365, 78 * 365)
    city, state, zip3 = rng.choice(CITIES)
    height = rng.gauss(163 if sex == "female" else 177, 7)
    bmi = max(17.0, min(45.0, rng.gauss(27.5, 5)))
    weight = bmi * (height / 100) ** 2
    contact_given = rng.choice(GIVEN_FEMALE + GIVEN_MALE)
    dx = [rng.choice(DIAGNOSES[:4])] + rng.sample(DIAGNOSES[4:], k=rng.choice([0, 0, 1]))
    status = rng.choices([s for s, _ in STATUS_WEIGHTS], [w for _, w in STATUS_WEIGHTS])[0]
    return Person(
        given_name=given,
        family_name=family,
        sex_at_birth=sex,
        date_of_birth=today - timedelta(days=age_days),
        phone=f"555-{rng.randint(100, 999):03d}-{rng.randint(0, 9999):04d}",
        email=f"{given.lower()}.{''.join(c for c in family.lower() if c.isalpha())}"
        f"{rng.randint(1, 99)}@example.org",
        address_line1=f"{rng.randint(10, 9999)} {rng.choice(STREETS)} St",
        city=city,
        state=state,
        postal_code=f"{zip3}{rng.randint(0, 99):02d}",
        emergency_contact_name=f"{contact_given} {family}",
        emergency_contact_phone=f"555-{rng.randint(100, 999):03d}-{rng.randint(0, 9999):04d}",
        emergency_contact_relationship=rng.choice(
            ["spouse", "partner", "parent", "sibling", "friend"]
        ),
        diagnosis_codes=dx,
        status=status,
        height_cm=round(height, 1),
        weight_kg=round(weight, 1),
    )
