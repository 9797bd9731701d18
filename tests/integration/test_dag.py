"""The nightly DAG: it parses cleanly and without a database, runs to success with dag.test() and
loads what `risk run` loads, and tells the operators when a task fails.

Airflow runs in child processes (risk.orchestration.local); the session fixture `airflow_home` migrates
one metadata DB for all of these tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from warehouses import warehouse_rows

from risk.errors import DagRunFailed, RunConfigError
from risk.orchestration.local import (
    DAG_ID,
    DAGS_FOLDER,
    child_env,
    describe_dags,
    run_dag,
    run_dag_test,
)
from risk.orchestration.runs import resolve_run

pytestmark = pytest.mark.airflow

SAMPLE_LANDING = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "sample" / "landing"
FIRST_DAYS = ["2025-03-01", "2025-03-10", "2025-04-01", "2025-04-10", "2025-04-15"]
UNTIL = "2025-04-10"  # the fifth day is delivered but must not be loaded


# -- (a) the DagBag ---------------------------------------------------------------------------------


def test_dagbag_has_the_weekly_model_dag(airflow_home: Path) -> None:
    bag = describe_dags(airflow_home)

    assert bag["import_errors"] == {}
    weekly = bag["dags"]["fund_risk_model"]
    assert weekly["schedule"] == "0 4 * * 0" and weekly["timezone"] == "Asia/Shanghai"
    assert set(weekly["tasks"]) == {"drift_before", "train"}
    assert weekly["tasks"]["train"]["upstream"] == ["drift_before"]
    daily = bag["dags"]["fund_risk_escalation"]
    assert daily["schedule"] == "0 7 * * *" and set(daily["tasks"]) == {"escalate", "send_digests"}
    assert daily["tasks"]["send_digests"]["upstream"] == ["escalate"]


def test_dagbag_has_the_nightly_dag_without_import_errors(airflow_home: Path) -> None:
    bag = describe_dags(airflow_home)

    assert bag["import_errors"] == {}
    nightly = bag["dags"][DAG_ID]
    assert nightly["schedule"] == "0 2 * * *"
    assert nightly["timezone"] == "Asia/Shanghai"
    assert nightly["catchup"] is False
    assert nightly["max_active_runs"] == 1
    assert {"landing", "db", "until", "parts"} <= set(nightly["params"])
    tasks = nightly["tasks"]
    assert set(tasks) == {"migrate", "find_pending_days", "load_day", "find_parts", "detect", "start_scoring",
                          "score", "finish_scoring", "quality_report", "send_digests"}
    for task in tasks.values():
        assert task["retries"] == 2
        assert task["retry_delay_seconds"] > 0
        assert task["on_failure_callback"] == ["risk.orchestration.ops_notify.notify_operators"]
    assert tasks["load_day"]["mapped"] and tasks["load_day"]["max_active_tis_per_dagrun"] == 1
    assert tasks["find_pending_days"]["upstream"] == ["migrate"]
    assert tasks["load_day"]["upstream"] == ["find_pending_days"]
    # detection and scoring run one group of counties per mapped task (scale-out), then the city-wide step
    assert tasks["find_parts"]["upstream"] == ["load_day"]
    assert tasks["detect"]["mapped"] and tasks["detect"]["upstream"] == ["find_parts"]
    assert tasks["start_scoring"]["upstream"] == ["detect"]
    assert tasks["score"]["mapped"] and sorted(tasks["score"]["upstream"]) == ["find_parts", "start_scoring"]
    assert sorted(tasks["finish_scoring"]["upstream"]) == ["score", "start_scoring"]
    assert tasks["quality_report"]["upstream"] == ["finish_scoring"]
    assert tasks["send_digests"]["upstream"] == ["finish_scoring"]


# -- (b) parsing touches no database ----------------------------------------------------------------

_PARSE_SPY = """
import json, sqlite3, sys
import sqlalchemy, sqlalchemy.engine
import airflow.settings  # Airflow's own metadata engine is set up before the spies go in

