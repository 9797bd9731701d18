"""The real Airflow processes, started locally: `airflow api-server`, `scheduler` and `dag-processor`, and,
for the CeleryExecutor, Celery workers (`airflow celery worker`, see testbed.celery_workers).

`airflow_services(home, metadata_url, extra_env)` migrates the metadata DB, starts each service as a
subprocess in a session of its own (output in `<home>/logs/<service>.log`), waits until the api-server
answers its health endpoint and reports every started service healthy (and every Celery worker has said it
is ready), and yields an `AirflowServices`:
the base URL, a JWT from the simple auth manager, authenticated REST API v2 calls, and the DAG-run helpers
(`trigger_and_wait`). On exit it ends every process it started, with everything they started in turn
(LocalExecutor or Celery workers, task supervisors and their tasks): SIGTERM, then SIGKILL after a
timeout, also when the body raised.

Configuration (testbed.airflow_env), all through the environment, as Airflow reads it once at import:
`risk.orchestration.local.child_env` (AIRFLOW_HOME, our dags folder, no examples, LocalExecutor, logs under
home), the metadata DB at `metadata_url` (for PostgreSQL the async URL uses psycopg 3, which is installed,
instead of Airflow's default asyncpg, which is not), the api-server on 127.0.0.1 at a free port, the
execution API URL the LocalExecutor's tasks call, one JWT secret shared by every process, and one
simple-auth-manager user (`admin`, role admin) whose password we write ourselves. With `celery=CeleryWorkers(…)`
the executor is the CeleryExecutor (testbed.celery_workers.celery_env) and the workers start beside the
services.

Like `risk.orchestration.local`, this module never imports airflow: Airflow runs only in the children.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from risk.errors import ServiceError
from testbed import celery_workers
from testbed.airflow_env import (
    PASSWORDS_FILE,
    USERNAME,
    async_metadata_url,
    command,
    free_port,
    services_env,
)
from testbed.celery_workers import CeleryWorkers
from testbed.processes import session_pids, signal_all, tail, task_name

SERVICES: tuple[str, ...] = ("api-server", "scheduler", "dag-processor")
HEALTH_PATH = "/api/v2/monitor/health"
TOKEN_PATH = "/auth/token"  # the simple auth manager's login (POST {"username", "password"})
FINAL_STATES = frozenset({"success", "failed"})
# how /api/v2/monitor/health names the services it reports on
_HEALTH_KEYS = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}


# -- the running services --------------------------------------------------------------------------


@dataclass
class RunResult:
    """A DAG run as the REST API reports it, with its task instances."""

    run: dict[str, Any]
    task_instances: list[dict[str, Any]]
    seconds: float
    logs: Path | None = None  # the run's task logs under AIRFLOW_HOME

    @property
    def state(self) -> str:
        return str(self.run.get("state"))

    @property
    def task_states(self) -> dict[str, str]:
        """`task_id` (or `task_id[map_index]` for mapped ones) → state."""
        return {task_name(ti): str(ti.get("state")) for ti in self.task_instances}

    def describe(self, log_lines: int = 30) -> str:
        """One paragraph for a failure message: the run, every task's state, the failed tasks' log tails."""
        states = ", ".join(f"{name}={state}" for name, state in sorted(self.task_states.items()))
        text = (f"{self.run.get('dag_id')} run {self.run.get('dag_run_id')} is {self.state} after "
                f"{self.seconds:.0f}s; tasks: {states or 'none'}")
        bad = [ti for ti in self.task_instances if ti.get("state") in ("failed", "up_for_retry", "upstream_failed")]
        for ti in bad:
            for path in self._log_files(ti):
                text += f"\n--- {path} ---\n{tail(path, log_lines)}"
        return text

    def _log_files(self, ti: dict[str, Any]) -> list[Path]:
        if self.logs is None or not self.logs.is_dir():
            return []
        folder = self.logs / f"task_id={ti.get('task_id')}"
        index = ti.get("map_index")
        if index is not None and index >= 0:
            folder = folder / f"map_index={index}"
        return sorted(folder.glob("attempt=*.log"))


class AirflowServices:
    """Started Airflow services: their processes, logs, and an authenticated REST client."""

    def __init__(self, home: Path, base_url: str, env: dict[str, str]) -> None:
        self.home = home
        self.base_url = base_url
        self.env = env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.workers: list[str] = []  # the Celery workers' names, which their tasks record as hostname
        self._client = httpx.Client(base_url=base_url, timeout=30.0)
        self._token: str | None = None

    # processes

    def start(self, service: str, port: int) -> None:
        self._spawn(service, command(service, port), self.env)

    def start_workers(self, workers: CeleryWorkers) -> None:
        """`workers.count` Celery workers, each named (see testbed.celery_workers), with its own log server port."""
        for name in workers.names:
            env = {**self.env, **celery_workers.worker_env(name, free_port())}
            self._spawn(name, celery_workers.worker_command(name, workers, self.home), env)
            self.workers.append(name)

    def _spawn(self, name: str, cmd: list[str], env: Mapping[str, str]) -> None:
        log_path = self.home / "logs" / f"{name.split('@')[0]}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.logs[name] = log_path
        with log_path.open("ab") as log:
            self.processes[name] = subprocess.Popen(
                cmd, env=dict(env), cwd=self.home, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def check_running(self) -> None:
        """Raise, naming the service and showing its log's tail, if any service has exited."""
        for service, proc in self.processes.items():
            code = proc.poll()
            if code is not None:
                raise ServiceError(
                    f"airflow {service} exited with code {code}; {self.logs[service]}:\n"
                    f"{tail(self.logs[service])}"
                )

    def pids(self) -> set[int]:
        """Every live process of the sessions our services lead: the services and all they started."""
        sessions = {proc.pid for proc in self.processes.values()}
        return session_pids(sessions)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to every process of our sessions (also those started meanwhile); SIGKILL to whatever
        is left after `timeout`. Waits until none is left (or 10 s more)."""
        sessions = {proc.pid for proc in self.processes.values()}
        self._reap()
        leaders = {proc.pid for proc in self.processes.values() if proc.returncode is None}
        signalled: set[int] = set()
        deadline = time.monotonic() + timeout
        while (left := session_pids(sessions)) and time.monotonic() < deadline:
            signalled |= signal_all(left - signalled, leaders - signalled, signal.SIGTERM)
            time.sleep(0.2)
            self._reap()
        kill_deadline = time.monotonic() + 10
        while (left := session_pids(sessions)) and time.monotonic() < kill_deadline:
            signal_all(left, set(), signal.SIGKILL)
            time.sleep(0.1)
            self._reap()
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
        self._client.close()

    def _reap(self) -> None:
        for proc in self.processes.values():
            proc.poll()

    # REST

    @property
    def password(self) -> str:
        return str(json.loads((self.home / PASSWORDS_FILE).read_text())[USERNAME])

    def token(self, refresh: bool = False) -> str:
        """A JWT from the simple auth manager (`POST /auth/token`), kept until it is refused."""
        if self._token is None or refresh:
            response = self._client.post(TOKEN_PATH, json={"username": USERNAME, "password": self.password})
            if response.status_code != 201:
                raise ServiceError(f"POST {TOKEN_PATH} answered {response.status_code}: {response.text[:500]}")
            self._token = str(response.json()["access_token"])
        return self._token

    def request(self, method: str, path: str, *, expect: Iterable[int] = (200,), **kwargs: Any) -> Any:
        """An authenticated call (the JSON it answers); anything but `expect` raises ServiceError."""
        response = self._send(method, path, **kwargs)
        if response.status_code == 401:  # the token expired
            response = self._send(method, path, refresh=True, **kwargs)
        if response.status_code not in set(expect):
            raise ServiceError(f"{method} {path} answered {response.status_code}: {response.text[:1000]}")
        return response.json() if response.content else None

    def _send(self, method: str, path: str, refresh: bool = False, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(refresh)}"}
        return self._client.request(method, path, headers=headers, **kwargs)

    def health(self) -> dict[str, Any] | None:
        """/api/v2/monitor/health (no authentication), or None while the api-server does not answer."""
        try:
            response = self._client.get(HEALTH_PATH, timeout=5.0)
        except httpx.TransportError:
            return None
        return response.json() if response.status_code == 200 else None

    def wait_until_healthy(self, timeout: float) -> None:
        """Until the api-server answers and reports every other started service healthy, and every Celery
        worker has logged that it is ready (the health endpoint knows nothing of workers)."""
        deadline = time.monotonic() + timeout
        pending = list(self.processes)
        health = None
        while True:
            self.check_running()
            health = self.health()
            if health is not None:
                pending = [
                    s for s in self.processes
                    if s in _HEALTH_KEYS and (health.get(_HEALTH_KEYS[s]) or {}).get("status") != "healthy"
                ]
                pending += [w for w in self.workers if celery_workers.READY not in tail(self.logs[w], 200)]
                if not pending:
                    return
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        details = "\n".join(f"--- {self.logs[s]} ---\n{tail(self.logs[s])}" for s in pending)
        raise ServiceError(
            f"airflow {', '.join(pending)} did not become ready within {timeout:.0f}s "
            f"(health: {json.dumps(health) if health else 'no answer from the api-server'})\n{details}"
        )

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """The DAG once the dag-processor has parsed it. An import error of a file named after the DAG
        fails at once; other files' import errors only appear in the message if the DAG never comes."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_running()
            dag = self.request("GET", f"/api/v2/dags/{quote(dag_id)}", expect=(200, 404))
            if dag and dag.get("dag_id") == dag_id:
                return dict(dag)
            errors = self.request("GET", "/api/v2/importErrors", params={"limit": 100})["import_errors"]
            own = [e for e in errors if Path(str(e.get("filename"))).stem == dag_id]
            if own or time.monotonic() > deadline:
                found = "; ".join(f"{e.get('filename')}: {e.get('stack_trace')}" for e in (own or errors))
                message = f"{dag_id} was not parsed; import errors: {found[:3000] or 'none'}"
                if "dag-processor" in self.logs:
                    message += f"\n{self.logs['dag-processor']}:\n{tail(self.logs['dag-processor'], 20)}"
                raise ServiceError(message)
            time.sleep(1.0)

    def task_ids(self, dag_id: str) -> set[str]:
        """The DAG's tasks as the api-server knows them (from the serialized DAG)."""
        return {t["task_id"] for t in self.request("GET", f"/api/v2/dags/{quote(dag_id)}/tasks")["tasks"]}

    def set_paused(self, dag_id: str, paused: bool) -> dict[str, Any]:
        return dict(self.request("PATCH", f"/api/v2/dags/{quote(dag_id)}", json={"is_paused": paused}))

    def trigger(self, dag_id: str, conf: Mapping[str, Any], logical_date: str | None = None) -> dict[str, Any]:
        """A manual run with `conf` (no logical date by default, as when triggered by hand)."""
        body = {"logical_date": logical_date, "conf": dict(conf)}
        return dict(self.request("POST", f"/api/v2/dags/{quote(dag_id)}/dagRuns", json=body))

    def get_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/api/v2/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}"))

    def list_runs(self, dag_id: str) -> list[dict[str, Any]]:
        answer = self.request("GET", f"/api/v2/dags/{quote(dag_id)}/dagRuns", params={"limit": 100})
        return list(answer["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (mapped ones each with its map_index), paged through."""
        path = f"/api/v2/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        found: list[dict[str, Any]] = []
        while True:
            page = self.request("GET", path, params={"limit": 100, "offset": len(found)})
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float, *, poll: float = 2.0, stop_on_retry: bool = False
    ) -> RunResult:
        """Poll the run until it is success or failed (or, with `stop_on_retry`, a task waits for a
        retry: the nightly DAG retries after 10 minutes). Raises ServiceError after `timeout` or when a
        service dies meanwhile."""
        started = time.monotonic()
        logs = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        while True:
            self.check_running()
            run = self.get_run(dag_id, run_id)
            tis = self.task_instances(dag_id, run_id)
            result = RunResult(run, tis, time.monotonic() - started, logs)
            if result.state in FINAL_STATES:
                return result
            if stop_on_retry and any(ti.get("state") == "up_for_retry" for ti in tis):
                return result
            if time.monotonic() - started > timeout:
                raise ServiceError(f"no final state within {timeout:.0f}s: {result.describe()}")
            time.sleep(poll)


def trigger_and_wait(
    services: AirflowServices,
    dag_id: str,
    conf: Mapping[str, Any],
    *,
    timeout: float = 600.0,
    unpause: bool = True,
    stop_on_retry: bool = True,
) -> RunResult:
    """Wait for `dag_id` to be parsed, unpause it, trigger a run with `conf` through the REST API and
    wait for its final state: the run and its task instances."""
    services.wait_for_dag(dag_id)
    if unpause:
        services.set_paused(dag_id, False)
    run = services.trigger(dag_id, conf)
    return services.wait_for_run(dag_id, run["dag_run_id"], timeout, stop_on_retry=stop_on_retry)


@contextlib.contextmanager
def airflow_services(
    home: Path | str,
    metadata_url: str,
    extra_env: Mapping[str, str] | None = None,
    services: Sequence[str] = SERVICES,
    port: int | None = None,
    *,
    celery: CeleryWorkers | None = None,
    startup_timeout: float = 180.0,
    stop_timeout: float = 20.0,
) -> Iterator[AirflowServices]:
    """Migrate the metadata DB at `metadata_url`, start `services` (and, with `celery`, that many Celery
    workers under the CeleryExecutor), yield them once healthy; stop them all on exit (see the module's
    docstring)."""
    home = Path(home).resolve()
    (home / "logs").mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = services_env(home, metadata_url, port, extra_env, celery)
    passwords = home / PASSWORDS_FILE
    if not passwords.is_file():  # ours, so the password is known; Airflow generates only missing users
        passwords.write_text(json.dumps({USERNAME: secrets.token_urlsafe(16)}) + "\n")
        passwords.chmod(0o600)
    migrate(env, home)
    running = AirflowServices(home, f"http://127.0.0.1:{port}", env)
    try:
        for service in services:
            running.start(service, port)
        if celery is not None:
            running.start_workers(celery)
        running.wait_until_healthy(startup_timeout)
        yield running
    finally:
        running.stop(stop_timeout)
        if celery is not None:
            celery_workers.forget_queue(celery)


def migrate(env: Mapping[str, str], home: Path) -> None:
    """`airflow db migrate` with the services' environment (output in <home>/logs/db-migrate.log)."""
    log_path = home / "logs" / "db-migrate.log"
    with log_path.open("wb") as log:
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=dict(env), cwd=home,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    if proc.returncode != 0:
        raise ServiceError(f"`airflow db migrate` failed (exit code {proc.returncode}); {log_path}:\n{tail(log_path)}")


__all__ = [
    "SERVICES",
    "AirflowServices",
    "CeleryWorkers",
    "RunResult",
    "ServiceError",
    "airflow_services",
    "async_metadata_url",
    "free_port",
    "services_env",
    "trigger_and_wait",
]
