"""Fixtures for the integration tests that run Airflow."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An AIRFLOW_HOME with a migrated SQLite metadata DB, made once per test session (≈5 s).

    The test process itself never imports airflow: risk.orchestration.local runs it in child processes.
    """
    from risk.orchestration.local import ensure_airflow_home

    return ensure_airflow_home(tmp_path_factory.mktemp("airflow-home"))
