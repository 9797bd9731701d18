"""Benchmark: the web app's pages on a loaded warehouse, as a village, a township, a county and a city user
see them (a benchmark, not a test).

    .venv/bin/python -m benchmarks.web --db URL [--db URL2] [--requests 50]

The busiest village, township and county (most alerts, among the regions that have a supervisor of that
level in supervisors.csv; chosen on the first warehouse, the same people on the others) and a city
supervisor get a web password (the supervisors are the city's own; only their `account` row is written).
For each warehouse a real `risk serve` is started on a free port (uvicorn in a subprocess, as in
production), each user logs in over HTTP and asks for each page kind
`--requests` times, one request after another, timed from sending the request to the last byte of the
answer:

- queue: /alerts, as sorted by amount or by age, paging through the first pages;
- case: /alerts/{id}, a different one of the user's own alerts each time;
- search: city staff: /search with what they search by (a whole ID number, a rule, a county, a status
  and a least amount, a period); the others have no city-wide search (it is for auditors and city staff):
  their search is the queue's filters (rule, severity, status, village, period);
- dashboard: /dashboard;
- export CSV / export XLSX (city staff: the exports are the search's): the search's filters, as above.
  A whole city's alerts are also exported, `--whole` times per format, and shown on their own row: that
  is a download of the whole alert table, not a page.

Every answer must be 200 (anything else stops the benchmark). The table gives p50, p95 and max in ms per
user and page, and the server's peak resident set (VmHWM of the `risk serve` process).
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, select

from risk import accounts, domain
from risk.alerts import lifecycle as workflow
from risk.db import gateway
from risk.db.tables import alert, recipient, supervisor

PASSWORD = "benchmark password 1"
LEVELS = ("village", "township", "county", "city")
PAGES = ("queue", "case", "search", "dashboard", "export CSV", "export XLSX")


@dataclass
class Subject:
    """A user the benchmark logs in as, with what it asks for."""
    role: str
    user_id: str
    region_code: str
    alerts: int  # live alerts in the area
    cases: list[str] = field(default_factory=list)  # alert ids of their own alerts
    searches: list[dict[str, str]] = field(default_factory=list)  # query parameters


@dataclass
class Timing:
    ms: list[float]
    size: int  # bytes of the last answer

    def quantile(self, q: float) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# ---------------------------------------------------------------- whom to log in as, and what they ask for


def subjects(url: str, same_as: list[Subject] | None = None) -> list[Subject]:
    """The busiest village, township and county with a supervisor of that level, and a city supervisor (or
    the users of `same_as`: the same people on each warehouse of a run); each gets the benchmark's
    password."""
    chosen = []
    with gateway.transaction(url) as conn:
        staff = conn.execute(select(supervisor.c.user_id, supervisor.c.role, supervisor.c.region_code)
                             .order_by(supervisor.c.user_id)).all()
        villages = Counter(dict(conn.execute(select(alert.c.village_code, func.count())
                                             .where(alert.c.status != "withdrawn").group_by(alert.c.village_code)
                                             ).all()))
        for role in LEVELS:
            digits = domain.area_digits(role)
            counts: Counter[str] = Counter()
            for code, n in villages.items():
                counts[(code or "")[:digits]] += n
            wanted = {s.user_id for s in same_as or []}
            candidates = [(counts[s.region_code[:digits]], s.user_id, s) for s in staff if s.role == role]
            candidates = [c for c in candidates if c[1] in wanted and c[0]] or candidates  # another city: its own
            if not candidates:
                raise SystemExit(f"no {role} supervisor in supervisors.csv")
            n, _, s = max(candidates, key=lambda c: (c[0], c[1]))
            chosen.append(Subject(role, s.user_id, s.region_code, n))
        for s in chosen:
            accounts.set_password(conn, s.user_id, PASSWORD)
            u = workflow.user(conn, s.user_id)
            s.cases = list(conn.execute(select(alert.c.alert_id).where(workflow.scope(u), alert.c.status != "withdrawn")
                                        .order_by(alert.c.alert_id).limit(50)).scalars())
            s.searches = _searches(conn, u)
    return chosen


def _searches(conn, u: workflow.User) -> list[dict[str, str]]:
    """What this user searches by, varied: city staff the city-wide search's fields, the others the
    queue's filters over their area."""
    mine = conn.execute(select(alert.c.rule, alert.c.first_seen, alert.c.village_code, alert.c.person_id)
                        .where(workflow.scope(u), alert.c.status != "withdrawn").order_by(alert.c.alert_id)).all()
    rules = [r for r, _ in Counter(a.rule for a in mine).most_common()]
    months = [m for m, _ in Counter(a.first_seen[:7] for a in mine).most_common(1)] or ["2025-06"]
    villages = [v for v, _ in Counter(a.village_code for a in mine).most_common(3)]
    if u.role in ("city", "auditor"):
        counties = [c for c, _ in Counter((a.village_code or "")[:6] for a in mine).most_common(2)]
        varied: list[dict[str, str]] = [{"person_id": a.person_id} for a in mine[:4]]
        varied += [{"rule": r} for r in rules[:3]]
        varied += [{"county": c, "rule": rules[0]} for c in counties]
        varied += [{"county": counties[0]}, {"status": "new", "min_amount": "1000"},
                   {"from": months[0], "to": months[0]}, {"rule": rules[-1], "status": "new"}]
        return varied
    varied = [{"rule": r} for r in rules[:3]]
    varied += [{"severity": "high"}, {"status": "new"}, {"from": months[0], "to": months[0]},
               {"rule": rules[0], "status": "new", "sort": "age"}]
    if u.role != "village":
        varied += [{"village": v} for v in villages]
    return varied


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(url: str, var_dir: Path) -> Iterator[tuple[str, int]]:
    """A real `risk serve` over the warehouse; yields its base URL and process id."""
    port = free_port()
    log = (var_dir / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "risk.cli", "serve", "--port", str(port), "--db", url],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RISK_VAR_DIR": str(var_dir)})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit(f"risk serve stopped: see {var_dir / 'serve.log'}")
            try:
                httpx.get(f"{base}/login", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set so far (VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) / 1024 if found else float("nan")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if not found:
        raise SystemExit("no CSRF token in the page")
    return found.group(1)


def logged_in(base: str, user_id: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=120, follow_redirects=False)
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"user_id": user_id, "password": PASSWORD, "csrf_token": token, "next": "/alerts"})
    if r.status_code != 303:
        raise SystemExit(f"login of {user_id} failed: {r.status_code}")
    return client