seen = []
real_engine, real_connect = sqlalchemy.create_engine, sqlite3.connect
def engine_spy(url, *args, **kwargs):
    seen.append("create_engine " + str(url))
    return real_engine(url, *args, **kwargs)
def connect_spy(database, *args, **kwargs):
    seen.append("sqlite3.connect " + str(database))
    return real_connect(database, *args, **kwargs)
sqlalchemy.create_engine = sqlalchemy.engine.create_engine = engine_spy
sqlite3.connect = connect_spy

from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "dags": sorted(bag.dags), "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "seen": seen, "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("risk", "pandas")),
}))
"""


def test_parsing_the_dag_file_opens_no_database(airflow_home: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse" / "risk.db"  # its folder exists: a connect would create it
    warehouse.parent.mkdir()
    env = child_env(
        airflow_home,
        {
            "RISK_DATABASE_URL": f"sqlite:///{warehouse}",
            "RISK_LANDING": str(tmp_path / "no-landing"),
            "RISK_VAR_DIR": str(tmp_path / "no-var"),
        },
    )
    proc = subprocess.run(
        [sys.executable, "-c", _PARSE_SPY, str(DAGS_FOLDER)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    parsed = json.loads(proc.stdout.strip().splitlines()[-1])

    assert parsed["errors"] == {} and DAG_ID in parsed["dags"]
    assert not [call for call in parsed["seen"] if str(tmp_path) in call or "risk.db" in call]
    assert not warehouse.exists() and not (tmp_path / "no-var").exists()
    heavy = [
        m for m in parsed["modules"] if m.startswith(("risk.pipeline", "risk.db", "risk.ingest", "pandas"))
    ]
    assert heavy == [], "the DAG file imports these at parse time"


def test_run_settings_come_from_conf_then_environment(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    env = {"RISK_LANDING": "/env/landing", "RISK_DATABASE_URL": "sqlite:////env/risk.db"}
    from_env = resolve_run({}, None, env=env)
    assert from_env.landing == Path("/env/landing") and from_env.until is None
    assert from_env.settings.database_url == "sqlite:////env/risk.db"

    run = resolve_run(
        {"landing": str(tmp_path), "db": "sqlite:///x.db", "until": "2025-04-10"},
        datetime(2025, 5, 1, 18, 0, tzinfo=UTC),
        env=env,
    )
    assert (run.landing, run.settings.database_url, run.until) == (tmp_path, "sqlite:///x.db", "2025-04-10")
    # the scheduled run at 02:00 Asia/Shanghai on 2025-05-02 is 18:00 UTC on 2025-05-01
    assert resolve_run({}, datetime(2025, 5, 1, 18, 0, tzinfo=UTC), env=env).until == "2025-05-02"
    # how many parts detection and scoring split into: the conf's, else RISK_PARTS (default 2)
    assert from_env.settings.parts == 2 and resolve_run({"parts": 3}, None, env=env).settings.parts == 3
    with pytest.raises(RunConfigError, match="RISK_PARTS"):
        resolve_run({"parts": 0}, None, env=env)


# -- (c) a dag.test() run loads what `risk run` loads -----------------------------------------------


@pytest.fixture
def small_landing(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    for day in FIRST_DAYS:
        shutil.copytree(SAMPLE_LANDING / day, landing / day)
    return landing


@pytest.mark.slow
def test_dag_run_loads_what_risk_run_loads(airflow_home: Path, small_landing: Path, tmp_path: Path) -> None:
    from risk import pipeline
    from risk.settings import Settings

    dag_db = f"sqlite:///{tmp_path / 'dag.db'}"
    dag_outbox = tmp_path / "outbox-dag"
    result = run_dag_test(small_landing, dag_db, tmp_path / "var-dag", until=UNTIL, home=airflow_home,
                          conf_extra={"outbox": str(dag_outbox)})

    assert result["state"] == "success"
    assert result["pending_days"] == FIRST_DAYS[:4]
    assert [summary["day"] for summary in result["loaded"]] == FIRST_DAYS[:4]

    direct = Settings.load(db=f"sqlite:///{tmp_path / 'direct.db'}", var_dir=tmp_path / "var-direct",
                           outbox=tmp_path / "outbox-direct")
    pipeline.run(direct, small_landing, until=UNTIL)  # what `risk run` does

    by_dag, by_cli = warehouse_rows(dag_db), warehouse_rows(direct.database_url)
    assert sorted(by_dag) == sorted(by_cli)
    assert any(rows for rows in by_cli.values()), "nothing was loaded at all"
    for table in by_cli:
        assert by_dag[table] == by_cli[table], f"table {table} differs"
    # the same digests, one per supervisor with new alerts in their area
    digests = {p.name: p.read_text(encoding="utf-8") for p in dag_outbox.glob("*.txt")}
    assert digests and digests == {
        p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "outbox-direct").glob("*.txt")
    }

    # no resident's ID number or name in Airflow's logs of the run, nor in the digests
    from risk import privacy
    from risk.db import gateway

    with gateway.transaction(dag_db) as conn:
        ids, names = privacy.residents(conn)
    assert ids and names
    leaks = privacy.scan([airflow_home / "logs", dag_outbox], ids, names)
    assert not leaks, "\n".join(map(str, leaks[:10]))

    # the next night finds nothing pending: load_day is skipped, the rules and the report still run
    rerun = run_dag_test(small_landing, dag_db, tmp_path / "var-dag", until=UNTIL, home=airflow_home,
                         conf_extra={"outbox": str(dag_outbox)})
    states = {t["task_id"]: t["state"] for t in rerun["tasks"]}
    assert (rerun["pending_days"], rerun["loaded"]) == ([], [])
    assert states == {
        "migrate": "success",
        "find_pending_days": "success",
        "load_day": "skipped",
        "find_parts": "success",
        "detect": "success",
        "start_scoring": "success",
        "score": "success",
        "finish_scoring": "success",
        "quality_report": "success",
        "send_digests": "success",
    }
    assert warehouse_rows(dag_db) == by_dag  # nothing new: nobody gets a second digest


@pytest.mark.slow
def test_escalation_dag_moves_late_alerts_up_and_tells_the_next_level(
    airflow_home: Path, small_landing: Path, tmp_path: Path
) -> None:
    """Through Airflow: alerts nobody acknowledged move up one level, with the deadlines taken from
    RISK_SLA_DAYS, and the township supervisors hear about them in a digest."""
    from datetime import datetime, timedelta

    import sqlalchemy as sa

    from risk import pipeline
    from risk.db import gateway
    from risk.db.tables import alert, alert_event, supervisor
    from risk.settings import Settings

    settings = Settings.load(db=f"sqlite:///{tmp_path / 'w.db'}", var_dir=tmp_path / "var")
    pipeline.run(settings, small_landing, until=UNTIL, send_digests=False)
    twenty_days_ago = datetime.now() - timedelta(days=20)
    with gateway.transaction(settings.database_url) as conn:
        conn.execute(sa.update(alert).values(raised_at=twenty_days_ago))
        severity = dict(conn.execute(sa.select(alert.c.alert_id, alert.c.severity)).all())
    assert {"high", "medium"} <= set(severity.values())

    outbox = tmp_path / "outbox"
    result = run_dag("fund_risk_escalation", {"db": settings.database_url, "outbox": str(outbox)},
                     tmp_path / "var", home=airflow_home, env_extra={"RISK_SLA_DAYS": "high=30"})

    assert result["state"] == "success"
    with gateway.transaction(settings.database_url) as conn:
        level = dict(conn.execute(sa.select(alert.c.alert_id, alert.c.level)).all())
        logged = set(conn.execute(sa.select(alert_event.c.alert_id).where(alert_event.c.action == "escalate"))
                     .scalars())
        townships = set(conn.execute(sa.select(supervisor.c.user_id).where(supervisor.c.role == "township"))
                        .scalars())
    # high alerts get 30 days here (20 have passed); medium (7) and low (14) keep their defaults
    assert {a for a, s in severity.items() if s != "high"} == {a for a, lv in level.items() if lv == "township"}
    assert all(level[a] == "village" for a, s in severity.items() if s == "high")
    assert logged == {a for a, lv in level.items() if lv == "township"}
    assert result["returned"]["escalate"]["escalated"] == len(logged)
    told = {p.stem for p in outbox.glob("*.txt")}
    assert told & townships, "no township supervisor was told about the escalated alerts"


# -- (d) operators are told about failures ----------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[SimpleNamespace]:
    """An HTTP server on 127.0.0.1 recording what is POSTed to it; `.url` is its Apprise json:// URL."""
    posts: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            posts.append(json.loads(body or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"json://127.0.0.1:{server.server_port}/", posts=posts)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _context(task_id: str, error: BaseException) -> dict:
    ti = SimpleNamespace(dag_id=DAG_ID, task_id=task_id, map_index=2, run_id="manual__x", try_number=3)
    return {"ti": ti, "exception": error, "params": {}}


def test_failure_callback_writes_outbox_and_posts(
    receiver: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from risk.orchestration.ops_notify import notify_operators

    monkeypatch.setenv("RISK_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RISK_OPERATOR_NOTIFY", receiver.url)

    notify_operators(_context("load_day", ValueError("bad row for 11010519491231002X in payments.csv")))

    lines = (tmp_path / "var" / "outbox" / "operators.jsonl").read_text().splitlines()
    event = json.loads(lines[-1])
    assert (event["dag_id"], event["task_id"], event["map_index"], event["run_id"]) == (
        DAG_ID,
        "load_day",
        2,
        "manual__x",
    )
    assert event["error_class"] == "ValueError" and "11010519491231002X" not in event["error"]
    assert len(receiver.posts) == 1
    assert "load_day" in receiver.posts[0]["title"] and "ValueError" in receiver.posts[0]["message"]


def test_failure_callback_never_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from risk.orchestration.ops_notify import notify_operators

    (tmp_path / "var").write_text("a file where the var folder should be")
    monkeypatch.setenv("RISK_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RISK_OPERATOR_NOTIFY", "json://127.0.0.1:9/ nonsense://x")

    notify_operators(_context("detect", RuntimeError("boom")))  # no exception
    notify_operators({})


def test_missing_landing_fails_the_run_and_notifies(
    airflow_home: Path, receiver: SimpleNamespace, tmp_path: Path
) -> None:
    var_dir = tmp_path / "var"
    with pytest.raises(DagRunFailed) as failure:
        run_dag_test(
            tmp_path / "no-such-landing",
            f"sqlite:///{tmp_path / 'risk.db'}",
            var_dir,
            home=airflow_home,
            mark_success="migrate",  # fail on the landing folder whatever state the warehouse code is in
            env_extra={"RISK_OPERATOR_NOTIFY": receiver.url},
            echo=None,
        )

    result = failure.value.result
    assert result["state"] == "failed"
    failed = [t["task_id"] for t in result["tasks"] if t["state"] == "failed"]
    assert failed == ["find_pending_days"]
    assert "find_pending_days" in str(failure.value) and "does not exist" in str(failure.value)
    events = [json.loads(line) for line in (var_dir / "outbox" / "operators.jsonl").read_text().splitlines()]
    assert [(e["task_id"], e["run_id"], e["error_class"]) for e in events] == [
        ("find_pending_days", result["run_id"], "AirflowFailException")
    ]
    assert len(receiver.posts) == 1 and "find_pending_days" in receiver.posts[0]["title"]
    assert not (tmp_path / "risk.db").exists()
