"""Acceptance: the real worker (`ketaclinic worker`, huey's consumer) sends each reminder and
its scale request exactly once, at (not before) its time, across a SIGKILL and restarts.

The worker runs in a subprocess on its own fresh database (a SQLite file in a temporary
directory, or a scratch PostgreSQL database when KETACLINIC_TEST_DATABASE_URL is set), which
the test reads with plain SQL. huey enqueues periodic tasks when the consumer starts and then
once a minute, so each (re)start is also a run of `send_due_reminders`: that is what lets a
restarted worker catch up at once, and what keeps this test well under a minute.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
KETACLINIC = str(Path(sys.executable).with_name("ketaclinic"))
DUE = 40  # reminders already due when the first worker starts
FUTURE_SECONDS = 20  # one more falls due this long after seeding


def _postgres_scratch(url: str) -> Iterator[str]:
    import psycopg

    parts = urlsplit(url)
    # A name of its own per run: nothing from another run can reach this database.
    name = f"{parts.path.lstrip('/')}_worker_{uuid.uuid4().hex[:8]}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path="/" + name))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def worker_db(tmp_path) -> Iterator[tuple[dict[str, str], Callable[[str], list[tuple]]]]:  # type: ignore[no-untyped-def,type-arg]
    """The environment a worker subprocess runs with, and a function that runs SQL on its
    database from here."""
    pg = os.environ.get("KETACLINIC_TEST_DATABASE_URL")
    scratch = _postgres_scratch(pg) if pg else None
    url = next(scratch) if scratch else f"sqlite:///{tmp_path / 'clinic.sqlite3'}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KETACLINIC_") and k != "DJANGO_SETTINGS_MODULE"
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "ketaclinic.site.settings",
            "KETACLINIC_DATA_DIR": str(tmp_path),
            "KETACLINIC_DATABASE_URL": url,
            "KETACLINIC_HUEY_IMMEDIATE": "false",
            "KETACLINIC_EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",  # a SIGKILL must not eat what was already printed
        }
    )

    def sql(query: str) -> list[tuple]:  # type: ignore[type-arg]
        if pg:
            import psycopg

            with psycopg.connect(url) as conn:
                return conn.execute(query).fetchall()
        conn = sqlite3.connect(tmp_path / "clinic.sqlite3", timeout=20)
        try:
            return conn.execute(query).fetchall()
        finally:
            conn.close()

    subprocess.run([KETACLINIC, "migrate", "-v0"], env=env, cwd=ROOT, check=True, timeout=120)
    try:
        yield env, sql
    finally:
        while Worker.started:  # no worker outlives its test, whatever failed
            Worker.started.pop().kill()
        if scratch:
            next(scratch, None)


class Worker:
    started: list[Worker] = []

    def __init__(self, env: dict[str, str], log: Path):
        self.log = log
        self.proc = subprocess.Popen(
            [KETACLINIC, "worker"],
            env=env,
            cwd=ROOT,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        Worker.started.append(self)

    def kill(self) -> None:
        """SIGKILL: no chance to finish the task in hand or to clean up."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def text(self) -> str:
        return self.log.read_text()


