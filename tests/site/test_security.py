"""Production security settings and the behaviour they promise: hashing, cookies, headers,
CSRF, no PHI in URLs or logs."""

from __future__ import annotations

import importlib.util
import logging
import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter
from django_otp.plugins.otp_totp.models import TOTPDevice

import ketaclinic.site.settings as production
from ketaclinic.patients.models import Patient
from ketaclinic.site.env import ConfigError
from tests.conftest import PASSWORD, measure, register, signed_in

# --- settings as production reads them ------------------------------------------------------


def load_settings(monkeypatch, tmp_path: Path, **env: str | None):  # type: ignore[no-untyped-def]
    """Execute ketaclinic/site/settings.py afresh with the given environment."""
    monkeypatch.setenv("KETACLINIC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KETACLINIC_SECRET_KEY", "test-" * 10)
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("fresh_ketaclinic_settings", production.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_it_hashes_new_passwords_with_argon2_in_production():
    assert production.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    # argon2-cffi is installed, so the first hasher works rather than failing at sign-in.
    encoded = Argon2PasswordHasher().encode("a password", "somesaltsomesalt")
    assert encoded.startswith("argon2$") and Argon2PasswordHasher().verify("a password", encoded)


def test_it_keeps_session_and_csrf_cookies_away_from_scripts_and_other_sites():
    for module in (production, settings):
        assert module.SESSION_COOKIE_HTTPONLY is True
        assert module.CSRF_COOKIE_HTTPONLY is True
        assert module.SESSION_COOKIE_SAMESITE in ("Strict", "Lax")
        assert module.CSRF_COOKIE_SAMESITE in ("Strict", "Lax")


@pytest.mark.parametrize(
    ("value", "secure"),
    [(None, True), ("", True), ("true", True), ("1", True), ("false", False), ("0", False)],
)
def test_it_marks_cookies_secure_unless_told_not_to(monkeypatch, tmp_path, value, secure):  # type: ignore[no-untyped-def]
    loaded = load_settings(monkeypatch, tmp_path, KETACLINIC_COOKIE_SECURE=value)
    assert loaded.SESSION_COOKIE_SECURE is secure
    assert loaded.CSRF_COOKIE_SECURE is secure
    assert loaded.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


def test_a_typo_in_the_cookie_setting_stops_start_up(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="KETACLINIC_COOKIE_SECURE"):
        load_settings(monkeypatch, tmp_path, KETACLINIC_COOKIE_SECURE="maybe")


def test_the_cookies_it_sets_are_httponly_and_samesite(world):  # type: ignore[no-untyped-def]
    client = Client()
    page = client.get(reverse("accounts:login"))
    csrf = page.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["httponly"] and csrf["samesite"] == settings.CSRF_COOKIE_SAMESITE
    response = client.post(reverse("accounts:login"), {"username": "nurse_a", "password": PASSWORD})
    assert response.status_code == 302
    session = response.cookies[settings.SESSION_COOKIE_NAME]
    assert session["httponly"] and session["samesite"] == settings.SESSION_COOKIE_SAMESITE
    # Tests run over plain HTTP (tests/settings.py); production marks both Secure.
    assert bool(session["secure"]) is settings.SESSION_COOKIE_SECURE


# --- headers -----------------------------------------------------------------------------------


def assert_protective_headers(response) -> None:  # type: ignore[no-untyped-def]
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_pages_carry_a_content_security_policy_and_refuse_framing(world):  # type: ignore[no-untyped-def]
    assert_protective_headers(Client().get(reverse("accounts:login")))
    patient = register(world.clinic_a, world.nurse)
    chart = signed_in(world.nurse).get(reverse("patients:chart", args=[patient.pk]))
    assert chart.status_code == 200
    assert_protective_headers(chart)


# --- CSRF --------------------------------------------------------------------------------------


def signed_in_strict(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    return client


NEW_PATIENT = {
    "given_name": "Cora",
    "family_name": "Forgery",
    "date_of_birth": "1975-04-01",
    "sex_at_birth": "female",
    "status": "referred",
}


def test_a_post_without_a_csrf_token_is_refused(world):  # type: ignore[no-untyped-def]
    login = Client(enforce_csrf_checks=True).post(
        reverse("accounts:login"), {"username": "nurse_a", "password": PASSWORD}
    )
    assert login.status_code == 403
    client = signed_in_strict(world.nurse)
    response = client.post(reverse("patients:create"), NEW_PATIENT)
    assert response.status_code == 403
    assert not Patient.objects.filter(family_name="Forgery").exists()


def test_the_same_post_with_the_token_from_the_form_goes_through(world):  # type: ignore[no-untyped-def]
    client = signed_in_strict(world.nurse)
    form = client.get(reverse("patients:create"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.content.decode())
    assert token is not None
    response = client.post(
        reverse("patients:create"), {**NEW_PATIENT, "csrfmiddlewaretoken": token.group(1)}
    )
    assert response.status_code == 302
    assert Patient.objects.filter(family_name="Forgery").count() == 1


# --- no PHI in URLs ------------------------------------------------------------------------------


class Links(HTMLParser):
    """Every URL a page can send the browser to by GET: links, sources and GET forms."""

    def __init__(self) -> None:
        super().__init__()
        self.get_urls: list[str] = []
        self.get_form_fields: list[str] = []
        self.forms: list[dict[str, str]] = []
        self._form: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("a", "link") and "href" in a:
            self.get_urls.append(a["href"])
        if tag in ("script", "img", "iframe") and "src" in a:
            self.get_urls.append(a["src"])
        if tag == "form":
            self._form = {"method": a.get("method", "get").lower(), "action": a.get("action", "")}
            self.forms.append(self._form)
            if self._form["method"] == "get":
                self.get_urls.append(self._form["action"])
        if tag in ("input", "select", "textarea", "button") and self._form is not None:
            if self._form["method"] == "get" and a.get("name"):
                self.get_form_fields.append(a["name"])
            if a.get("name") == "page":
                self._form["has_page"] = "yes"

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


# Query parameters a GET URL may carry: page numbers, the audit filter's ids and dates.
NON_PHI_QUERY_PARAMS = {"page", "patient", "actor", "date_from", "date_to", "next"}


def links_of(response) -> Links:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.status_code
    parser = Links()
    parser.feed(response.content.decode())
    return parser


def test_the_patient_search_is_a_post_and_a_query_string_finds_nobody(world):  # type: ignore[no-untyped-def]
    register(world.clinic_a, world.nurse, family_name="Smith")
    client = signed_in(world.nurse)
    listing = links_of(client.get(reverse("patients:list")))
    search_forms = [f for f in listing.forms if f["action"] == reverse("patients:search")]
    assert search_forms and all(f["method"] == "post" for f in search_forms)
    by_get = client.get(reverse("patients:search"), {"q": "smith"})
    assert by_get.context["page"] is None
    assert "Smith, Ann" not in by_get.content.decode()
    by_post = client.post(reverse("patients:search"), {"q": "smith"})
    assert [p.family_name for p in by_post.context["page"].object_list] == ["Smith"]


def test_search_results_page_by_post_so_the_query_never_reaches_a_url(world):  # type: ignore[no-untyped-def]
    for n in range(30):
        register(world.clinic_a, world.nurse, given_name=f"Ann{n:02d}", family_name="Smithers")
    client = signed_in(world.nurse)
    first = client.post(reverse("patients:search"), {"q": "smithers"})
    parsed = links_of(first)
    paging = [f for f in parsed.forms if f.get("has_page")]
    assert paging, "the search results should offer a next page"
    assert all(f["method"] == "post" for f in paging)
    assert not [u for u in parsed.get_urls if "smithers" in u.lower()]
    second = client.post(reverse("patients:search"), {"q": "smithers", "page": "2"})
    assert second.context["page"].number == 2


def test_no_get_url_on_any_page_carries_patient_details(world):  # type: ignore[no-untyped-def]
    patient = register(
        world.clinic_a,
        world.nurse,
        given_name="Philippa",
        family_name="Urlwatch",
        date_of_birth=date(1966, 6, 16),
    )
    for n in range(30):
        register(world.clinic_a, world.nurse, given_name=f"Extra{n}", family_name="Urlwatch")
    for _ in range(3):
        measure(patient, world.nurse)
    phi = ["philippa", "urlwatch", "1966", patient.mrn.lower()]
    pages = {
        world.nurse: [
            ("get", reverse("patients:list"), {}),
            ("get", reverse("patients:list"), {"page": "2"}),
            ("post", reverse("patients:search"), {"q": "urlwatch"}),
            ("post", reverse("patients:search"), {"q": "1966-06-16"}),
            ("get", reverse("patients:chart", args=[patient.pk]), {}),
            ("get", reverse("patients:edit", args=[patient.pk]), {}),
            ("get", reverse("patients:history", args=[patient.pk]), {}),
            ("get", reverse("patients:measurements", args=[patient.pk]), {}),
        ],
        world.staff_a["clinic_admin"]: [
            ("get", reverse("audit:log"), {}),
            ("get", reverse("audit:log"), {"patient": patient.pk, "page": "1"}),
        ],
    }
    for user, requests in pages.items():
        client = signed_in(user)
        for method, url, data in requests:
            parsed = links_of(getattr(client, method)(url, data))
            for link in parsed.get_urls:
                parts = urlsplit(link)
                assert not [p for p in phi if p in link.lower()], f"{url}: {link}"
                params = {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
                assert params <= NON_PHI_QUERY_PARAMS, f"{url}: {link}"
            assert set(parsed.get_form_fields) <= NON_PHI_QUERY_PARAMS, (
                url,
                parsed.get_form_fields,
            )


def walk(patterns, prefix=""):  # type: ignore[no-untyped-def]
    """Every URL pattern, and every include() prefix (which may take keywords too)."""
    for p in patterns:
        yield prefix + str(p.pattern), p
        if isinstance(p, URLResolver):
            yield from walk(p.url_patterns, prefix + str(p.pattern))


# URL keywords that are not *_id integers but carry no patient data.
NON_PHI_URL_KEYWORDS = {
    "uidb64": "password reset: the staff user's id, base64",
    "token": "password reset or patient-portal link: a one-time random token",
    "path": "static files",
    "number": "patient portal: the position of a scale in the patient's questionnaire",
    "code": "FHIR Questionnaire: an instrument code such as phq9",
}


def test_urls_carry_only_integer_ids_and_known_non_phi_parts():
    problems = []
    for route, pattern in walk(get_resolver().url_patterns):
        converters = getattr(pattern.pattern, "converters", {})
        for keyword in pattern.pattern.regex.groupindex:
            if keyword.endswith("_id"):
                if not isinstance(converters.get(keyword), IntConverter):
                    problems.append(f"{route}: {keyword} should be <int:{keyword}>")
            elif keyword not in NON_PHI_URL_KEYWORDS:
                problems.append(f"{route}: {keyword} is neither an *_id integer nor known non-PHI")
            elif keyword == "number" and not isinstance(converters.get(keyword), IntConverter):
                problems.append(f"{route}: {keyword} should be <int:{keyword}>")
    assert problems == []


# --- nothing about a failed sign-in in the logs ---------------------------------------------------


def test_failed_sign_ins_log_neither_the_username_nor_the_password(world, caplog):  # type: ignore[no-untyped-def]
    from axes.models import AccessAttempt

    caplog.set_level(logging.DEBUG)
    secrets = ["wilhelmina.unlikely", "Sesquipedalian-Hunter-42", "Wrong-But-Distinct-99"]
    client = Client()
    for _ in range(6):
        client.post(
            reverse("accounts:login"),
            {"username": "wilhelmina.unlikely", "password": "Sesquipedalian-Hunter-42"},
        )
    for _ in range(6):  # a real account, locked out on the way
        client.post(
            reverse("accounts:login"), {"username": "nurse_a", "password": "Wrong-But-Distinct-99"}
        )
    assert caplog.records, "expected the lockout machinery to log something"
    for record in caplog.records:
        text = record.getMessage() + " " + repr(record.args) + " " + (record.exc_text or "")
        leaks = [s for s in secrets if s.lower() in text.lower()]
        assert not leaks, f"{record.name}: {record.getMessage()}"
        assert "nurse_a" not in record.getMessage()
    for attempt in AccessAttempt.objects.all():
        assert "Sesquipedalian" not in attempt.post_data
        assert "Wrong-But-Distinct" not in attempt.post_data
