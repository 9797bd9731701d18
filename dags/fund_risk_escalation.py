"""fund_risk_escalation: every day, alerts nobody acknowledged within their SLA move up one level.

Declarations only: the tasks call `risk.pipeline.escalate`, as `risk alerts escalate` does, then
`risk.pipeline.notify`, which tells the level each alert moved up to. The settings come from the run's conf
(`{"db": URL, "outbox": DIR}`), else RISK_DATABASE_URL (and RISK_OUTBOX); the deadlines from RISK_SLA_DAYS
(risk.orchestration.runs.run_settings, as for the other two DAGs).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from risk.orchestration.ops_notify import notify_operators


@dag(
    dag_id="fund_risk_escalation",
    description="Daily: escalate alerts not acknowledged within their SLA (village → township → county)",
    schedule="0 7 * * *",  # 07:00, before the working day
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "fund-risk", "retries": 2, "retry_delay": timedelta(minutes=10),
                  "on_failure_callback": notify_operators},
    params={"db": Param(None, type=["null", "string"], description="warehouse URL (default: RISK_DATABASE_URL)"),
            "outbox": Param(None, type=["null", "string"],
                            description="write the digests to files here instead of sending (default: RISK_OUTBOX)")},
    tags=["fund-risk"],
)
def fund_risk_escalation():
    def settings():
        from risk.orchestration.runs import run_settings

        return run_settings(get_current_context()["params"])

    @task
    def escalate() -> dict:
        from risk import pipeline

        return {"escalated": pipeline.escalate(settings())["escalated"]}

    @task
    def send_digests() -> dict:
        """Each level an alert moved up to hears about it in its next digest."""
        from risk import pipeline

        return pipeline.notify(settings())

    escalate() >> send_digests()


fund_risk_escalation()
