"""Where a page's time goes, on the bench database: `.venv/bin/python bench/pageprofile.py`.

Run `bench/run.py` first (it seeds the database and creates the bench nurse). No server and
no HTTP: Django's test client calls the views in this process, one request at a time, so the
numbers are the cost of one request without queueing. For each page: median wall time and
Python CPU time (steadier than wall time on a busy machine), number
of SQL queries, time spent inside them, and the slowest one. Then EXPLAIN ANALYZE of the SQL
each search query runs (the count and the first page), with the plan's first scan node.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402 - the bench settings live there

REPEAT = 15


def main() -> None:
    db_url = os.environ.get("KETACLINIC_BENCH_DATABASE_URL", run.DEFAULT_DB_URL)
    os.environ.update(run.bench_env(db_url))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketaclinic.site.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from ketaclinic.accounts.models import Clinic, User
    from ketaclinic.patients import selectors
    from ketaclinic.patients.models import Patient

    user = User.objects.filter(username=run.USERNAME).first()
    clinic = Clinic.objects.filter(name=run.CLINIC).first()
    if user is None or clinic is None:
        sys.exit("No bench nurse or clinic yet: run bench/run.py first.")
    client = Client(HTTP_HOST="127.0.0.1")  # the bench ALLOWED_HOSTS
    client.force_login(user)
    ids = list(
        Patient.objects.filter(clinic=clinic).order_by("?").values_list("id", flat=True)[:REPEAT]
    )
    queries: list[tuple[float, str]] = []

    def timer(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries.append(((time.perf_counter() - t0) * 1000, " ".join(sql.split())[:70]))

    def page(label: str, call) -> None:  # type: ignore[no-untyped-def]
        call(0)  # warm caches and the connection
        walls, cpus, sqls, counts, slowest = [], [], [], [], (0.0, "")
        for i in range(REPEAT):
            queries.clear()
            with connection.execute_wrapper(timer):
                t0, c0 = time.perf_counter(), time.thread_time()
                response = call(i)
                cpus.append((time.thread_time() - c0) * 1000)
                walls.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 200:
                sys.exit(f"{label}: HTTP {response.status_code}")
            sqls.append(sum(ms for ms, _ in queries))
            counts.append(len(queries))
            slowest = max([slowest, *queries])
        print(
            f"{label:<20} {statistics.median(walls):6.1f} ms {statistics.median(cpus):6.1f} ms CPU"
            f" {max(counts):3d} queries "
            f"{statistics.median(sqls):7.1f} ms SQL   slowest {slowest[0]:6.1f} ms: {slowest[1]}"
        )

    print(
        f"One request at a time, median of {REPEAT}, {run.CLINIC} ({clinic.pk}); "
        "CPU is this Python thread's, without PostgreSQL's:\n"
    )
    page("floor", lambda i: client.get("/floor/"))
    page("chart", lambda i: client.get(f"/patients/{ids[i % len(ids)]}/"))
    for q in run.SEARCH_QUERIES:
        page(f"search {q!r}", lambda i, q=q: client.post("/patients/search/", {"q": q}))
    page("list page 1", lambda i: client.get("/patients/?page=1"))
    page("list page 2000", lambda i: client.get("/patients/?page=2000"))

    print("\nEXPLAIN ANALYZE of the search SQL (execution time; first scan node):\n")
    for q in run.SEARCH_QUERIES:
        qs = selectors.search_queryset(clinic, q)
        for label, sub in (("count", qs.order_by()), ("page 1", qs[: selectors.PAGE_SIZE])):
            sql, params = sub.query.sql_with_params()
            if label == "count":
                sql = f"SELECT count(*) FROM ({sql}) AS matches"
            with connection.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                plan = [row[0].strip() for row in cur.fetchall()]
            took = next((x for x in plan if x.startswith("Execution Time")), "?")
            scan = next((x.lstrip("-> ") for x in plan if "Scan" in x), "?").split("  (")[0]
            removed = next((x for x in plan if x.startswith("Rows Removed by Filter")), "")
            print(f"{q!r:<14} {label:<7} {took:<28} {scan} {removed}")


if __name__ == "__main__":
    main()
