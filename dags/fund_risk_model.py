"""fund_risk_model: every week, train a new behaviour model, make it current, and report drift.

Declarations only: the tasks call `risk.pipeline`, the same functions `risk model train` and
`risk model report` call. The warehouse comes from the run's conf (`{"db": URL, "var_dir": DIR,
"as_of": "YYYY-MM-DD"}`), else RISK_DATABASE_URL / RISK_VAR_DIR (risk.orchestration.runs.run_settings, as
for the other two DAGs); `as_of` else the newest loaded day.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from risk.orchestration.ops_notify import notify_operators

_OPTIONAL_TEXT = ["null", "string"]


def _settings():
    from risk.orchestration.runs import run_settings

    params = get_current_context()["params"]
    return run_settings(params), params.get("as_of")


@dag(
    dag_id="fund_risk_model",
    description="Weekly: train the behaviour model (isolation forest), register it, report drift and precision",
    schedule="0 4 * * 0",  # Sundays 04:00, after the nightly run
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "fund-risk", "retries": 1, "retry_delay": timedelta(minutes=30),
                  "on_failure_callback": notify_operators},
    params={
        "db": Param(None, type=_OPTIONAL_TEXT, description="warehouse URL (default: RISK_DATABASE_URL)"),
        "var_dir": Param(None, type=_OPTIONAL_TEXT, description="reports folder (default: RISK_VAR_DIR); the model is kept in the warehouse"),
        "as_of": Param(None, type=_OPTIONAL_TEXT, description="train on the window ending here (default: newest day)"),
    },
    tags=["fund-risk"],
)
def fund_risk_model():
    @task
    def drift_before() -> dict:
        """How the current model's scores have drifted since it was trained (before it is replaced)."""
        from risk import pipeline

        settings, _ = _settings()
        return pipeline.model_report(settings)

    @task
    def train() -> str:
        from risk import pipeline

        settings, as_of = _settings()
        return pipeline.train_model(settings, as_of=as_of)["version"]

    drift_before() >> train()


fund_risk_model()
