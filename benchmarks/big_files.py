"""Benchmark: what one big or hostile delivered file costs to load (a benchmark, not a test).

    .venv/bin/python -m benchmarks.big_files --city var/bench/city-100000-12-1 [--db URL] [--work DIR]
        [--max-file-mib N]

From a generated city (`risk generate`), one landing per case, each loaded into a fresh warehouse by a
process of its own (`pipeline.prepare` and `load_days`, as `risk run` loads): the city's first day (its
master data), then one day holding only the case's file:
- valid:  every card event of the city in one file, one column order (a year of a 100,000-person city is
          about 217 MB: more than a month of a million-person city's);
- broken: the same rows with their columns shifted by one (every row fails its checks);
- bomb:   a gzip file of about a megabyte that decompresses to 1 GiB of one endless line.
The valid file is 207.6 MiB as text, a little over the default RISK_MAX_FILE_MIB (200): --max-file-mib 256
loads it, which is what a file at the limit costs. Each row: wall time, the peak resident memory of the process tree (sampled every 50 ms), and what became
of the file (rows loaded, rows rejected, or the reason it was refused whole).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from benchmarks.ingest import measured

ROOT = Path(__file__).resolve().parents[1]
CARD_COLUMNS = ["event_id", "person_id", "card_no", "occurred_at", "event_type", "county_code", "institution_id",
                "amount", "admitted_on"]
DAY = "2099-12-31"  # after every delivery day of the city

LOAD = """
import json, sys
from risk import pipeline
from risk.ingest.delivery import load_days, pending_days
from risk.settings import Settings
if __name__ == "__main__":
    s = Settings.load(db=sys.argv[2], var_dir=sys.argv[3])
    pipeline.prepare(s)
    out = load_days(s, sys.argv[1], pending_days(s, sys.argv[1]))
    f = [f for d in out if d["day"] == sys.argv[4] for f in d["files"]][0]
    print(json.dumps({k: f[k] for k in ("loaded", "rejected", "rejected_whole")}, ensure_ascii=False))
"""


def _all_card_events(city: Path) -> pa.Table:
    tables = []
    for path in sorted((city / "landing").glob("*/card_events.csv*")):
        t = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in CARD_COLUMNS}, strings_can_be_null=False))
        tables.append(t.select(CARD_COLUMNS))
    return pa.concat_tables(tables)


def _landing(work: Path, city: Path, case: str) -> Path:
    landing = work / f"landing-{case}"
    shutil.rmtree(landing, ignore_errors=True)
    first = sorted(p for p in (city / "landing").iterdir() if p.is_dir())[0]
    shutil.copytree(first, landing / first.name)
    (landing / DAY).mkdir()
    return landing


def _write_csv(table: pa.Table, path: Path, header: list[str]) -> None:
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))
    body = path.read_bytes()
    path.write_bytes((",".join(header) + "\n").encode() + body)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--city", type=Path, required=True, help="a city written by `risk generate`")
    ap.add_argument("--db", default=None, help="a PostgreSQL server URL's database prefix (default: SQLite)")
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "bench" / "big-files")
    ap.add_argument("--max-file-mib", type=int, help="RISK_MAX_FILE_MIB for the loads (default: the setting's)")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    events = _all_card_events(a.city)
    cases = {}
    valid = _landing(a.work, a.city, "valid")
    _write_csv(events, valid / DAY / "card_events.csv", CARD_COLUMNS)
    cases["valid"] = valid
    broken = _landing(a.work, a.city, "broken")
    shifted = CARD_COLUMNS[1:] + CARD_COLUMNS[:1]  # each value under its neighbour's name
    _write_csv(events, broken / DAY / "card_events.csv", shifted)
    cases["broken"] = broken
    bomb = _landing(a.work, a.city, "bomb")
    with gzip.open(bomb / DAY / "card_events.csv.gz", "wb", compresslevel=1) as f:
        f.write((",".join(CARD_COLUMNS) + "\n").encode())
        for _ in range(1024):
            f.write(b"a" * 2**20)
    cases["bomb"] = bomb
    del events

    print("| file | size on disk | seconds | peak MiB | what became of it |")
    print("|---|---|---|---|---|")
    for case, landing in cases.items():
        var = a.work / f"var-{case}"
        shutil.rmtree(var, ignore_errors=True)
        db = a.work / f"{case}.db"
        for suffix in ("", "-wal", "-shm", ".run-lock"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{db}" if a.db is None else _fresh_pg(a.db, case)
        seconds, peak, out = measured([sys.executable, "-c", LOAD, str(landing), url, str(var), DAY],
                                      {**os.environ, "RISK_VAR_DIR": str(var),
                                       **({"RISK_MAX_FILE_MIB": str(a.max_file_mib)} if a.max_file_mib else {})})
        file = next((landing / DAY).iterdir())
        got = json.loads(out.strip().splitlines()[-1])
        what = (f"refused whole: {got['rejected_whole'][:90]}…" if got["rejected_whole"]
                else f"{got['loaded']:,} loaded, {got['rejected']:,} rejected")
        print(f"| {case} ({file.name}) | {file.stat().st_size / 2**20:,.1f} MiB | {seconds:.1f} | {peak:,.0f} | {what} |",
              flush=True)
    return 0


def _fresh_pg(prefix: str, case: str) -> str:
    from sqlalchemy import create_engine, text

    name = f"risk_big_files_{case}"
    admin = create_engine(prefix, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return prefix.rsplit("/", 1)[0] + f"/{name}"


if __name__ == "__main__":
    sys.exit(main())
