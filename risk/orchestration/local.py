"""Running the Airflow side locally: an AIRFLOW_HOME, its metadata DB, and `dag.test()`.

Airflow reads its configuration once, when it is first imported, so everything that touches Airflow
runs in a child process started with the environment of `airflow_env()`; the calling process (the
CLI, pytest) never imports airflow. The child is this module itself: `python -m risk.orchestration.local
'<json>'`.

Also here, because the DAGs' tasks and the tests share them: `run_settings()`, the one way the three DAGs
get their settings from a run's params/conf, and `resolve_run()`, which adds the nightly run's landing
folder and until day. Nothing in this module
imports Airflow or opens a database at import time.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from risk.errors import (
    ConfigError,
    DagRunFailed,
    MissingLanding,
    OrchestrationError,
    RunConfigError,
)
from risk.settings import ROOT, Settings

DAG_ID = "fund_risk_nightly"
BUSINESS_TZ = "Asia/Shanghai"
DAGS_FOLDER = ROOT / "dags"
LOAD_TASK = "load_day"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MARKER = ".risk-airflow-migrated"
_PROGRESS = "RISK_PROGRESS "


# -- what a run works on --------------------------------------------------------------------------


@dataclass(frozen=True)
class RunConfig:
    settings: Settings
    landing: Path
    until: str | None

    def require_landing(self) -> Path:
        if not self.landing.is_dir():
            raise MissingLanding(
                f"落地目录不存在 / landing folder {self.landing} does not exist or is not a folder"
            )
        return self.landing


def run_settings(params: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """The settings of a run of any of the three DAGs: from its conf/params (`db`, `var_dir`, `outbox`,
    `landing`, `parts`; each DAG has some of them), else the environment (RISK_DATABASE_URL, RISK_VAR_DIR,
    RISK_OUTBOX, RISK_LANDING, RISK_PARTS, and every other RISK_* variable), else the defaults. A conf
    `parts` that cannot be one raises RunConfigError (the task fails without retries)."""
    if params.get("parts") is not None:
        try:
            Settings.check("parts", params["parts"])
        except ConfigError as error:
            raise RunConfigError(str(error)) from error
    return Settings.load(
        db=params.get("db") or None,
        var_dir=params.get("var_dir") or None,
        outbox=params.get("outbox") or None,
        landing=params.get("landing") or None,
        parts=params.get("parts"),
        env=env,
    )


def resolve_run(
    params: Mapping[str, Any], logical_date: datetime | None, env: Mapping[str, str] | None = None
) -> RunConfig:
    """A run's landing folder, warehouse and `until` day.

    The settings as `run_settings` has them (conf/params, else the environment, else the defaults); the
    landing folder is the conf's `landing`, else RISK_LANDING. `until` falls back to the logical date's day
    in Asia/Shanghai; a run triggered without a logical date and without `until` loads every day.
    """
    settings = run_settings(params, env)
    if settings.landing is None:
        raise RunConfigError(
            "未指定落地目录 / no landing folder: pass conf {'landing': DIR} or set RISK_LANDING"
        )
    until = params.get("until") or business_day(logical_date)
    if until is not None and not _DAY.match(str(until)):
        raise RunConfigError(f"until must be YYYY-MM-DD, got {until!r}")
    return RunConfig(settings=settings, landing=settings.landing.expanduser(), until=until)


def business_day(logical_date: datetime | None) -> str | None:
    """The calendar day of a logical date in Asia/Shanghai (the 02:00 run of D gives D)."""
    if logical_date is None:
        return None
    import pendulum

    return pendulum.instance(logical_date).in_timezone(BUSINESS_TZ).date().isoformat()


# -- an AIRFLOW_HOME ------------------------------------------------------------------------------


def airflow_env(home: Path) -> dict[str, str]:
    """The variables that make Airflow use `home` (SQLite metadata) and the project's dags/."""
    home = Path(home).resolve()
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
    }


def child_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any AIRFLOW* settings of its own, plus `airflow_env`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(airflow_env(home))
    env.update(extra or {})
    return env


