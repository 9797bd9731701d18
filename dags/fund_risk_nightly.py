"""fund_risk_nightly: load every delivery day not loaded yet, run the rules, score behaviour, report quality,
and send each supervisor the digest of what is new in their area.

Declarations only: each task calls one `risk.pipeline` function, the same ones `risk run` calls.
Tasks hand each other keys (delivery days); the landing folder, warehouse and `until` day come from
the run's conf (`{"landing": DIR, "db": URL, "until": "YYYY-MM-DD", "var_dir": DIR, "outbox": DIR, "parts": N}`),
else from RISK_LANDING / RISK_DATABASE_URL / RISK_VAR_DIR / RISK_OUTBOX / RISK_PARTS (risk.orchestration.local:
resolve_run, through run_settings as for the other two DAGs), and `until` else from the logical date's day
in Asia/Shanghai (a run triggered without a logical date and without `until` loads every day).

Parsing this file imports nothing heavy and opens no database: `risk.pipeline` is imported inside
the tasks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from risk.orchestration.ops_notify import notify_operators

if TYPE_CHECKING:
    from risk.orchestration.runs import RunConfig

_OPTIONAL_TEXT = ["null", "string"]


def _run() -> RunConfig:
    """This run's settings, landing folder and until day; a bad conf fails the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from risk.errors import RunConfigError
    from risk.orchestration.runs import resolve_run

    context = get_current_context()
    try:
        return resolve_run(context["params"], context.get("logical_date"))
    except RunConfigError as error:
        raise AirflowFailException(str(error)) from error


TASK_WAIT_SECONDS = 3 * 3600  # a task waits this long for a `risk run` that holds the warehouse


def _held(run: RunConfig, task: str):
    """The warehouse's run lock, shared, for one task (risk.runlock): the parts of a night run side by side,
    and a `risk run` on the same warehouse is waited for (the wait is written in the task's log)."""
    import logging

    from risk import runlock

    return runlock.held(run.settings.database_url, f"fund_risk_nightly {task}", shared=True,
                        wait=TASK_WAIT_SECONDS, say=logging.getLogger("airflow.task").warning)


@dag(
    dag_id="fund_risk_nightly",
    description="Nightly ingest of the landing folder, rules → alerts, behaviour scores, data-quality report, digests",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    default_args={
        "owner": "fund-risk",
        "retries": 2,
        "retry_delay": timedelta(minutes=10),
        "on_failure_callback": notify_operators,
    },
    params={
        "landing": Param(None, type=_OPTIONAL_TEXT, description="landing folder (default: RISK_LANDING)"),
        "until": Param(
            None,
            type=_OPTIONAL_TEXT,
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            description="load delivery days up to this day (default: the logical date's day)",
        ),
        "db": Param(None, type=_OPTIONAL_TEXT, description="warehouse URL (default: RISK_DATABASE_URL)"),
        "var_dir": Param(
            None, type=_OPTIONAL_TEXT, description="reports/outbox folder (default: RISK_VAR_DIR)"
        ),
        "outbox": Param(
            None,
            type=_OPTIONAL_TEXT,
            description="write the digests to files here instead of sending them (default: RISK_OUTBOX)",
        ),
        "parts": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            description="detection and scoring split into at most this many mapped tasks (default: RISK_PARTS, 2)",
        ),
    },
    tags=["fund-risk"],
)
def fund_risk_nightly():
    @task
    def migrate() -> None:
        from risk import pipeline

        run = _run()
        with _held(run, "migrate"):
            pipeline.prepare(run.settings)

    @task
    def find_pending_days() -> list[str]:
        from risk import pipeline
        from risk.errors import MissingLanding

        run = _run()
        try:
            run.require_landing()
        except MissingLanding as error:  # a wrong landing path does not heal itself: no retries
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(error)) from error
        return pipeline.pending_days(run.settings, run.landing, until=run.until)

    @task(max_active_tis_per_dagrun=1, map_index_template="{{ task.op_kwargs['day'] }}")
    def load_day(day: str) -> list[dict]:
        """Load `day`, and first any earlier day still pending.

        The scheduler runs the mapped days one at a time in map-index order, but a retried day, or
        dag.test(), which ignores max_active_tis_per_dagrun, can put a later day first; loading
        what is pending up to `day`, oldest first, keeps the warehouse filled in delivery order.
        A day an earlier task already loaded is not pending any more and is not loaded twice.
        """
        from risk import pipeline

        run = _run()
        with _held(run, f"load_day {day}"):
            loaded = [
                pipeline.load_day(run.settings, run.landing, pending)
                for pending in pipeline.pending_days(run.settings, run.landing, until=day)
            ]
            pipeline.refresh_statistics(run.settings, loaded)
        return loaded

    @task(trigger_rule="none_failed")  # also when no day was pending (load_day then is skipped)
    def find_parts() -> list[list[str]]:
        """The counties (and "-", the people who are not recipients) in a few groups of about as many
        recipients each (conf `parts`, else RISK_PARTS, default 2): detection and scoring run one group per
        mapped task, so that several workers share the night and each loads the model once; the parts
        together equal one whole run."""
        from risk import pipeline

        run = _run()
        with _held(run, "find_parts"):
            return pipeline.detection_parts(run.settings)

    @task(map_index_template="{{ task.op_kwargs['part'] | join(' ') }}")
    def detect(part: list[str]) -> dict:
        from risk import pipeline

        run = _run()
        with _held(run, "detect"):
            return pipeline.detect(run.settings, as_of=run.until, part=part)

    @task
    def start_scoring() -> dict:
        """The night's model (trained first if none is registered), how many anomaly alerts to raise, and
        the city's behaviour features, computed once and shared with the scoring parts (a file in the var
        folder the workers share, named in the plan with its sha256)."""
        from risk import pipeline

        run = _run()
        with _held(run, "start_scoring"):
            return pipeline.start_scoring(run.settings, as_of=run.until, for_parts=True)

    @task(map_index_template="{{ task.op_kwargs['part'] | join(' ') }}")
    def score(plan: dict, part: list[str]) -> int:
        """Everyone's recent behaviour in a group of counties through the night's model (loaded once), from
        the features start_scoring shared."""
        from risk import pipeline

        run = _run()
        with _held(run, "score"):
            return pipeline.score_counties(run.settings, plan, part)

    @task
    def finish_scoring(plan: dict) -> dict:
        """City-wide ranking, the night's score distribution and drift, anomaly alerts for the most unusual."""
        from risk import pipeline

        run = _run()
        with _held(run, "finish_scoring"):
            return pipeline.finish_scoring(run.settings, plan)

    @task
    def quality_report() -> str:
        from risk import pipeline

        run = _run()
        with _held(run, "quality_report"):
            return pipeline.write_quality_report(run.settings)

    @task
    def send_digests() -> dict:
        """One message per supervisor with the new alerts in their area; a failing channel is recorded and
        never fails the task."""
        from risk import pipeline

        run = _run()
        with _held(run, "send_digests"):
            return pipeline.notify(run.settings)

    days = find_pending_days()
    migrate() >> days
    parts = find_parts()
    load_day.expand(day=days) >> parts
    plan = start_scoring()
    detect.expand(part=parts) >> plan
    score.partial(plan=plan).expand(part=parts) >> finish_scoring(plan) >> [quality_report(), send_digests()]


fund_risk_nightly()
