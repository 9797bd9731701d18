"""fund_risk_escalation: every day, alerts nobody acknowledged within their SLA move up one level.

Declarations only: the task calls `risk.pipeline.escalate`, as `risk alerts escalate` does. The warehouse
comes from the run's conf (`{"db": URL}`), else RISK_DATABASE_URL.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from risk.ops_notify import notify_operators


@dag(
    dag_id="fund_risk_escalation",
    description="Daily: escalate alerts not acknowledged within their SLA (village → township → county)",
    schedule="0 7 * * *",  # 07:00, before the working day
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "fund-risk", "retries": 2, "retry_delay": timedelta(minutes=10),
                  "on_failure_callback": notify_operators},
    params={"db": Param(None, type=["null", "string"], description="warehouse URL (default: RISK_DATABASE_URL)")},
    tags=["fund-risk"],
)
def fund_risk_escalation():
    @task
    def escalate() -> dict:
        from risk import pipeline
        from risk.settings import Settings

        params = get_current_context()["params"]
        result = pipeline.escalate(Settings.load(db=params.get("db") or None))
        return {"escalated": result["escalated"]}

    escalate()


fund_risk_escalation()
