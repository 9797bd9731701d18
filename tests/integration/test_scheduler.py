"""The real Airflow processes schedule and run the nightly pipeline.

`airflow api-server`, `scheduler` and `dag-processor` (LocalExecutor, metadata in a PostgreSQL database of
their own) are started by testbed.services; the test unpauses `fund_risk_nightly`, triggers it
through REST API v2 with a JWT from the simple auth manager, waits for the run, and checks that the
PostgreSQL warehouse holds exactly the alerts `risk run` produces from the same landing. Every process
started is gone afterwards, whatever happened.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from nightly_runs import DAYS, UNTIL, reference_run, sample_landing
from warehouses import pg_database

from risk.orchestration.local import DAG_ID

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.slow]

RUN_TIMEOUT = 420.0  # seconds; the run takes about a minute under dag.test()


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return sample_landing(tmp_path / "landing")


def test_scheduler_runs_the_nightly_dag_triggered_through_the_rest_api(landing: Path, tmp_path: Path) -> None:
    from testbed.services import airflow_services, trigger_and_wait

    started = time.monotonic()
    conf = {
        "landing": str(landing),
        "until": UNTIL,
        "var_dir": str(tmp_path / "var-airflow"),
        "outbox": str(tmp_path / "outbox-airflow"),
    }
    env = {
        # only the run we trigger: unpausing must not also start the cron schedule's latest run
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # where notify_operators writes if a task fails (never the repository's var/)
        "RISK_VAR_DIR": conf["var_dir"],
    }
    with (
        pg_database() as metadata_url,
        pg_database() as warehouse_url,
        pg_database() as direct_url,
        # what `risk run` makes of the same landing, in its own process while Airflow works
        reference_run(landing, direct_url, tmp_path / "var-direct") as reference,
    ):
        conf["db"] = warehouse_url
        with airflow_services(tmp_path / "airflow", metadata_url, env) as services:
            assert services.token().count(".") == 2  # a JWT
            seen = services.pids()
            assert len(seen) >= 3
            result = trigger_and_wait(services, DAG_ID, conf, timeout=RUN_TIMEOUT)
            tasks = services.task_ids(DAG_ID)
            seen |= services.pids()
            runs = services.list_runs(DAG_ID)
        left = services.pids()
        airflow_seconds = time.monotonic() - started

        assert left == set(), f"processes still running after the services stopped: {sorted(left)}"
        assert result.state == "success", result.describe()
        assert [r["dag_run_id"] for r in runs] == [result.run["dag_run_id"]]
        assert result.run["run_type"] == "manual" and result.run["logical_date"] is None
        assert result.run["conf"] == conf
        states = result.task_states
        # every task of the DAG ran (mapped ones once per item), and all of them succeeded
        assert {"migrate", "find_pending_days", "load_day", "quality_report", "send_digests"} <= tasks
        assert {name.split("[")[0] for name in states} == tasks
        assert set(states.values()) == {"success"}, result.describe()
        assert sorted(name for name in states if name.startswith("load_day[")) == [
            f"load_day[{i}]" for i in range(len(DAYS))
        ]

        by_airflow = _alerts(warehouse_url)
        reference.finish()
        by_cli = _alerts(direct_url)

    assert by_cli, "the sample produced no alerts at all"
    rules = sorted({row["rule"] for row in by_cli})
    assert [r for r in by_airflow if r["rule"] != "anomaly"] == [r for r in by_cli if r["rule"] != "anomaly"]
    anomalies_airflow = [r for r in by_airflow if r["rule"] == "anomaly"]
    anomalies_cli = [r for r in by_cli if r["rule"] == "anomaly"]
    assert len(anomalies_airflow) == len(anomalies_cli)
    assert anomalies_airflow == anomalies_cli  # scoring is seeded: the same people, scores and evidence
    print(f"Airflow services + run: {airflow_seconds:.0f}s (run {result.seconds:.0f}s), "
          f"{len(seen)} processes seen, {len(by_cli)} alerts ({', '.join(rules)}); "
          f"whole test {time.monotonic() - started:.0f}s")


def _alerts(url: str) -> list[dict]:
    from risk.alerts import export as alerts
    from risk.db import gateway

    with gateway.transaction(url) as conn:
        return alerts.export_rows(conn)

