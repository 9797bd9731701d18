"""How the locally started Airflow services are configured (testbed.services): every setting
through the environment, as Airflow reads it once at import; free ports; the command of each service."""
from __future__ import annotations

import os
import secrets
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from risk.orchestration.local import child_env
from testbed import celery_workers
from testbed.celery_workers import CeleryWorkers

CHECKOUT = Path(__file__).resolve().parents[1]  # where testbed/ is: not installed with risk

USERNAME = "admin"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def async_metadata_url(url: str) -> str | None:
    """The async URL Airflow's api-server should use, where its own guess would not work.

    Airflow derives `postgresql+asyncpg://…` from a PostgreSQL URL; asyncpg is not installed here, but
    psycopg 3 is, and SQLAlchemy's `postgresql+psycopg` dialect is async-capable. None: keep Airflow's.
    """
    scheme, _, rest = url.partition(":")
    if scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        return None
    try:
        import asyncpg  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return f"postgresql+psycopg:{rest}"
    return None


def services_env(
    home: Path, metadata_url: str, port: int, extra_env: Mapping[str, str] | None = None,
    celery: CeleryWorkers | None = None,
) -> dict[str, str]:
    """The environment of every Airflow process of one `airflow_services` (extra_env wins)."""
    base_url = f"http://127.0.0.1:{port}"
    env = child_env(home)
    env.update(
        {
            # every Airflow process imports testbed.celery_workers.worker_hostname ([core] hostname_callable)
            "PYTHONPATH": os.pathsep.join(p for p in (str(CHECKOUT), env.get("PYTHONPATH", "")) if p),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # a forking LocalExecutor starts `parallelism` workers at once (default 32)
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": f"{base_url}/",
            # where the LocalExecutor's task supervisors reach the api-server's execution API
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            # the scheduler signs the tasks' tokens, the api-server checks them: one secret for all
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),  # HS512 wants >= 64 bytes
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            # the scheduler serves task logs on this port (default 8793: two test sessions would clash)
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / PASSWORDS_FILE),
            "PYTHONUNBUFFERED": "1",
        }
    )
    async_url = async_metadata_url(metadata_url)
    if async_url:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = async_url
    if celery is not None:
        env.update(celery_workers.celery_env(metadata_url, celery))
    env.update(extra_env or {})
    return env


def command(service: str, port: int) -> list[str]:
    cmd = [sys.executable, "-m", "airflow", service]
    if service == "api-server":
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return cmd


