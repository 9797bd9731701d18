"""One run at a time on a warehouse (issue 12, finding 10), a working folder that cannot be written, and
a run killed in each phase of its night, then run again (finding 11): on SQLite and on PostgreSQL.

The runs are real `risk` processes; what a person sees is their exit code and what they print."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from helpers import INGEST_TABLES, diff_snapshots, snapshot
from sqlalchemy import create_engine, text

from risk import errors, runlock
from risk.synth import generate

ROOT = Path(__file__).resolve().parents[2]
RISK = ROOT / ".venv" / "bin" / "risk"
BUSY = "another run has held this warehouse since"


def _env(var: Path) -> dict:
    return {**os.environ, "RISK_VAR_DIR": str(var), "PYTHONUNBUFFERED": "1"}


def _risk(*args: str, var: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(RISK), *args], capture_output=True, text=True, env=_env(var), timeout=timeout)


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one-run-city")
    generate(out, people=800, months=4, seed=3)
    return out / "landing"


# ---------------------------------------------------------------- one run at a time


def test_a_second_run_stops_at_once_saying_who_holds_the_warehouse(db_url: str, city: Path, tmp_path: Path) -> None:
    with runlock.held(db_url, "risk run"):
        got = _risk("run", "--landing", str(city), "--db", db_url, var=tmp_path / "var")
        waited = _risk("run", "--landing", str(city), "--db", db_url, "--wait", "1", var=tmp_path / "var")
    for p in (got, waited):
        out = p.stdout + p.stderr
        assert p.returncode == 2, out
        assert BUSY in out and "risk run" in out and "Traceback" not in out
    assert "waiting" in waited.stdout + waited.stderr
    assert _tables_with_rows(db_url) == set()  # the second run touched nothing


def test_a_run_asked_to_wait_starts_when_the_other_ends(db_url: str, city: Path, tmp_path: Path) -> None:
    released = threading.Event()

    def hold() -> None:
        with runlock.held(db_url, "risk run"):
            time.sleep(3)
        released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.5)
    started = time.monotonic()
    got = _risk("run", "--landing", str(city), "--db", db_url, "--until", "2025-02-01", "--wait", "120",
                var=tmp_path / "var")
    holder.join()
    assert got.returncode == 0, got.stdout + got.stderr
    assert "waiting" in got.stdout + got.stderr and released.is_set()
    assert time.monotonic() - started >= 2.5


def test_two_runs_started_together_one_loads_and_the_other_says_so(db_url: str, city: Path, tmp_path: Path) -> None:
    first = subprocess.Popen([str(RISK), "run", "--landing", str(city), "--db", db_url], env=_env(tmp_path / "a"),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert first.stdout is not None
        for line in first.stdout:  # the first run holds the warehouse from its first line on
            if line.startswith("[1/"):
                break
        second = _risk("run", "--landing", str(city), "--db", db_url, var=tmp_path / "b")
    finally:
        rest = first.communicate(timeout=600)[0]
    assert first.returncode == 0, rest
    assert second.returncode == 2 and BUSY in second.stdout + second.stderr
    assert "Traceback" not in second.stdout + second.stderr


def test_shared_holders_run_side_by_side_and_a_whole_run_waits_for_them(db_url: str) -> None:
    """The nightly DAG's tasks hold the lock shared (its parts at once); `risk run` exclusively."""
    with runlock.held(db_url, "fund_risk_nightly detect", shared=True), \
            runlock.held(db_url, "fund_risk_nightly detect", shared=True):
        with pytest.raises(errors.WarehouseBusy, match="fund_risk_nightly"):
            with runlock.held(db_url, "risk run", wait=0.5):
                pass
    with runlock.held(db_url, "risk run"):
        with pytest.raises(errors.WarehouseBusy, match="risk run"):
            with runlock.held(db_url, "fund_risk_nightly load_day", shared=True, wait=0.5):
                pass
    with runlock.held(db_url, "risk run"):  # released: free again
        pass


def test_a_working_folder_that_cannot_be_written_is_a_plain_message(tmp_path: Path, city: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    got = _risk("run", "--landing", str(city), "--db", f"sqlite:///{tmp_path / 'w.db'}", var=blocker / "var")
    out = got.stdout + got.stderr
    assert got.returncode == 2, out
    assert "cannot read or write" in out and "Traceback" not in out


# ---------------------------------------------------------------- killed in each phase, then run again


PHASES = {  # the line a run prints as it enters the phase
    "detect": "检测中 / running the rules",
    "score": "行为评分中 / scoring behaviour",
    "digest": "评分 / scored",  # then the quality report and the digests
}


@pytest.fixture(scope="module")
def clean(city: Path, tmp_path_factory) -> dict:
    """What one uninterrupted run leaves, on each kind of database."""
    from warehouses import warehouse

    out = {}
    for kind in ("sqlite", "postgres"):
        folder = tmp_path_factory.mktemp(f"clean-{kind}")
        with warehouse(kind, folder) as url:
            got = _risk("run", "--landing", str(city), "--db", url, var=folder / "var")
            assert got.returncode == 0, got.stdout + got.stderr
            out[kind] = _state(url)
    return out


def _state(url: str) -> dict:
    state = snapshot(url, INGEST_TABLES)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            state["alert"] = sorted(tuple(r) for r in conn.execute(text(
                "SELECT rule, person_id, village_code, severity, amount_at_risk_cents, evidence, status FROM alert")))
            state["score"] = sorted(tuple(r) for r in conn.execute(text(
                "SELECT person_id, model_version, score, rank FROM score")))
    finally:
        engine.dispose()
    return state


def _tables_with_rows(url: str) -> set[str]:
    return {name for name, rows in snapshot(url, tables=None).items() if rows}


@pytest.mark.slow
@pytest.mark.parametrize("phase", list(PHASES))
def test_a_run_killed_in_each_phase_then_run_again_equals_a_clean_run(
        db_url: str, city: Path, tmp_path: Path, clean: dict, phase: str) -> None:
    kind = "sqlite" if db_url.startswith("sqlite") else "postgres"
    proc = subprocess.Popen([str(RISK), "run", "--landing", str(city), "--db", db_url],
                            env=_env(tmp_path / "var"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    seen = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if PHASES[phase] in line:
                os.killpg(proc.pid, signal.SIGKILL)  # the run and its worker process
                break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)

    again = _risk("run", "--landing", str(city), "--db", db_url, var=tmp_path / "var")
    assert again.returncode == 0, again.stdout + again.stderr
    after = _state(db_url)
    assert after == clean[kind], diff_snapshots(clean[kind], after)
