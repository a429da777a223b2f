"""`make bench`: load-test the production server (granian, WSGI) on a seeded PostgreSQL database.

Steps: make/migrate/seed the bench database (only when it holds fewer patients than wanted),
create the bench nurse, start `ketaclinic serve` on a free loopback port, sign in over HTTP,
check one request per scenario by hand, then drive each scenario with wrk and compare its p95
latency with the floor's. See bench/README.md.

Only the standard library plus what ketaclinic already depends on (psycopg, dj-database-url).
All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

import dj_database_url
import psycopg
from psycopg import sql

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
LUA_DIR = BENCH_DIR / "lua"
DATA_DIR = BENCH_DIR / ".data"
RUN_DIR = DATA_DIR / "run"
RESULTS = BENCH_DIR / "results" / "latest.json"
SEED_MARKER = DATA_DIR / "seed.json"
SERVER_LOG = DATA_DIR / "server.log"
VENV_BIN = Path(sys.executable).parent
KETACLINIC = str(VENV_BIN / "ketaclinic")

DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/ketaclinic_bench"
CLINIC = "Seed Clinic 1"  # `ketaclinic seed` names its clinics "Seed Clinic k"
USERNAME = "bench-nurse"
TARGET_RATIO = 3.0  # the issue: chart and search p95 within 3x the floor's p95
TARGETED = ("chart", "search")
SEED_BUDGET_SECONDS = 300  # the issue: 100,000 patients in under 5 minutes

# Realistic searches: 2-4 letter name prefixes (common, rare and no-match), two tokens in
# either order, dates of birth and MRN prefixes. run.py adds a few DOBs and MRNs sampled from
# the database so those searches also find someone.
SEARCH_QUERIES = [
    "smi",
    "gar",
    "ann",
    "ann smi",
    "oli",
    "mar",
    "joh",
    "lee",
    "ng",
    "em",
    "chen",
    "pat",
    "wil",
    "ol smi",
    "jam gar",
    "smi em",
    "mia lo",
    "o'br",
    "1980-05-17",
    "00012",
    "0004",
]


class BenchError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


# --- database -----------------------------------------------------------------------------


def db_params(url: str) -> dict:
    cfg = dj_database_url.parse(url)
    if "postgresql" not in cfg["ENGINE"]:
        raise BenchError(f"KETACLINIC_BENCH_DATABASE_URL must be PostgreSQL, got {url!r}")
    return {
        "host": cfg["HOST"] or "127.0.0.1",
        "port": int(cfg["PORT"] or 5432),
        "user": cfg["USER"] or "postgres",
        "password": cfg["PASSWORD"] or None,
        "dbname": cfg["NAME"],
    }


def connect(params: dict, dbname: str | None = None, **kw) -> psycopg.Connection:
    p = dict(params)
    if dbname:
        p["dbname"] = dbname
    return psycopg.connect(connect_timeout=5, **p, **kw)


def ensure_database(params: dict, *, fresh: bool) -> bool:
    """Create the bench database if missing (drop it first when `fresh`). True if created."""
    name = params["dbname"]
    try:
        admin = connect(params, "postgres", autocommit=True)
    except psycopg.Error as exc:
        where = f"{params['host']}:{params['port']}"
        raise BenchError(f"PostgreSQL does not answer at {where}: {exc}") from None
    with admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            if "bench" not in name:
                raise BenchError(
                    f"Refusing to drop {name!r}: the bench only drops databases named *bench*."
                )
            log(f"dropping database {name} (--reseed or an interrupted seed)")
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            log(f"creating database {name}")
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    return False


def clinic_patient_count(params: dict) -> tuple[int | None, int]:
    """(id of the bench clinic or None, its patient count)."""
    with connect(params) as conn:
        row = conn.execute(
            "SELECT id FROM accounts_clinic WHERE name = %s ORDER BY id LIMIT 1", [CLINIC]
        ).fetchone()
        if row is None:
            return None, 0
        (n,) = conn.execute(
            "SELECT count(*) FROM patients_patient WHERE clinic_id = %s", [row[0]]
        ).fetchone()
        return row[0], n


# --- subprocesses -------------------------------------------------------------------------


def bench_env(db_url: str) -> dict[str, str]:
    env = dict(os.environ)
    # Never the developer's own database or data dir (the Makefile exports one).
    env.update(
        {
            "KETACLINIC_DATABASE_URL": db_url,
            "KETACLINIC_DATA_DIR": str(DATA_DIR),
            "KETACLINIC_STATIC_ROOT": str(DATA_DIR / "static"),
            "KETACLINIC_COOKIE_SECURE": "false",  # plain HTTP on loopback
            "KETACLINIC_SSL_REDIRECT": "false",
            "KETACLINIC_DEBUG": "false",
            "KETACLINIC_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for leak in ("KETACLINIC_HOST", "KETACLINIC_PORT", "KETACLINIC_WORKERS", "KETACLINIC_THREADS"):
        env.pop(leak, None)
    return env


def run_cli(env: dict, *args: str, timeout: float, capture: bool = False) -> str:
    cmd = [KETACLINIC, *args]
    proc = subprocess.run(  # noqa: PLW1510
        cmd, env=env, cwd=ROOT, timeout=timeout, text=True, capture_output=capture
    )
    if proc.returncode != 0:
        detail = (proc.stderr or "")[-2000:] if capture else ""
        raise BenchError(f"`ketaclinic {' '.join(args)}` failed ({proc.returncode}) {detail}")
    return proc.stdout or ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`ketaclinic serve` (collectstatic, then exec granian) in its own process group."""

    def __init__(self, env: dict, port: int, workers: int, threads: int):
        self.env, self.port, self.workers, self.threads = env, port, workers, threads
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{port}"

    def start(self, timeout: float = 90) -> None:
        SERVER_LOG.parent.mkdir(parents=True, exist_ok=True)
        self._log = SERVER_LOG.open("w")
        cmd = [
            KETACLINIC,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
        ]
        log(f"starting: {' '.join(cmd[1:])}  (log: {SERVER_LOG.relative_to(ROOT)})")
        self.proc = subprocess.Popen(
            cmd,
            env=self.env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us, and we stop the server in order
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"the server exited ({self.proc.returncode}) before answering; "
                    f"see {SERVER_LOG}:\n{SERVER_LOG.read_text()[-3000:]}"
                )
            try:
                with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                    self.base + "/health/", timeout=2
                ) as r:
                    if r.status == 200 and json.loads(r.read()).get("status") == "ok":
                        log(f"server up at {self.base} (pid {self.proc.pid})")
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.25)
        raise BenchError(f"/health/ did not answer within {timeout:.0f} s; see {SERVER_LOG}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        log("stopping the server")
        try:
            self.proc.send_signal(signal.SIGINT)  # granian shuts its workers down gracefully
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log("server did not stop in 15 s; killing its process group")
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)
        finally:
            self._log.close()


