"""Browser tests: Playwright driving Debian's chromium against pytest-django's live server.

Run with `.venv/bin/pytest -q -m e2e tests/e2e -p no:xdist`. Never `playwright install`: the
browser is the system chromium (`make chromium`). Screenshots land in test-artifacts/e2e/
(gitignored): every test that fails leaves one, and `shot(page, name)` saves more on purpose.
"""

from __future__ import annotations

import re
import shutil
import time
from base64 import b32decode
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection, transaction
from django_otp.oath import TOTP

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
E2E_DIR = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    """Everything under tests/e2e is a browser test, whether or not its module says so."""
    for item in items:
        if E2E_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:150]


def shot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    """Save a full-page screenshot as test-artifacts/e2e/<name>.png and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{_safe_name(name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "Debian's chromium is not installed (run `make chromium`); the e2e tests need it."
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop registered as running on this thread, which
    # makes Django refuse ORM calls from the test body. The live server answers requests on
    # its own thread, so only the test's own setup and assertions are affected.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                yield chromium
            finally:
                chromium.close()


class ConsoleErrors(list):
    """Console errors, uncaught exceptions and CSP violations a page reported."""

    def watch(self, page) -> None:  # type: ignore[no-untyped-def]
        page.on(
            "console",
            lambda msg: (
                self.append(
                    f"console {msg.type}: {msg.text} ({msg.location.get('url')}) on {page.url}"
                )
                if msg.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda exc: self.append(f"page error: {exc} @ {page.url}"))


@pytest.fixture
def console_errors() -> ConsoleErrors:
    return ConsoleErrors()


@pytest.fixture
def _append_only_tables_emptied(transactional_db) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Browser tests need real commits (the live server answers on another thread), so each
    ends with a flush. On SQLite that flush DELETEs rows, and the append-only tables' triggers
    refuse (PostgreSQL flushes with TRUNCATE, which row triggers do not see). Before the
    flush, empty those tables with their triggers lifted for a moment, then put the triggers
    back, so the app under test and later tests always run with them."""
    yield
    if connection.vendor != "sqlite":
        return
    # Rows of other tables may still point at the append-only rows (a dosing session's doses at
    # its ledger entries); the flush that follows removes those, so foreign keys are off for a
    # moment (the pragma only takes effect outside a transaction).
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA foreign_keys = OFF")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
            triggers = cursor.fetchall()
            for name, _table, _sql in triggers:
                cursor.execute(f'DROP TRIGGER "{name}"')
            for table in sorted({table for _name, table, _sql in triggers}):
                cursor.execute(f'DELETE FROM "{table}"')
            for _name, _table, sql in triggers:
                cursor.execute(sql)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA foreign_keys = ON")


@pytest.fixture
def page(  # type: ignore[no-untyped-def]
    browser,
    live_server,
    transactional_db,
    _append_only_tables_emptied,
    request,
    console_errors,
) -> Iterator[object]:
    """A fresh browser context (own cookies) per test, 1280x900, aimed at the live server."""
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    context.set_default_timeout(10_000)
    pg = context.new_page()
    console_errors.watch(pg)
    try:
        yield pg
    finally:
        call = getattr(request.node, "rep_call", None)
        if call is not None and call.failed:
            try:
                shot(pg, f"FAILED-{request.node.name}")
            except Exception as exc:  # noqa: BLE001 - a screenshot must not hide the failure
                print(f"could not save a failure screenshot: {exc}")
        context.close()


# --- helpers shared by the e2e modules ---------------------------------------------------


def log_in(page, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def totp_key(secret_text: str) -> bytes:
    """The key behind the secret a setup page shows ('ABCD EFGH ...', base32, no padding)."""
    compact = secret_text.replace(" ", "").strip().upper()
    return b32decode(compact + "=" * (-len(compact) % 8))


def totp_code(key: bytes, *, not_before_step: int | None = None) -> tuple[str, int]:
    """The code an authenticator app shows now, as (code, time step).

    django-otp never accepts the same time step twice; a user who signs in again within the
    same 30 s window waits for the app's next code. Instead of sleeping, `not_before_step`
    asks for that next code early: the server accepts one step of clock skew either way.
    """
    otp = TOTP(key, step=30, t0=0, digits=6)
    otp.time = time.time()
    if not_before_step is not None and otp.t() < not_before_step:
        otp.time = not_before_step * 30 + 1
    return f"{otp.token():06d}", otp.t()


def no_horizontal_overflow(page) -> tuple[bool, int, int]:  # type: ignore[no-untyped-def]
    scroll, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    return scroll <= inner + 1, scroll, inner
