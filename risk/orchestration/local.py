"""Running the Airflow side locally: an AIRFLOW_HOME, its metadata DB, and `dag.test()`.

Airflow reads its configuration once, when it is first imported, so everything that touches Airflow
runs in a child process started with the environment of `airflow_env()`; the calling process (the
CLI, pytest) never imports airflow. The child is `python -m risk.orchestration.in_airflow '<json>'`.

What a DAG run works on (its settings, landing folder and day) is risk.orchestration.runs. Nothing in this
module imports Airflow or opens a database at import time.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

from risk.errors import (
    DagRunFailed,
    OrchestrationError,
)
from risk.settings import ROOT

DAG_ID = "fund_risk_nightly"
DAGS_FOLDER = ROOT / "dags"
LOAD_TASK = "load_day"
_MARKER = ".risk-airflow-migrated"
PROGRESS = "RISK_PROGRESS "


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
    code = _stream([sys.executable, "-m", "risk.orchestration.in_airflow", json.dumps(request)], env, log_path, echo)
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
            [sys.executable, "-m", "risk.orchestration.in_airflow", json.dumps(request)],
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
            if line.startswith(PROGRESS) and echo is not None:
                echo(_progress_text(json.loads(line[len(PROGRESS) :])))
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
