"""The `risk` command as a person uses it (contract §6): clear messages instead of tracebacks, --until,
the quality export, where the database is, and a run killed in the middle of a day."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import (
    assert_balanced,
    base_day,
    diff_snapshots,
    make_id,
    payment,
    recipient,
    rows_of,
    settings,
    snapshot,
    table_names,
    write,
)

from risk import cli, pipeline

ROOT = Path(__file__).resolve().parents[2]
RISK = ROOT / ".venv" / "bin" / "risk"
D0, D1, D2 = "2025-03-01", "2025-03-10", "2025-04-10"
A = make_id(seq=1)


def _env(tmp_path: Path, **more: str) -> dict:
    env = {
        "PATH": f"{RISK.parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "RISK_VAR_DIR": str(tmp_path / "var"),
    }
    for k in ("RISK_TEST_PG_URL",):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update(more)
    return env


def _risk(
    tmp_path: Path, *args: str, env: dict | None = None, timeout: int = 180
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(RISK), *args],
        cwd=tmp_path,
        env=env or _env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """risk.cli.main in this process, with var/ in tmp_path and the root logger restored afterwards."""
    monkeypatch.setenv("RISK_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("RISK_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def main(*args: str) -> int:
        return cli.main(list(args))

    yield main
    for h in root.handlers:
        if h not in handlers:
            h.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def _small_landing(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    base_day(landing, D0, people=[recipient(A)])
    write(landing, D1, "payments", [payment("P1", A), payment("P2", A, amount="-1.00")])
    write(
        landing, D2, "payments", [payment("P3", A, period="2025-04", paid_on="2025-04-10"), payment("P1", A)]
    )
    (landing / "README.txt").write_text("not a day", encoding="utf-8")
    write(landing, "2025-02-30", "payments", [payment("P9", A)])  # not a real day: skipped with a warning
    return landing


# ---------------------------------------------------------------- messages, not tracebacks


def test_run_on_a_missing_landing_says_so_without_a_traceback(tmp_path: Path) -> None:
    done = _risk(
        tmp_path, "run", "--landing", str(tmp_path / "nowhere"), "--db", f"sqlite:///{tmp_path}/w.db"
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "landing folder not found" in done.stderr and "nowhere" in done.stderr


def test_run_with_a_bad_until_says_so(tmp_path: Path) -> None:
    landing = _small_landing(tmp_path)
    done = _risk(
        tmp_path,
        "run",
        "--landing",
        str(landing),
        "--until",
        "2025-13-01",
        "--db",
        f"sqlite:///{tmp_path}/w.db",
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "--until" in done.stderr and "2025-13-01" in done.stderr


def test_run_on_a_file_instead_of_a_folder(in_process, tmp_path: Path, capsys) -> None:
    file = tmp_path / "landing.csv"
    file.write_text("x", encoding="utf-8")
    assert in_process("run", "--landing", str(file), "--db", f"sqlite:///{tmp_path}/w.db") != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "landing folder not found" in err


# ---------------------------------------------------------------- --until, export, ledger


def test_until_limits_the_days_and_a_later_run_loads_the_rest(in_process, tmp_path: Path, capsys) -> None:
    landing = _small_landing(tmp_path)
    url = f"sqlite:///{tmp_path}/w.db"
    assert in_process("run", "--landing", str(landing), "--until", D1, "--db", url) == 0
    assert [d["day"] for d in rows_of(url, "delivery", "day")] == [D0, D1]
    assert {p["payment_id"] for p in rows_of(url, "payment")} == {"P1"}
    err = capsys.readouterr().err
    assert "2 delivery days to load" in err
    assert "README.txt" in err and "2025-02-30" in err  # warned about, not loaded

    assert in_process("run", "--landing", str(landing), "--db", url) == 0
    assert [d["day"] for d in rows_of(url, "delivery", "day")] == [D0, D1, D2]
    assert "1 delivery days to load" in capsys.readouterr().err
    assert in_process("run", "--landing", str(landing), "--db", url) == 0
    assert "0 delivery days to load" in capsys.readouterr().err

    out = tmp_path / "out" / "rejects.csv"
    assert in_process("quality", "export", "--format", "csv", "--db", url, "--out", str(out)) == 0
    assert in_process("quality", "export", "--format", "csv", "--db", url) == 0
    printed = capsys.readouterr().out
    assert printed == out.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(printed)))
    assert rows[0][:5] == ["source", "delivery_day", "line", "key", "reason"]
    assert [r[:4] for r in rows[1:]] == [["payments", D1, "3", "P2"]]
    assert "amount" in rows[1][4]

    assert in_process("quality", "ledger", "--db", url) == 0
    led = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(led) == 4 and all(r["balanced"] == "True" for r in led)
    assert [r["redelivered"] for r in led if r["delivery_day"] == D2] == ["1"]


def test_export_of_an_empty_warehouse_is_just_the_header(in_process, tmp_path: Path, capsys) -> None:
    assert in_process("quality", "export", "--format", "csv", "--db", f"sqlite:///{tmp_path}/w.db") == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("source,delivery_day,line,key,reason")


def test_database_from_environment_else_var_in_the_working_folder(
    in_process, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    base_day(landing, D0, people=[recipient(A)])
    monkeypatch.delenv("RISK_VAR_DIR")
    assert in_process("run", "--landing", str(landing)) == 0
    assert (tmp_path / "var" / "risk.db").is_file()
    assert [r["person_id"] for r in rows_of(f"sqlite:///{tmp_path}/var/risk.db", "recipient")] == [A]

    other = tmp_path / "elsewhere.db"
    monkeypatch.setenv("RISK_DATABASE_URL", f"sqlite:///{other}")
    assert in_process("run", "--landing", str(landing)) == 0
    assert [r["person_id"] for r in rows_of(f"sqlite:///{other}", "recipient")] == [A]


# ---------------------------------------------------------------- a run killed in the middle of a day


def _sample_rows(sample: Path, pattern: str) -> list[dict]:
    out: list[dict] = []
    for p in sorted(sample.glob(pattern)):
        raw = gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
        out += list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    return out


@pytest.mark.slow
def test_a_run_killed_mid_day_leaves_no_trace_of_that_day(
    in_process, tmp_path: Path, sample_landing: Path, capsys
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(sample_landing / D0, landing / D0)
    # every payment of the sample and its card events eight times over (new event ids) in one day: a few
    # seconds of loading, so the kill lands inside it
    big = "2025-12-31"
    events = _sample_rows(sample_landing, "*/card_events.csv.gz")
    write(landing, big, "payments", _sample_rows(sample_landing, "*/payments.csv"))
    write(landing, big, "card_events", [{**e, "event_id": f"{e['event_id']}-{copy}"} for copy in range(8)
                                        for e in events])
    write(landing, "2026-01-05", "payments", [payment("P-LATE", "431125196205276096")])
    killed_db = tmp_path / "killed.db"
    url = f"sqlite:///{killed_db}"

    proc = subprocess.Popen(
        [str(RISK), "run", "--landing", str(landing), "--db", url],
        cwd=tmp_path,
        env=_env(tmp_path),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 120
        for line in proc.stderr:  # progress lines, one per loaded day
            seen.append(line)
            if line.startswith("[1/"):
                time.sleep(0.8)  # into the big day: past reading, while validating or writing
                os.kill(proc.pid, signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "".join(seen)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stderr.read()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert any(line.startswith("[1/3]") for line in seen), "".join(seen) + rest
    assert "[2/3]" not in rest, "the big day finished before the kill: make it bigger"

    # the killed day is not there, and none of its rows
    assert [d["day"] for d in rows_of(url, "delivery", "day")] == [D0]
    for table in table_names(url):
        assert [r for r in rows_of(url, table) if r.get("delivery_day") == big] == [], table
    assert len(rows_of(url, "recipient")) == 3000

    # run again: it picks up where it stopped and ends where an uninterrupted run ends
    assert in_process("run", "--landing", str(landing), "--db", url) == 0
    assert "2 delivery days to load" in capsys.readouterr().err

    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    pipeline.run(settings(clean_url, tmp_path / "clean"), landing)
    clean, after = snapshot(clean_url, tables=None), snapshot(url, tables=None)
    assert after == clean, diff_snapshots(clean, after)
    assert_balanced(url)
