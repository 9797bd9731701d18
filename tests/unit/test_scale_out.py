"""Scale-out: detection and scoring run one county at a time (one mapped Airflow task each, so that several
workers share a night); the parts together leave exactly the warehouse one whole run leaves, night after
night, on SQLite and PostgreSQL."""
from __future__ import annotations

from pathlib import Path

import pytest
from helpers import database, diff_snapshots, snapshot

from risk import pipeline
from risk.settings import Settings
from risk.synth import generate

NIGHTS = ("2025-02-20", "2025-04-15")  # two nights: the second adds months, new facts, new and extended alerts


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scale-out-city")
    generate(out, people=500, months=4, seed=21)
    return out / "landing"


def night(settings: Settings, landing: Path, until: str, split: bool) -> None:
    for day in pipeline.pending_days(settings, landing, until=until):
        pipeline.load_day(settings, landing, day)
    if not split:
        pipeline.detect(settings, until)
        pipeline.score(settings, until)
        return
    parts = pipeline.detection_parts(settings)
    assert len(parts) > 2 and parts[-1] == "-"
    for county in reversed(parts):  # any order: the parts do not depend on each other
        pipeline.detect(settings, until, county=county)
    plan = pipeline.start_scoring(settings, until)
    for county in parts:
        pipeline.score_county(settings, plan, county)
    pipeline.finish_scoring(settings, plan)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_split_by_county_equals_one_whole_run(city: Path, tmp_path: Path, kind: str) -> None:
    with database(kind, tmp_path / "whole") as whole_url, database(kind, tmp_path / "split") as split_url:
        whole = Settings(database_url=whole_url, var_dir=tmp_path / "var-whole")
        split = Settings(database_url=split_url, var_dir=tmp_path / "var-split")
        for s in (whole, split):
            pipeline.prepare(s)
        for until in NIGHTS:
            night(whole, city, until, split=False)
            night(split, city, until, split=True)
            a, b = snapshot(whole_url, tables=None), snapshot(split_url, tables=None)
            assert a["alert"], "no alerts at all: the test would prove nothing"
            assert any(r for r in a["score"]), "nobody was scored"
            assert a == b, diff_snapshots(a, b)
