"""Contract §1 and §7 on the contract sample: loading the delivery days in date order or in a shuffled order
ends in the same alert export (apart from first_seen), on SQLite and PostgreSQL; and the rules' amounts are
exactly those of sample/expected-alerts.csv.

Each full load of the sample takes 15-25 s, so each database gets one ordered and one shuffled load, the
shuffled one in a forked process beside the ordered one.
"""
from __future__ import annotations

import csv
import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from warehouses import kind_of, warehouse

from risk import pipeline
from risk.alerts.export import export_rows
from risk.db import gateway
from risk.ingest import checks
from risk.ingest.delivery import delivery_days
from risk.settings import Settings

pytestmark = pytest.mark.slow

SEED = 20250301


def load_then_detect(url: str, landing: Path, days: list[str], var: Path) -> list[dict]:
    """Each delivery day with risk.pipeline.load_day in the order given, then pipeline.detect once."""
    s = Settings(database_url=url, var_dir=var)
    pipeline.prepare(s)
    for day in days:
        pipeline.load_day(s, landing, day)
    pipeline.detect(s)
    with gateway.transaction(url) as conn:
        return export_rows(conn)


def without_first_seen(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["rule"], r["person_id"]): {k: v for k, v in r.items() if k != "first_seen"} for r in rows}


def expected_alerts() -> dict[tuple[str, str], str]:
    path = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "sample" / "expected-alerts.csv"
    with path.open(encoding="utf-8") as f:
        return {(r["rule"], r["person_id"]): r["amount_at_risk"] for r in csv.DictReader(f)}


def test_sample_alerts_are_the_same_in_date_order_and_shuffled(db_url, sample_landing, tmp_path):
    days = delivery_days(sample_landing)
    shuffled = list(days)
    random.Random(SEED).shuffle(shuffled)
    assert shuffled != days

    checks.warm_up()
    with warehouse(kind_of(db_url), tmp_path, "second.db") as url, \
            ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        in_child = pool.submit(load_then_detect, url, sample_landing, shuffled, tmp_path / "var2")
        ordered_rows = load_then_detect(db_url, sample_landing, days, tmp_path / "var")
        shuffled_rows = in_child.result()

    # the rules of §4 on the sample: exactly the expected (rule, person, amount), to the fen
    expected = expected_alerts()
    for name, rows in (("date order", ordered_rows), ("shuffled", shuffled_rows)):
        got = {(r["rule"], r["person_id"]): r["amount_at_risk"] for r in rows if r["rule"] != "anomaly"}
        missing = {k: v for k, v in expected.items() if k not in got}
        extra = {k: v for k, v in got.items() if k not in expected}
        wrong = {k: (got[k], v) for k, v in expected.items() if k in got and got[k] != v}
        assert not (missing or extra or wrong), (
            f"{name}: missing {missing}; not expected {extra}; amount (got, expected) {wrong}")

    a, b = without_first_seen(ordered_rows), without_first_seen(shuffled_rows)
    assert a.keys() == b.keys(), f"shuffled order {shuffled}: alerts differ {set(a) ^ set(b)}"
    differ = {k: [c for c in a[k] if a[k][c] != b[k][c]] for k in a if a[k] != b[k]}
    assert not differ, f"shuffled order {shuffled}: columns that differ per alert: {differ}"