# --- HTTP (stdlib only) -------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # surface 3xx to the caller: a redirect to login is a failure here


class Browser:
    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),  # loopback only, whatever http_proxy says
            urllib.request.HTTPCookieProcessor(self.jar),
            _NoRedirect(),
        )

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def request(
        self, method: str, path: str, data: dict | None = None, headers: dict | None = None
    ) -> tuple[int, Message, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, method=method)
        req.add_header("User-Agent", "ketaclinic-bench (check)")
        if body is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
            req.add_header("Referer", self.base + path)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, r.headers, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:  # includes the 3xx we refuse to follow
            return exc.code, exc.headers, exc.read().decode("utf-8", "replace")

    def login(self, username: str, password: str) -> None:
        status, _, _ = self.request("GET", "/accounts/login/")
        token = self.cookie("csrftoken")
        if status != 200 or not token:
            raise BenchError(f"GET /accounts/login/ gave {status} and no csrftoken cookie")
        status, headers, body = self.request(
            "POST",
            "/accounts/login/",
            {"username": username, "password": password, "csrfmiddlewaretoken": token},
        )
        if status != 302:
            hint = "locked out" if "locked" in body.lower() else "wrong credentials or CSRF"
            raise BenchError(f"login POST gave {status}, not a redirect ({hint})")
        where = headers.get("Location", "")
        if "two-factor" in where:
            raise BenchError(f"login asked for two-factor ({where}): not expected for a nurse")
        if not self.cookie("sessionid"):
            raise BenchError("login gave no sessionid cookie")
        log(f"signed in as {username} (redirected to {where})")