def ensure_airflow_home(home: Path) -> Path:
    """Create `home` and migrate its metadata DB (`airflow db migrate`), once per Airflow version."""
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    marker = home / _MARKER
    stamp = f"apache-airflow-core {version('apache-airflow-core')}"
    with (home / ".migrate.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes sharing a home migrate it once
        if marker.is_file() and marker.read_text() == stamp and (home / "airflow.db").is_file():
            return home
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=child_env(home),
            cwd=home,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
            raise OrchestrationError(f"`airflow db migrate` failed for {home}:\n{tail}")
        marker.write_text(stamp)
    return home


# -- dag.test() in a child process -----------------------------------------------------------------


def run_dag_test(
    landing: str | Path,
    db_url: str,
    var_dir: str | Path,
    until: str | None = None,
    home: str | Path | None = None,
    conf_extra: Mapping[str, Any] | None = None,
    *,
    retries: int | None = 0,
    mark_success: str | None = None,
    env_extra: Mapping[str, str] | None = None,
    echo: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Run `fund_risk_nightly` once with `dag.test()` over `landing` into `db_url`; see `run_dag`."""
    conf = {"landing": str(Path(landing).resolve()), "db": db_url, "until": until,
            "var_dir": str(Path(var_dir).resolve())}
    conf.update(conf_extra or {})
    return run_dag(DAG_ID, conf, var_dir, home, retries=retries, mark_success=mark_success,
                   env_extra=env_extra, echo=echo)


def run_dag(
    dag_id: str,
    conf: Mapping[str, Any],
    var_dir: str | Path,
    home: str | Path | None = None,
    *,
    retries: int | None = 0,
    mark_success: str | None = None,
    env_extra: Mapping[str, str] | None = None,
    echo: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Run one of our DAGs once with `dag.test()` and return what it did (JSON-able).

    The Airflow home defaults to `<var_dir>/airflow`. `retries=0` (the default) ends the run at the
    first failure instead of waiting out the DAG's retry delays; None keeps the DAG's own retries.
    `mark_success` is a regex of task ids to mark successful without running them (dag.test's
    mark_success_pattern). Progress lines go to `echo`, Airflow's whole output to
    `<home>/logs/dag-test/<time>.log`. Raises DagRunFailed, naming the failed tasks, unless the run
    ends in success.
    """
    var_dir = Path(var_dir).resolve()
    home = ensure_airflow_home(Path(home) if home else var_dir / "airflow")
    log_dir = home / "logs" / "dag-test"
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    log_path = log_dir / f"{stamp}-{os.getpid()}.log"
    fd, result_name = tempfile.mkstemp(prefix="result-", suffix=".json", dir=log_dir)
    os.close(fd)
    result_path = Path(result_name)
    request = {
        "mode": "test",
        "dag_id": dag_id,
        "conf": dict(conf),
        "retries": retries,
        "mark_success": mark_success,
        "result": str(result_path),
    }
    env = child_env(home, {"RISK_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1", **(env_extra or {})})
    started = time.monotonic()
    code = _stream([sys.executable, "-m", "risk.orchestration.local", json.dumps(request)], env, log_path, echo)
    try:
        result = json.loads(result_path.read_text() or "null")
    finally:
        result_path.unlink(missing_ok=True)
    if not result:
        raise OrchestrationError(
            f"dag.test() ended without a result (exit code {code}); see {log_path}:\n{_tail(log_path)}"
        )
    result["log"] = str(log_path)
    result["seconds"] = round(time.monotonic() - started, 1)
    if result.get("state") != "success":
        raise DagRunFailed(_failure_message(dag_id, result, log_path), result)
    return result


def describe_dags(home: str | Path) -> dict[str, Any]:
    """Parse the dags folder with DagBag in a child process: import errors and each DAG's settings."""
    home = ensure_airflow_home(Path(home))
    fd, result_name = tempfile.mkstemp(prefix="describe-", suffix=".json", dir=home)
    os.close(fd)
    request = {"mode": "describe", "result": result_name}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "risk.orchestration.local", json.dumps(request)],
            env=child_env(home),
            capture_output=True,
            text=True,
        )
        text = Path(result_name).read_text()
    finally:
        Path(result_name).unlink(missing_ok=True)
    if proc.returncode != 0 or not text:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise OrchestrationError(f"could not parse {DAGS_FOLDER} (exit code {proc.returncode}):\n{tail}")
    return json.loads(text)