# ---------------------------------------------------------------- the measurement


def timed(n: int, ask: Callable[[int], httpx.Response]) -> Timing:
    ms, size = [], 0
    for i in range(n):
        started = time.perf_counter()
        r = ask(i)
        ms.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"{r.request.method} {r.request.url.path} answered {r.status_code}")
        size = len(r.content)
    return Timing(ms, size)


def measure(base: str, s: Subject, n: int, whole: int) -> dict[str, Timing]:
    out: dict[str, Timing] = {}
    c = logged_in(base, s.user_id)
    try:
        out["queue"] = timed(n, lambda i: c.get("/alerts", params={"sort": ("amount", "age")[i % 2],
                                                                    "page": str(i // 2 % 5 + 1)}))
        out["case"] = timed(n, lambda i: c.get(f"/alerts/{s.cases[i % len(s.cases)]}"))
        out["dashboard"] = timed(n, lambda i: c.get("/dashboard"))
        if s.role in ("city", "auditor"):
            out["search"] = timed(n, lambda i: c.get("/search", params=s.searches[i % len(s.searches)]))
            token = csrf_of(c.get("/search").text)
            for kind in ("csv", "xlsx"):
                out[f"export {kind.upper()}"] = timed(n, lambda i, k=kind: c.post(
                    f"/search.{k}", data={**s.searches[i % len(s.searches)], "csrf_token": token}))
            for kind in ("csv", "xlsx"):
                out[f"export {kind.upper()}, whole city"] = timed(whole, lambda i, k=kind: c.post(
                    f"/search.{k}", data={"csrf_token": token}))
        else:
            out["search"] = timed(n, lambda i: c.get("/alerts", params=s.searches[i % len(s.searches)]))
    finally:
        c.close()
    return out


def run(url: str, n: int, whole: int, same_as: list[Subject] | None = None
        ) -> tuple[list[Subject], dict[tuple[str, str], Timing], float]:
    started = time.monotonic()
    gateway.migrate(url)  # a pending migration (indexes) runs here, not in the server's first request
    print(f"  migrated in {time.monotonic() - started:.1f} s", flush=True)
    users = subjects(url, same_as)
    results: dict[tuple[str, str], Timing] = {}
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp, server(url, Path(tmp)) as (base, pid):
        for s in users:
            print(f"  {s.role:8} {s.user_id} ({s.region_code}, {s.alerts:,} alerts) …", flush=True)
            for page, timing in measure(base, s, n, whole).items():
                results[(s.role, page)] = timing
        peak = peak_rss_mib(pid)
    return users, results, peak


def table(runs: list[tuple[str, list[Subject], dict[tuple[str, str], Timing], float]]) -> str:
    """One row per user and page, p50, p95 and max per warehouse, and the size of the answer."""
    heads = "".join(f" | {label:^26}" for label, *_ in runs)
    lines = [f"{'user (alerts in the area)':28} {'page':24} {'KiB':>6}{heads}",
             f"{'':60}" + " | p50 ms   p95 ms   max ms   " * len(runs)]
    keys: list[tuple[str, str]] = []
    for _, _, results, _ in runs:
        keys += [k for k in results if k not in keys]
    users = {s.role: s for _, subjects_, _, _ in runs for s in subjects_}
    for role, page in keys:
        s = users[role]
        timings = [results.get((role, page)) for _, _, results, _ in runs]
        size = next(t.size for t in timings if t)
        cells = "".join(f" | {t.quantile(0.5):6.0f} {t.quantile(0.95):8.0f} {max(t.ms):8.0f}   " if t
                        else f" | {'—':^26}" for t in timings)
        lines.append(f"{f'{role} {s.user_id} ({s.alerts:,})':28} {page:24} {size / 1024:6.0f}{cells}")
    lines.append(f"{'server peak RSS (MiB)':60}" + "".join(f" | {peak:^26,.0f}" for *_, peak in runs))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", action="append", required=True, help="a loaded warehouse (repeat for several)")
    ap.add_argument("--requests", type=int, default=50, help="sequential requests per user and page")
    ap.add_argument("--whole", type=int, default=10, help="sequential exports of the whole city, per format")
    args = ap.parse_args()
    runs = []
    for url in args.db:
        with gateway.transaction(url) as conn:
            people = conn.execute(select(func.count()).select_from(recipient)).scalar() or 0
            live = conn.execute(select(func.count()).where(alert.c.status != "withdrawn")).scalar() or 0
        label = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
        print(f"{label} {gateway.safe_url(url)}: {people:,} recipients, {live:,} alerts", flush=True)
        runs.append((label, *run(url, args.requests, args.whole, runs[0][1] if runs else None)))
    print()
    print(f"{args.requests} sequential requests per user and page ({args.whole} for a whole city's exports); "
          f"ms from sending the request to the answer's last byte")
    print(table(runs))


if __name__ == "__main__":
    main()