def _wait(
    condition: Callable[[], bool], timeout: float, what: str, worker: Worker | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            text = worker.text() if worker else ""
            errors = [line for line in text.splitlines() if "ERROR" in line or "Error" in line]
            raise AssertionError(
                f"timed out waiting for {what}; worker log {worker.log if worker else '-'}; "
                f"errors: {errors[:10]}; it ended with:\n{text[-1500:]}"
            )
        time.sleep(0.05)


def _when(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.now().astimezone().tzinfo)
    text = str(value).replace(" ", "T")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:  # SQLite stores UTC without an offset
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def test_the_worker_sends_each_reminder_once_at_its_time_across_restarts(
    worker_db, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    env, sql = worker_db
    seeded = subprocess.run(
        [sys.executable, "-m", "tests.treatment.worker_seed", str(DUE), str(FUTURE_SECONDS)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    reminders = json.loads(seeded.stdout.strip().splitlines()[-1])
    assert len(reminders) == DUE + 2
    future, later = reminders[DUE], reminders[DUE + 1]

    def sent() -> int:
        return sql("SELECT count(*) FROM treatment_outboundmessage")[0][0]

    # 1. The first worker starts sending the due reminders; it is killed as soon as the first
    #    one is in the outbox, i.e. in the middle of its batch.
    first = Worker(env, tmp_path / "worker-1.log")
    _wait(lambda: sent() >= 1, 60, "the first reminder", first)
    first.kill()
    after_kill = sent()
    assert 1 <= after_kill <= DUE
    print(f"killed the first worker after {after_kill} of {DUE} due reminders")

    # 2. A restarted worker sends the rest of the batch, none twice, and not the reminder
    #    that is not due yet.
    due_ids = ", ".join(str(r["id"]) for r in reminders[:DUE])
    due_at = _when(future["send_at"])

    def sent_of_batch() -> int:
        return sql(
            f"SELECT count(*) FROM treatment_outboundmessage WHERE reminder_id IN ({due_ids})"
        )[0][0]

    second = Worker(env, tmp_path / "worker-2.log")
    _wait(lambda: sent_of_batch() == DUE, 60, "the rest of the due reminders", second)
    time.sleep(0.5)  # let it finish its run; nothing more may appear
    future_status = sql(f"SELECT status FROM treatment_reminder WHERE id = {future['id']}")
    if datetime.now(due_at.tzinfo) < due_at:
        # The run is over and the reminder's time has not come: it must still wait. (On a
        # machine slow enough to start the worker after its time, sending it is right too;
        # the checks at the end still hold it to its time.)
        assert future_status == [("pending",)]
        assert sent() == DUE
    second.kill()

    # 3. Once the next reminder is due, a third start sends it, and only it.
    time.sleep(max(0.0, (due_at - datetime.now(due_at.tzinfo)).total_seconds()) + 0.2)
    third = Worker(env, tmp_path / "worker-3.log")
    _wait(lambda: sent() == DUE + 1, 60, "the reminder that fell due", third)
    time.sleep(0.5)
    third.kill()
    assert sent() == DUE + 1

    # Each reminder: sent once, never before its time; its scale request created once.
    rows = sql(
        "SELECT r.id, r.status, r.send_at, r.sent_at, count(m.id) FROM treatment_reminder r "
        "LEFT JOIN treatment_outboundmessage m ON m.reminder_id = r.id "
        "GROUP BY r.id, r.status, r.send_at, r.sent_at"
    )
    by_id = {row[0]: row for row in rows}
    for reminder in reminders[: DUE + 1]:
        _, status, send_at, sent_at, messages = by_id[reminder["id"]]
        assert (status, messages) == ("sent", 1), reminder
        assert _when(sent_at) >= _when(send_at), reminder
    assert (by_id[later["id"]][1], by_id[later["id"]][4]) == ("pending", 0)  # due in an hour
    requests = Counter(visit for (visit,) in sql("SELECT visit_id FROM measures_selfreportrequest"))
    visits = [r["appointment"] for r in reminders]
    assert all(requests[v] == 1 for v in visits[: DUE + 1]), requests
    assert requests[visits[-1]] == 0
    assert sum(requests.values()) == DUE + 1

    # What the workers handed to the email backend: never the same visit twice. (Delivery
    # happens after the commit, so a SIGKILL between the two can lose at most the message in
    # hand, never repeat one; the outbox above is the record.)
    printed = Counter(
        re.findall(
            r"your visit is on (.+?)\. Please",
            "".join(w.text() for w in (first, second, third)),
        )
    )
    assert printed and max(printed.values()) == 1, printed
    assert sum(printed.values()) >= DUE  # all but possibly the one in hand at the kill