def _stream(cmd: list[str], env: dict[str, str], log_path: Path, echo: Callable[[str], None] | None) -> int:
    with (
        log_path.open("w", encoding="utf-8") as log,
        subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if line.startswith(_PROGRESS) and echo is not None:
                echo(_progress_text(json.loads(line[len(_PROGRESS) :])))
        return proc.wait()


def _progress_text(event: dict[str, Any]) -> str:
    task = event["task_id"] + (f"[{event['label']}]" if event.get("label") else "")
    dag_id = event.get("dag_id", DAG_ID)
    if event["state"] == "running":
        return f"[{dag_id}] {task} running"
    suffix = f" after {event['seconds']}s" if event.get("seconds") is not None else ""
    error = f": {event['error']}" if event.get("error") else ""
    return f"[{dag_id}] {task} {event['state']}{suffix}{error}"


def _failure_message(dag_id: str, result: dict[str, Any], log_path: Path) -> str:
    if result.get("import_errors") or result.get("state") == "import_error":
        errors = "; ".join(
            f"{path}: {(err.strip().splitlines() or ['?'])[-1]}"
            for path, err in result["import_errors"].items()
        )
        return f"{dag_id} did not parse: {errors or 'DAG not found'} (Airflow log: {log_path})"

    def name(t: dict[str, Any]) -> str:
        return t["task_id"] + (f"[{t['label']}]" if t.get("label") else "")

    tasks = result.get("tasks", [])
    failed = [
        f"{name(t)}" + (f" ({t['error']})" if t.get("error") else "") for t in tasks if t["state"] == "failed"
    ]
    blocked = [name(t) for t in tasks if t["state"] not in ("success", "skipped", "failed")]
    message = f"{dag_id} run {result.get('run_id')} ended {result.get('state')}"
    message += f"; failed: {', '.join(failed) or 'none'}"
    if blocked:
        message += f"; not run: {', '.join(blocked)}"
    return f"{message}. Airflow log: {log_path}"


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- the child process (imports Airflow) ------------------------------------------------------------


def _child_main(request: dict[str, Any]) -> int:
    from airflow.dag_processing.dagbag import DagBag

    result_path = Path(request["result"])
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    import_errors = {str(k): str(v) for k, v in bag.import_errors.items()}
    if request["mode"] == "describe":
        described = {dag_id: _describe(dag) for dag_id, dag in bag.dags.items()}
        result_path.write_text(json.dumps({"import_errors": import_errors, "dags": described}))
        return 0
    dag_id = request.get("dag_id", DAG_ID)
    if import_errors or dag_id not in bag.dags:
        result_path.write_text(json.dumps({"state": "import_error", "import_errors": import_errors}))
        return 2
    dag = bag.dags[dag_id]
    if request.get("retries") is not None:
        for operator in dag.tasks:
            operator.retries = request["retries"]
    progress = _Progress()
    from airflow.sdk.listener import get_listener_manager

    get_listener_manager().add_listener(_listener(progress))
    # No logical date, as for a run triggered by hand: `until` comes from the conf only.
    dag_run = dag.test(
        run_conf=request["conf"], logical_date=None, mark_success_pattern=request.get("mark_success")
    )
    result_path.write_text(json.dumps(_summarise(dag_run, progress.errors), default=str))
    return 0


class _Progress:
    """Collects task starts/ends from the Airflow listener below and prints one line for each."""

    def __init__(self) -> None:
        self.started: dict[tuple[str, int], float] = {}
        self.errors: dict[tuple[str, int], str] = {}

    def emit(self, ti: Any, state: str, error: Any = None) -> None:
        key = (ti.task_id, ti.map_index)
        event: dict[str, Any] = {"dag_id": ti.dag_id, "task_id": ti.task_id, "state": state, "label": _label(ti)}
        if state == "running":
            self.started[key] = time.monotonic()
        elif key in self.started:
            event["seconds"] = round(time.monotonic() - self.started.pop(key), 1)
        if error is not None:
            event["error"] = self.errors[key] = _error_text(error)
        print(_PROGRESS + json.dumps(event, default=str), flush=True)


def _listener(progress: _Progress) -> Any:
    from airflow.listeners import hookimpl

    class Listener:
        @hookimpl
        def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
            progress.emit(task_instance, "running")

        @hookimpl
        def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
            progress.emit(task_instance, "success")

        @hookimpl
        def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
            state = _value(getattr(task_instance, "state", None))
            progress.emit(task_instance, "up_for_retry" if state == "up_for_retry" else "failed", error or "")

        @hookimpl
        def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
            progress.emit(task_instance, "skipped")

    return Listener()


def _summarise(dag_run: Any, errors: dict[tuple[str, int], str]) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = dag_run.get_task_instances(session=session)
        query = XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, key="return_value")
        rows: Any = session.scalars(query)
        returned = {(row.task_id, row.map_index): XComModel.deserialize_value(row) for row in rows}
        tasks = [
            {
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "label": ti.rendered_map_index or (str(ti.map_index) if ti.map_index >= 0 else None),
                "state": _value(ti.state),
                "try_number": ti.try_number,
                "error": errors.get((ti.task_id, ti.map_index)),
            }
            for ti in sorted(tis, key=lambda ti: (ti.task_id, ti.map_index))
        ]
    # by map index = delivery order, also when dag.test() ran the mapped days out of order (see the DAG)
    loads = [v for (task_id, _), v in sorted(returned.items()) if task_id == LOAD_TASK and v]
    return {
        "dag_id": dag_run.dag_id,
        "run_id": dag_run.run_id,
        "state": _value(dag_run.state),
        "tasks": tasks,
        "pending_days": returned.get(("find_pending_days", -1)),
        "loaded": [summary for batch in loads for summary in batch],
        "detect": [v for (task_id, _), v in sorted(returned.items()) if task_id == "detect"],
        "quality_report": returned.get(("quality_report", -1)),
        "returned": {task_id: v for (task_id, index), v in sorted(returned.items()) if index == -1},
    }


