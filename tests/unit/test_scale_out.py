"""Scale-out: detection and scoring run in parts, a few groups of counties (one mapped Airflow task each, so
that several workers share a night and each loads the model once); the parts together leave exactly the
warehouse one whole run leaves, night after night, on SQLite and PostgreSQL, whether each county is a part
of its own or the counties are grouped."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from helpers import database, diff_snapshots, snapshot
from sqlalchemy import func, select

from risk import pipeline
from risk.db import gateway
from risk.db.tables import alert, payment, recipient
from risk.detection.scope import NO_COUNTY, groups
from risk.settings import Settings
from risk.synth import generate

NIGHTS = ("2025-02-20", "2025-04-15")  # two nights: the second adds months, new facts, new and extended alerts
ONE_COUNTY_EACH = 100  # more groups than counties: every county a part of its own


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scale-out-city")
    generate(out, people=500, months=4, seed=21)
    return out / "landing"


def night(settings: Settings, landing: Path, until: str, parts: int | None) -> list[list[str]]:
    """Load the days up to `until`, then detect and score whole (parts None) or in parts, as the DAG does;
    returns the parts."""
    for day in pipeline.pending_days(settings, landing, until=until):
        pipeline.load_day(settings, landing, day)
    if parts is None:
        pipeline.detect(settings, until)
        pipeline.score(settings, until)
        return []
    found = pipeline.detection_parts(settings, groups=parts)
    for part in reversed(found):  # any order: the parts do not depend on each other
        pipeline.detect(settings, until, part=part)
    plan = pipeline.start_scoring(settings, until, for_parts=True)  # the city's features, shared with the parts
    assert (settings.var_dir / "scoring" / plan["features"]["file"]).is_file()
    for part in found:
        pipeline.score_counties(settings, plan, part)
    pipeline.finish_scoring(settings, plan)
    assert not list((settings.var_dir / "scoring").iterdir()), "the night's features are deleted once it is scored"
    return found


@pytest.mark.slow
@pytest.mark.parametrize("parts", [2, ONE_COUNTY_EACH])
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_split_equals_one_whole_run(city: Path, tmp_path: Path, kind: str, parts: int) -> None:
    with database(kind, tmp_path / "whole") as whole_url, database(kind, tmp_path / "split") as split_url:
        whole = Settings(database_url=whole_url, var_dir=tmp_path / "var-whole")
        split = Settings(database_url=split_url, var_dir=tmp_path / "var-split")
        for s in (whole, split):
            pipeline.prepare(s)
        for until in NIGHTS:
            night(whole, city, until, parts=None)
            found = night(split, city, until, parts=parts)
            assert len(found) == parts if parts == 2 else len(found) > 2
            a, b = snapshot(whole_url, tables=None), snapshot(split_url, tables=None)
            assert a["alert"], "no alerts at all: the test would prove nothing"
            assert any(r for r in a["score"]), "nobody was scored"
            assert a == b, diff_snapshots(a, b)
        if parts == ONE_COUNTY_EACH:
            # shared_account is decided by account, not by county: an account shared by people of different
            # parts is read whole by each of them, and each decides its own people's alerts
            assert _accounts_shared_across_parts(split_url, found), "the city has no sharing across parts"


def _accounts_shared_across_parts(url: str, parts: list[list[str]]) -> list[str]:
    """Accounts behind shared_account alerts whose people belong to more than one part."""
    part_of = {county: i for i, part in enumerate(parts) for county in part}
    with gateway.transaction(url) as conn:
        flagged = select(alert.c.person_id).where(alert.c.rule == "shared_account")
        rows = conn.execute(
            select(payment.c.bank_account, func.substr(recipient.c.village_code, 1, 6)).distinct()
            .select_from(payment.outerjoin(recipient, recipient.c.person_id == payment.c.person_id))
            .where(payment.c.person_id.in_(flagged))).all()
    spread: dict[str, set[int]] = {}
    for account, county in rows:
        spread.setdefault(account, set()).add(part_of[county or NO_COUNTY])
    return [account for account, found in spread.items() if len(found) > 1]


def loaded(city: Path, tmp_path: Path) -> Settings:
    """A SQLite warehouse holding the city's days up to the first night."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'w.db'}", var_dir=tmp_path / "var")
    pipeline.prepare(settings)
    for day in pipeline.pending_days(settings, city, until=NIGHTS[0]):
        pipeline.load_day(settings, city, day)
    return settings


@pytest.mark.slow
def test_the_parts_score_the_features_computed_once_for_the_city(city: Path, tmp_path: Path) -> None:
    """start_scoring computes the city's features once for a night in parts; each part reads its
    counties' rows, equal to what it would compute itself; a file that changed is refused."""
    from datetime import date

    from risk.errors import InputError
    from risk.scoring import night_features
    from risk.scoring.features import compute_features

    settings = loaded(city, tmp_path)
    plan = pipeline.start_scoring(settings, NIGHTS[0], for_parts=True)
    shared = plan["features"]
    part = [c for c in pipeline.detection_parts(settings)[0] if c != NO_COUNTY]
    with gateway.reading(settings.database_url) as conn:
        own = compute_features(conn, date.fromisoformat(plan["as_of"]), settings.window_days, counties=part)
    assert 0 < len(own) < shared["rows"]
    pd.testing.assert_frame_equal(night_features.read(settings, shared, part), own, check_exact=True)
    path = settings.var_dir / "scoring" / shared["file"]
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(InputError, match="features file"):
        pipeline.score_counties(settings, plan, part)


def test_groups_hold_every_county_once_with_about_as_many_recipients(city: Path, tmp_path: Path) -> None:
    settings = loaded(city, tmp_path)
    with gateway.transaction(settings.database_url) as conn:
        county = func.substr(recipient.c.village_code, 1, 6)
        sizes = Counter(dict(conn.execute(select(county, func.count()).group_by(county)).all()))
        found = {n: groups(conn, n) for n in (1, 2, 3, ONE_COUNTY_EACH)}
        assert groups(conn, 3) == found[3], "the same recipients give the same groups"
    counties = sorted(sizes) + [NO_COUNTY]
    assert len(counties) > 4
    for n, parts in found.items():
        assert sorted(c for part in parts for c in part) == sorted(counties), "every county in exactly one part"
        assert len(parts) == min(n, len(counties))
        held = [sum(sizes[c] for c in part) for part in parts]
        # greedy, largest county first: no group exceeds the others' mean by more than the largest county
        assert max(held) - min(held) <= max(sizes.values()), (n, parts, held)
    assert found[1] == [tuple(sorted(counties))]
    assert found[ONE_COUNTY_EACH] == [(c,) for c in sorted(counties)]
