"""The behaviour model is kept with its warehouse (issue 12, finding 5): two warehouses run from one folder
keep their own models, a warehouse moved to another folder (and a worker process with no models folder)
scores with its own model, a model that cannot be loaded is replaced by a new one with a warning and the
night goes on, and a model registered before migration 0015 (a file in var/models) still loads, then moves
into the warehouse. On SQLite and PostgreSQL."""
from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, update
from warehouses import kind_of, warehouse

from risk import pipeline
from risk.cli import main
from risk.db import gateway
from risk.db.tables import model, score
from risk.scoring import registry
from risk.scoring.model import load
from risk.settings import Settings
from risk.synth import generate


@pytest.fixture(scope="module")
def landings(tmp_path_factory) -> tuple[Path, Path]:
    """Two small cities over the same months (the same delivery days), other people."""
    out = tmp_path_factory.mktemp("model-cities")
    generate(out / "a", people=500, months=4, seed=31)
    generate(out / "b", people=500, months=4, seed=32)
    return out / "a" / "landing", out / "b" / "landing"


def loaded(url: str, landing: Path, var_dir: Path, until: str | None = None) -> Settings:
    settings = Settings(database_url=url, var_dir=var_dir, outbox=var_dir / "outbox")
    pipeline.prepare(settings)
    pipeline.load_days(settings, landing, pipeline.pending_days(settings, landing, until))
    return settings


def scores_of(url: str) -> dict[str, float]:
    with gateway.reading(url) as conn:
        return dict(conn.execute(select(score.c.person_id, score.c.score)).all())


def current(url: str) -> registry.Registered:
    with gateway.reading(url) as conn:
        registered = registry.current(conn)
    assert registered is not None
    return registered


def new_process() -> None:
    """The next night runs in a new process: nothing of the model is kept from before."""
    registry._loaded.clear()


def test_two_warehouses_run_from_one_folder_keep_their_own_models(db_url, tmp_path, landings):
    """Both train a first model on the same day (the same version name) from the same working folder; the
    next night each scores with its own, and neither has to train again."""
    var = tmp_path / "var"  # the one working folder
    with warehouse(kind_of(db_url), tmp_path, "other.db") as other_url:
        first = loaded(db_url, landings[0], var)
        second = loaded(other_url, landings[1], var)
        night_one = [pipeline.score(first), pipeline.score(second)]
        assert [n["trained_first_model"] for n in night_one] == [True, True]
        assert night_one[0]["model_version"] == night_one[1]["model_version"]  # a name two warehouses share
        before = [scores_of(first.database_url), scores_of(second.database_url)]
        assert before[0].keys().isdisjoint(before[1].keys())  # other people: other models

        for settings, scored in zip([first, second], before, strict=True):
            new_process()
            night_two = pipeline.score(settings)
            assert night_two["scored"] == len(scored) > 0
            assert not night_two["trained_first_model"] and night_two["retrained_because"] is None
            assert night_two["model_version"] == night_one[0]["model_version"]
            assert scores_of(settings.database_url) == scored  # the same model on the same people


def test_a_warehouse_moved_to_another_folder_scores_with_its_model(db_url, tmp_path, landings):
    """The warehouse (a SQLite file copied elsewhere; a PostgreSQL database run from another folder) is
    scored with its model from a working folder that never held it, also by a worker process that scores
    a part of the night and has only the warehouse."""
    here = loaded(db_url, landings[0], tmp_path / "here" / "var")
    first = pipeline.score(here)
    if kind_of(db_url) == "sqlite":
        moved = tmp_path / "there" / "w.db"
        moved.parent.mkdir()
        source = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        with sqlite3.connect(moved) as copy:
            source.backup(copy)
        source.close()
        url = f"sqlite:///{moved}"
    else:
        url = db_url
    shutil.rmtree(tmp_path / "here", ignore_errors=True)  # the old working folder is gone
    there = Settings(database_url=url, var_dir=tmp_path / "there" / "var")
    new_process()
    plan = pipeline.start_scoring(there)
    assert plan["model_version"] == first["model_version"] and plan.get("retrained_because") is None
    worker = subprocess.run(
        [sys.executable, "-c", "import json, sys; from pathlib import Path; from risk import pipeline; "
         "from risk.settings import Settings; "
         "print(pipeline.score_counties(Settings(database_url=sys.argv[1], var_dir=Path(sys.argv[2])), "
         "json.loads(sys.argv[3]), None))", url, str(there.var_dir), json.dumps(plan)],
        capture_output=True, text=True, timeout=300)
    assert worker.returncode == 0, worker.stderr[-2000:]
    assert int(worker.stdout.strip().splitlines()[-1]) == first["scored"]
    night = pipeline.finish_scoring(there, plan)
    assert night["model_version"] == first["model_version"] and night["scored"] == first["scored"]
    assert not (tmp_path / "there" / "var" / "models").exists()  # nothing written beside the warehouse