class DbActivity:
    """Sample pg_stat_activity of the bench database every 0.25 s while wrk runs.

    Shows where server threads wait inside PostgreSQL: on a row lock, on WAL flush at commit,
    or "idle in transaction" (the app holds a transaction open while its thread waits for
    the CPU or the GIL).
    """

    INTERVAL = 0.25

    def __init__(self, params: dict):
        self.params = params
        self.stop_event = threading.Event()
        self.samples = 0
        self.states: Counter[str] = Counter()
        self.lock_waits: Counter[str] = Counter()
        self.error: str | None = None

    def __enter__(self) -> DbActivity:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        try:
            with connect(self.params, autocommit=True) as conn:
                while not self.stop_event.wait(self.INTERVAL):
                    rows = conn.execute(
                        "SELECT state, wait_event_type, wait_event, left(query, 45) "
                        "FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid() AND state <> 'idle'"
                    ).fetchall()
                    self.samples += 1
                    for state, wtype, wevent, query in rows:
                        if state == "active" and wtype == "Lock":
                            self.states["lock_wait"] += 1
                            self.lock_waits[" ".join(query.split())] += 1
                        elif state == "active" and wtype == "IO":
                            self.states[f"io_{wevent}"] += 1
                        elif state == "active":
                            self.states["active"] += 1
                        else:
                            self.states[state.replace(" ", "_")] += 1
        except psycopg.Error as exc:  # diagnostics only: never fail the run for them
            self.error = str(exc)

    def summary(self) -> dict:
        n = max(self.samples, 1)
        return {
            "samples": self.samples,
            "mean_backends": {k: round(v / n, 2) for k, v in sorted(self.states.items())},
            "lock_waits_by_query": {q: round(c / n, 2) for q, c in self.lock_waits.most_common(3)},
            **({"error": self.error} if self.error else {}),
        }


# --- scenarios ----------------------------------------------------------------------------


def sample_data(params: dict, clinic_id: int) -> dict:
    with connect(params) as conn:
        conn.execute("SELECT setseed(0.42)")
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM patients_patient WHERE clinic_id = %s ORDER BY random() LIMIT 2000",
                [clinic_id],
            )
        ]
        picks = conn.execute(
            "SELECT date_of_birth, mrn FROM patients_patient WHERE clinic_id = %s "
            "ORDER BY random() LIMIT 3",
            [clinic_id],
        ).fetchall()
        (server_version,) = conn.execute("SHOW server_version").fetchone()
    queries = list(SEARCH_QUERIES)
    queries += [dob.isoformat() for dob, _ in picks[:2]]
    queries += [picks[2][1]]  # one full MRN
    return {"ids": ids, "queries": queries, "postgres": server_version}


