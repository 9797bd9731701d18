"""Celery workers beside the Airflow services, started natively (`airflow celery worker`): the
CeleryExecutor as docker-compose.yaml deploys it, on one machine, for the tests and benchmarks that run the
nightly DAG with several workers.

`CeleryWorkers(count, …)` says how many workers, how many tasks each runs at once and which Redis is the
broker. `celery_env` is what every Airflow process of the run shares: the CeleryExecutor, the broker, the
result backend in Airflow's own PostgreSQL metadata database, and a queue of this run's own, so that runs
sharing one Redis never take each other's tasks. `worker_env` is what each worker has of its own: its name
(a task records it as its hostname, so that the REST API says which worker ran which task) and the port it
serves its task logs on (two workers on one machine cannot share one).

Like testbed.services, this module never imports airflow; `worker_hostname` is what Airflow's task
supervisor calls ([core] hostname_callable) inside a worker.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from risk.settings import Settings

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
WORKER_NAME = Settings.variable("celery_worker")  # RISK_CELERY_WORKER: names a worker for worker_hostname
READY = " ready."  # Celery's log line once a worker consumes its queues: "celery@name ready."
VISIBILITY_TIMEOUT = 6 * 3600  # seconds: fund_risk_nightly's dagrun_timeout


def _queue() -> str:
    return f"fund-risk-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class CeleryWorkers:
    """`count` workers, each running up to `concurrency` tasks at once, taking this run's `queue` from the
    Redis `broker`."""

    count: int = 2
    concurrency: int = 1
    # the Redis of the test suite's workers (tests/integration/test_celery.py); not a setting of the system,
    # whose broker is Airflow's own (AIRFLOW__CELERY__BROKER_URL): read here, not in risk.settings
    broker: str = field(default_factory=lambda: os.environ.get("RISK_TEST_REDIS_URL") or DEFAULT_BROKER)
    queue: str = field(default_factory=_queue)

    @property
    def names(self) -> list[str]:
        """The workers' Celery node names, which their tasks record as hostname."""
        host = socket.getfqdn()
        return [f"worker-{n}@{host}" for n in range(1, self.count + 1)]


def result_backend(metadata_url: str) -> str:
    """Celery's database result backend in Airflow's metadata database (as docker-compose.yaml has it)."""
    return f"db+{metadata_url}"


def celery_env(metadata_url: str, workers: CeleryWorkers) -> dict[str, str]:
    """The settings every Airflow process (scheduler, dag-processor, api-server, workers) shares."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": workers.broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend(metadata_url),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(workers.concurrency),
        # every task goes to this run's queue (the dag-processor serializes it into the tasks)
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": workers.queue,
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
        # a task not acknowledged within this is given to another worker: the nightly run's own timeout
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
    }


def worker_env(name: str, log_server_port: int) -> dict[str, str]:
    """What one worker has of its own."""
    return {WORKER_NAME: name, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_server_port)}


def worker_command(name: str, workers: CeleryWorkers, home: Path) -> list[str]:
    """`airflow celery worker` for one worker of this run: its name, this run's queue, its own pid file
    (the default one is shared by every worker of an AIRFLOW_HOME); without mingle and gossip, which would
    talk to the workers of other runs on the same Redis."""
    return [sys.executable, "-m", "airflow", "celery", "worker", "--celery-hostname", name,
            "--queues", workers.queue, "--concurrency", str(workers.concurrency),
            "--pid", str(home / f"{name.split('@')[0]}.pid"), "--without-mingle", "--without-gossip"]


def worker_hostname() -> str:
    """The hostname a task records ([core] hostname_callable): the worker's name where one was given
    (several workers on one machine), else the machine's."""
    return Settings.read("celery_worker") or socket.getfqdn()


def forget_queue(workers: CeleryWorkers) -> None:
    """Delete what this run's queue left in Redis (kombu's binding set; the queue itself, if any message
    was left in it). Best effort: a Redis that went away keeps them."""
    import redis

    try:
        client = redis.Redis.from_url(workers.broker, socket_timeout=5)
        client.delete(workers.queue, f"_kombu.binding.{workers.queue}")
        client.close()
    except redis.RedisError:
        return