def test_a_model_that_cannot_be_loaded_is_replaced_and_the_night_goes_on(db_url, tmp_path, landings, caplog):
    """The model's bytes in the warehouse are damaged: the next night says so (in the log and in its
    result), trains a new model in its place, scores everyone with it and sends the digests."""
    days = sorted(day.name for day in landings[0].iterdir() if day.is_dir())
    settings = loaded(db_url, landings[0], tmp_path / "var", until=days[len(days) // 2])
    pipeline.run(settings, landings[0], until=days[len(days) // 2])
    damaged = current(db_url)
    with gateway.transaction(db_url) as conn:
        data = conn.execute(select(model.c.skops).where(model.c.version == damaged.version)).scalar()
        conn.execute(update(model).where(model.c.version == damaged.version).values(skops=data[:-100]))
    new_process()
    with caplog.at_level(logging.WARNING, logger="risk.pipeline"):
        night = pipeline.run(settings, landings[0])
    scoring = night.detection["scoring"]
    assert "SHA-256" in scoring["retrained_because"] and not scoring["trained_first_model"]
    assert any("当前模型无法加载" in r.getMessage() and damaged.version in r.getMessage() for r in caplog.records)
    assert scoring["scored"] > 0 and scoring["model_version"] not in (None, damaged.version)
    assert current(db_url).version == scoring["model_version"]
    assert set(scores_of(db_url).values()) and night.detection["digests"]["digests"] > 0
    with gateway.reading(db_url) as conn:
        statuses = dict(conn.execute(select(model.c.version, model.c.status)).all())
    assert statuses == {damaged.version: "retired", scoring["model_version"]: "current"}


def test_a_model_registered_before_0015_loads_from_its_file_then_moves_into_the_warehouse(db_url, tmp_path,
                                                                                          landings, caplog):
    """A model registered with only its file in var/models still scores the night (its hash checked) and
    is stored in the warehouse then, so that the file is no longer needed; `risk model export` writes a
    copy. With neither the bytes nor the file, the night trains a new one and says why."""
    settings = loaded(db_url, landings[0], tmp_path / "var")
    first = pipeline.score(settings)
    old = current(db_url)
    file = registry.models_dir(settings) / old.file
    file.parent.mkdir(parents=True)
    assert main(["model", "export", "--out", str(file), "--db", db_url]) == 0
    assert load(file, old.sha256) is not None  # the export is the registered model
    with gateway.transaction(db_url) as conn:  # as a warehouse migrated from before 0015 holds it
        conn.execute(update(model).values(skops=None))

    new_process()
    night = pipeline.score(settings)
    assert night["model_version"] == old.version and night["retrained_because"] is None
    assert scores_of(db_url) and night["scored"] == first["scored"]
    file.unlink()
    new_process()
    assert pipeline.score(settings)["model_version"] == old.version  # from the warehouse now

    with gateway.transaction(db_url) as conn:  # a pre-0015 model whose file is gone
        conn.execute(update(model).values(skops=None))
    new_process()
    with caplog.at_level(logging.WARNING, logger="risk.pipeline"):
        lost = pipeline.score(settings)
    assert "不在仓库中" in lost["retrained_because"] and "neither in the warehouse" in lost["retrained_because"]
    assert lost["model_version"] != old.version and lost["scored"] == first["scored"]
    assert any(old.version in r.getMessage() for r in caplog.records)


def test_only_the_newest_models_keep_their_bytes(db_url, tmp_path, landings):
    """Every model keeps its registry row; the bytes (a few MB each, one more every week) only for the newest
    KEEP_BYTES, the current one among them."""
    settings = loaded(db_url, landings[0], tmp_path / "var")
    versions = [pipeline.train_model(settings)["version"] for _ in range(registry.KEEP_BYTES + 1)]
    with gateway.reading(db_url) as conn:
        rows = {r.version: (r.status, r.skops is not None, len(r.skops or b""))
                for r in conn.execute(select(model.c.version, model.c.status, model.c.skops))}
    assert sorted(rows) == sorted(versions)
    assert {v: rows[v][:2] for v in versions} == {
        versions[0]: ("retired", False), **{v: ("retired", True) for v in versions[1:-1]},
        versions[-1]: ("current", True)}
    assert all(size < 20 * 2**20 for *_, size in rows.values())
    new_process()
    assert pipeline.score(settings)["model_version"] == versions[-1]