def scenarios(sample: dict, token: str, base: str, patients: int) -> dict[str, dict]:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    bodies = RUN_DIR / "search_bodies.txt"
    bodies.write_text(
        "".join(
            urllib.parse.urlencode({"q": q, "csrfmiddlewaretoken": token}) + "\n"
            for q in sample["queries"]
        )
    )
    ids = RUN_DIR / "chart_ids.txt"
    ids.write_text("".join(f"{i}\n" for i in sample["ids"]))
    max_page = max(1, -(-patients // 25))
    first_id = sample["ids"][0]
    return {
        "floor": {
            "path": "/floor/",
            "check": ("GET", "/floor/", None, ['"clinic": "' + CLINIC + '"']),
            "env": {},
        },
        "search": {
            "path": "/patients/search/",
            "check": (
                "POST",
                "/patients/search/",
                {"q": "smi", "csrfmiddlewaretoken": token},
                ["Find a patient", 'id="patient-table"', " found"],
            ),
            "env": {"BENCH_DATA_FILE": str(bodies), "BENCH_REFERER": base + "/patients/search/"},
        },
        "chart": {
            "path": f"/patients/{first_id}/",
            "check": ("GET", f"/patients/{first_id}/", None, ["Demographics", "MRN <b>"]),
            "env": {"BENCH_DATA_FILE": str(ids)},
        },
        "list": {
            "path": "/patients/",
            "check": ("GET", f"/patients/?page={max_page // 2}", None, ['id="patient-table"']),
            "env": {"BENCH_MAX_PAGE": str(max_page)},
        },
    }


def check_once(browser: Browser, name: str, spec: dict) -> None:
    method, path, data, expected = spec["check"]
    t0 = time.perf_counter()
    status, headers, body = browser.request(method, path, data)
    ms = (time.perf_counter() - t0) * 1000
    if status in (301, 302, 303, 307, 308):
        raise BenchError(
            f"{name}: {method} {path} redirected to {headers.get('Location')!r}: "
            "the session was not accepted"
        )
    if status != 200:
        raise BenchError(f"{name}: {method} {path} gave HTTP {status}")
    missing = [text for text in expected if text not in body]
    if missing:
        raise BenchError(f"{name}: {method} {path} answered 200 without {missing!r}")
    log(f"check {name}: {method} {path} -> 200, {len(body)} bytes, {ms:.0f} ms")


def run_wrk(
    name: str, spec: dict, base: str, cookie: str, *, seconds: int, args: argparse.Namespace
) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "BENCH_SCENARIO": name,
            "BENCH_COOKIE": cookie,
            "BENCH_LUA_DIR": str(LUA_DIR),
            **spec["env"],
        }
    )
    cmd = [
        args.wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA_DIR / f"{name}.lua"),
        base + spec["path"],
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise BenchError(
            f"wrk failed for {name} ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    result = json.loads(line[len("BENCH_JSON ") :])
    sock = result["socket_errors"]
    result["errors"] = result["non200"] + sock["connect"] + sock["read"] + sock["write"]
    result["errors"] += sock["timeout"]
    return result


# --- reporting ----------------------------------------------------------------------------


def machine_info(postgres: str) -> dict:
    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    versions = {}
    for mod in ("django", "granian", "psycopg"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            versions[mod] = "?"
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgres": postgres,
        "wrk": wrk[0].strip() if wrk else "?",
        **versions,
    }


def combine_rounds(rounds: dict[str, list[dict]]) -> dict[str, dict]:
    """One result per scenario: the round itself, or medians over the rounds.

    Each round's p95 is divided by the floor's p95 of the same round, so a neighbour loading
    the machine in one round shifts both sides of that ratio.
    """
    floors = [r["p95_ms"] for r in rounds["floor"]]
    for runs in rounds.values():
        for r, floor in zip(runs, floors, strict=False):
            r["p95_ratio_to_floor"] = round(r["p95_ms"] / floor, 2) if floor else None
    combined = {}
    for name, runs in rounds.items():
        if len(runs) == 1:
            combined[name] = runs[0]
            continue
        med = {
            k: round(statistics.median(r[k] for r in runs), 3)
            for k in ("rps", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")
        }
        ratios = [r["p95_ratio_to_floor"] for r in runs if r["p95_ratio_to_floor"] is not None]
        combined[name] = {
            "scenario": name,
            **med,
            "p95_ratio_to_floor": round(statistics.median(ratios), 2) if ratios else None,
            "requests": sum(r["requests"] for r in runs),
            "errors": sum(r["errors"] for r in runs),
            "non200": sum(r["non200"] for r in runs),
            "rounds": runs,
        }
    return combined


def print_table(results: dict[str, dict]) -> None:
    head = (
        f"{'scenario':<9} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7} {'p95/floor':>10}"
    )
    print()
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        ratio = f"{r['p95_ratio_to_floor']:.2f}x" if r["p95_ratio_to_floor"] else "-"
        print(
            f"{name:<9} {r['rps']:>9.1f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f} {r['errors']:>7d} {ratio:>10}"
        )
    print()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reseed", action="store_true", help="drop and re-create the bench database")
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument(
        "--clinics",
        type=int,
        default=1,
        help="seeded clinics (1 = all patients in the bench clinic: the hardest case)",
    )
    ap.add_argument("--duration", type=int, default=20, help="seconds measured per scenario")
    ap.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured warm-up")
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every scenario this many times, interleaved, and report medians "
        "(steadier on a machine shared with other work)",
    )
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--server-workers", type=int, default=2)
    ap.add_argument("--server-threads", type=int, default=8)
    ap.add_argument("--scenarios", default="floor,search,chart,list")
    ap.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    args = ap.parse_args()

    if args.rounds < 1 or args.duration < 1:
        raise BenchError("--rounds and --duration must be at least 1")
    wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if "floor" not in wanted:
        wanted.insert(0, "floor")  # every ratio is against the floor
    if not Path(args.wrk).exists():
        raise BenchError("wrk is not installed: `apt-get install -y wrk` (make bench does this)")

    db_url = os.environ.get("KETACLINIC_BENCH_DATABASE_URL", DEFAULT_DB_URL)
    params = db_params(db_url)
    env = bench_env(db_url)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    log(f"database {params['dbname']} at {params['host']}:{params['port']}; data dir {DATA_DIR}")

    pending = subprocess.run(
        [KETACLINIC, "makemigrations", "--check", "--dry-run", "-v1"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if pending.returncode != 0:
        raise BenchError(
            "the models have changes that no migration covers (`ketaclinic makemigrations "
            f"--check`):\n{pending.stdout[-1500:]}{pending.stderr[-1500:]}"
        )
    created = ensure_database(params, fresh=args.reseed)
    if created:
        SEED_MARKER.unlink(missing_ok=True)
    run_cli(env, "migrate", "--no-input", "-v0", timeout=600)
    clinic_id, count = clinic_patient_count(params)
    seeding: dict = {}
    if count < args.patients:
        if count > 0:  # an interrupted seed: start over so the data set is the usual one
            log(f"{CLINIC} has {count} patients, fewer than {args.patients}: starting over")
            ensure_database(params, fresh=True)
            run_cli(env, "migrate", "--no-input", "-v0", timeout=600)
        log(f"seeding {args.patients} patients in {args.clinics} clinic(s) ...")
        t0 = time.perf_counter()
        run_cli(
            env,
            "seed",
            "--patients",
            str(args.patients),
            "--clinics",
            str(args.clinics),
            timeout=3600,
        )
        seconds = time.perf_counter() - t0
        seeding = {
            "seconds": round(seconds, 1),
            "patients": args.patients,
            "clinics": args.clinics,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "this_run": True,
        }
        SEED_MARKER.write_text(json.dumps(seeding))
        verdict = "PASS" if seconds < SEED_BUDGET_SECONDS else "FAIL"
        log(f"seeding took {seconds:.1f} s (target < {SEED_BUDGET_SECONDS} s: {verdict})")
        # Plans should not depend on whether autovacuum has got round to the new rows yet.
        with connect(params, autocommit=True) as conn:
            t1 = time.perf_counter()
            conn.execute("VACUUM ANALYZE")
            took = time.perf_counter() - t1
            log(f"VACUUM ANALYZE after seeding: {took:.1f} s (not counted in the seed time)")
        clinic_id, count = clinic_patient_count(params)
    else:
        seeding = json.loads(SEED_MARKER.read_text()) if SEED_MARKER.exists() else {}
        seeding["this_run"] = False
        log(f"{CLINIC} already has {count} patients: not seeding (use --reseed to start over)")
    if clinic_id is None:
        raise BenchError(f"no {CLINIC!r} after seeding")

    password = secrets.token_urlsafe(24)
    out = subprocess.run(
        [sys.executable, str(BENCH_DIR / "setup_user.py"), CLINIC, USERNAME],
        env={**env, "KETACLINIC_NEW_PASSWORD": password},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise BenchError(f"creating the bench nurse failed:\n{out.stderr[-2000:]}")
    user = json.loads(out.stdout.strip().splitlines()[-1])
    log(f"bench nurse {USERNAME} ({'created' if user['created'] else 'refreshed'}) in {CLINIC}")

    sample = sample_data(params, clinic_id)
    load_at_start = os.getloadavg()
    if load_at_start[0] > 0.5 * (os.cpu_count() or 1):
        log(
            f"warning: load average is already {load_at_start[0]:.1f} on {os.cpu_count()} cores "
            "before the server starts: other work on this machine will skew the numbers"
        )
    server = Server(env, free_port(), args.server_workers, args.server_threads)
    rounds: dict[str, list[dict]] = {}
    try:
        server.start()
        browser = Browser(server.base)
        browser.login(USERNAME, password)
        token = browser.cookie("csrftoken") or ""
        cookie = f"sessionid={browser.cookie('sessionid')}; csrftoken={token}"
        specs = scenarios(sample, token, server.base, count)
        unknown = [s for s in wanted if s not in specs]
        if unknown:
            raise BenchError(f"unknown scenario(s) {unknown}; choose from {list(specs)}")
        for name in wanted:
            check_once(browser, name, specs[name])
        for round_no in range(1, args.rounds + 1):
            for name in wanted:
                spec = specs[name]
                label = f"{name}" + (
                    f" (round {round_no}/{args.rounds})" if args.rounds > 1 else ""
                )
                warmup = args.warmup if round_no == 1 else 0
                log(f"{label}: {warmup} s warm-up, then {args.duration} s measured")
                if warmup > 0:
                    warm = run_wrk(name, spec, server.base, cookie, seconds=warmup, args=args)
                    if warm["errors"]:
                        raise BenchError(f"{name}: {warm['errors']} errors during warm-up: {warm}")
                load_before = os.getloadavg()[0]
                with DbActivity(params) as activity:
                    r = run_wrk(name, spec, server.base, cookie, seconds=args.duration, args=args)
                r["db_activity"] = activity.summary()
                r["loadavg_1min_before"] = round(load_before, 2)
                rounds.setdefault(name, []).append(r)
                log(
                    f"{label}: {r['rps']:.1f} req/s, p95 {r['p95_ms']:.1f} ms, {r['errors']} errors"
                    + (f" (last bad status {r['last_bad_status']})" if r["last_bad_status"] else "")
                )
                waiting = r["db_activity"]["mean_backends"].get("lock_wait", 0)
                if waiting >= 0.5:
                    top = next(iter(r["db_activity"]["lock_waits_by_query"]), "?")
                    log(
                        f"{name}: on average {waiting:.1f} of {args.connections} requests were "
                        f"waiting for a row lock in PostgreSQL, mostly in: {top}"
                    )
    finally:
        server.stop()

    results = combine_rounds(rounds)
    floor_p95 = results["floor"]["p95_ms"]
    if args.rounds > 1:
        print(
            f"\nMedians of {args.rounds} interleaved rounds; each ratio against its round's floor."
        )
    print_table(results)
    targets = {}
    for name in TARGETED:
        if name in results:
            ratio = results[name]["p95_ratio_to_floor"]
            ok = ratio is not None and ratio <= TARGET_RATIO
            targets[name] = {"p95_ratio": ratio, "limit": TARGET_RATIO, "pass": ok}
            print(
                f"{'PASS' if ok else 'FAIL'}  {name} p95 {results[name]['p95_ms']:.1f} ms is "
                f"{ratio:.2f}x the floor's {floor_p95:.1f} ms (target <= {TARGET_RATIO:.0f}x)"
                + (" (medians)" if args.rounds > 1 else "")
            )
    if seeding.get("seconds") is not None:
        ok = seeding["seconds"] < SEED_BUDGET_SECONDS
        when = "this run" if seeding["this_run"] else f"seeded {seeding.get('date', '?')}"
        print(
            f"{'PASS' if ok else 'FAIL'}  seeding {seeding['patients']} patients took "
            f"{seeding['seconds']:.1f} s ({when}; target < {SEED_BUDGET_SECONDS} s)"
        )
    errors = sum(r["errors"] for r in results.values())

    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "connections": args.connections,
            "wrk_threads": args.threads,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "server": (
                f"granian wsgi, {args.server_workers} workers x {args.server_threads} threads"
            ),
            "database": params["dbname"],
            "clinic": CLINIC,
            "clinics_seeded": seeding.get("clinics", args.clinics),
            "search_queries": sample["queries"],
            "chart_patient_ids": len(sample["ids"]),
        },
        "machine": {
            **machine_info(sample["postgres"]),
            "loadavg_at_start": [round(x, 2) for x in load_at_start],
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "patients_in_clinic": count,
        "seeding": seeding,
        "scenarios": results,
        "ratios": {n: r["p95_ratio_to_floor"] for n, r in results.items()},
        "targets": targets,
        "errors": errors,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {RESULTS}")
    if errors:
        log(f"{errors} requests failed (non-200 or socket errors): exit 1")
        return 1
    return 0


def _sigterm(signum, frame):  # type: ignore[no-untyped-def]
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"[bench] ERROR: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("[bench] interrupted", file=sys.stderr)
        sys.exit(130)
