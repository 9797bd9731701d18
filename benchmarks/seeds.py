"""Rule exactness on generated cities of several seeds and sizes (a benchmark, not a test).

    .venv/bin/python -m benchmarks.seeds [--cities 2000:12:21,5000:12:22,20000:12:23,3000:6:24] [--db sqlite|postgres]

For each city (people:months:seed): generate, `risk run`, `risk evaluate`; prints the rules' totals and the
scoring's ROC-AUC and precision at K per city, and exits 1 unless every rule has precision 1.0, recall 1.0
and exact amounts everywhere.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RISK = str(ROOT / ".venv" / "bin" / "risk")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cities", default="2000:12:21,5000:12:22,20000:12:23,3000:6:24")
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "seeds")
    a = ap.parse_args()
    ok = True
    for spec in a.cities.split(","):
        people, months, seed = (int(x) for x in spec.split(":"))
        city = a.work / f"city-{people}-{months}-{seed}"
        subprocess.run([RISK, "generate", "--out", str(city), "--people", str(people), "--months", str(months),
                        "--seed", str(seed)], check=True, capture_output=True)
        if a.db == "sqlite":
            (city / "w.db").unlink(missing_ok=True)
            url = f"sqlite:///{city / 'w.db'}"
        else:
            from benchmarks.ingest import fresh_pg

            url = fresh_pg(f"risk_seeds_{seed}")
        t = time.monotonic()
        subprocess.run([RISK, "run", "--landing", str(city / "landing"), "--db", url], check=True, capture_output=True)
        run_s = time.monotonic() - t
        ev = subprocess.run([RISK, "evaluate", "--truth", str(city / "truth"), "--db", url],
                            capture_output=True, text=True)
        total = [ln for ln in ev.stdout.splitlines() if ln.startswith("all rules")][0]
        scoring = " ".join(ln.strip() for ln in ev.stdout.splitlines() if ln.strip().startswith(("ROC-AUC", "precision")))
        ok &= ev.returncode == 0
        print(f"{people:>7,} people {months:>2} months seed {seed:>3} ({a.db}, run {run_s:5.1f} s): {total}"
              f"\n    scoring: {scoring}"
              + ("" if ev.returncode == 0 else f"\n{ev.stdout}{ev.stderr}"), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