def _describe(dag: Any) -> dict[str, Any]:
    def callbacks(obj: Any) -> list[str]:
        value = obj.on_failure_callback or []
        return [
            f"{cb.__module__}.{cb.__qualname__}" for cb in (value if isinstance(value, list) else [value])
        ]

    return {
        "schedule": dag.schedule if isinstance(dag.schedule, str) else repr(dag.schedule),
        "timetable": type(dag.timetable).__name__,
        "timezone": dag.timezone.name,
        "start_date": dag.start_date.isoformat() if dag.start_date else None,
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "params": sorted(dag.params.keys()),
        "on_failure_callback": callbacks(dag),
        "tasks": {
            t.task_id: {
                "retries": t.retries,
                "retry_delay_seconds": t.retry_delay.total_seconds(),
                "on_failure_callback": callbacks(t),
                "max_active_tis_per_dagrun": t.max_active_tis_per_dagrun,
                "mapped": type(t).__name__.endswith("MappedOperator"),
                "upstream": sorted(t.upstream_task_ids),
                "trigger_rule": _value(t.trigger_rule),
            }
            for t in dag.tasks
        },
    }


def _label(ti: Any) -> str | None:
    rendered = getattr(ti, "rendered_map_index", None)
    return rendered or (str(ti.map_index) if ti.map_index is not None and ti.map_index >= 0 else None)


def _error_text(error: Any) -> str:
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {error}"
    else:
        text = str(error)
    return text if len(text) <= 300 else text[:299] + "…"


def _value(state: Any) -> Any:
    return getattr(state, "value", state)


if __name__ == "__main__":
    sys.exit(_child_main(json.loads(sys.argv[1])))
