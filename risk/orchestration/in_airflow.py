"""The child process that imports Airflow (`python -m risk.orchestration.in_airflow '<json>'`, started by
risk.orchestration.local with the environment of its AIRFLOW_HOME): it runs `dag.test()` or describes the
DAGs, prints progress lines for the parent, and answers with one JSON line."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from risk.orchestration.local import DAG_ID, DAGS_FOLDER, LOAD_TASK, PROGRESS


def main(request: dict[str, Any]) -> int:
    from airflow.dag_processing.dagbag import DagBag

    result_path = Path(request["result"])
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    import_errors = {str(k): str(v) for k, v in bag.import_errors.items()}
    if request["mode"] == "describe":
        described = {dag_id: _describe(dag) for dag_id, dag in bag.dags.items()}
        result_path.write_text(json.dumps({"import_errors": import_errors, "dags": described}))
        return 0
    dag_id = request.get("dag_id", DAG_ID)
    if import_errors or dag_id not in bag.dags:
        result_path.write_text(json.dumps({"state": "import_error", "import_errors": import_errors}))
        return 2
    dag = bag.dags[dag_id]
    if request.get("retries") is not None:
        for operator in dag.tasks:
            operator.retries = request["retries"]
    progress = _Progress()
    from airflow.sdk.listener import get_listener_manager

    get_listener_manager().add_listener(_listener(progress))
    # No logical date, as for a run triggered by hand: `until` comes from the conf only.
    dag_run = dag.test(
        run_conf=request["conf"], logical_date=None, mark_success_pattern=request.get("mark_success")
    )
    result_path.write_text(json.dumps(_summarise(dag_run, progress.errors), default=str))
    return 0


class _Progress:
    """Collects task starts/ends from the Airflow listener below and prints one line for each."""

    def __init__(self) -> None:
        self.started: dict[tuple[str, int], float] = {}
        self.errors: dict[tuple[str, int], str] = {}

    def emit(self, ti: Any, state: str, error: Any = None) -> None:
        key = (ti.task_id, ti.map_index)
        event: dict[str, Any] = {"dag_id": ti.dag_id, "task_id": ti.task_id, "state": state, "label": _label(ti)}
        if state == "running":
            self.started[key] = time.monotonic()
        elif key in self.started:
            event["seconds"] = round(time.monotonic() - self.started.pop(key), 1)
        if error is not None:
            event["error"] = self.errors[key] = _error_text(error)
        print(PROGRESS + json.dumps(event, default=str), flush=True)


def _listener(progress: _Progress) -> Any:
    from airflow.listeners import hookimpl

    class Listener:
        @hookimpl
        def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
            progress.emit(task_instance, "running")

        @hookimpl
        def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
            progress.emit(task_instance, "success")

        @hookimpl
        def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
            state = _value(getattr(task_instance, "state", None))
            progress.emit(task_instance, "up_for_retry" if state == "up_for_retry" else "failed", error or "")

        @hookimpl
        def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
            progress.emit(task_instance, "skipped")

    return Listener()


def _summarise(dag_run: Any, errors: dict[tuple[str, int], str]) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = dag_run.get_task_instances(session=session)
        query = XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, key="return_value")
        rows: Any = session.scalars(query)
        returned = {(row.task_id, row.map_index): XComModel.deserialize_value(row) for row in rows}
        tasks = [
            {
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "label": ti.rendered_map_index or (str(ti.map_index) if ti.map_index >= 0 else None),
                "state": _value(ti.state),
                "try_number": ti.try_number,
                "error": errors.get((ti.task_id, ti.map_index)),
            }
            for ti in sorted(tis, key=lambda ti: (ti.task_id, ti.map_index))
        ]
    # by map index = delivery order, also when dag.test() ran the mapped days out of order (see the DAG)
    loads = [v for (task_id, _), v in sorted(returned.items()) if task_id == LOAD_TASK and v]
    return {
        "dag_id": dag_run.dag_id,
        "run_id": dag_run.run_id,
        "state": _value(dag_run.state),
        "tasks": tasks,
        "pending_days": returned.get(("find_pending_days", -1)),
        "loaded": [summary for batch in loads for summary in batch],
        "detect": [v for (task_id, _), v in sorted(returned.items()) if task_id == "detect"],
        "quality_report": returned.get(("quality_report", -1)),
        "returned": {task_id: v for (task_id, index), v in sorted(returned.items()) if index == -1},
    }


def _describe(dag: Any) -> dict[str, Any]:
    def callbacks(obj: Any) -> list[str]:
        value = obj.on_failure_callback or []
        return [
            f"{cb.__module__}.{cb.__qualname__}" for cb in (value if isinstance(value, list) else [value])
        ]

    return {
        "schedule": dag.schedule if isinstance(dag.schedule, str) else repr(dag.schedule),
        "timetable": type(dag.timetable).__name__,
        "timezone": dag.timezone.name,
        "start_date": dag.start_date.isoformat() if dag.start_date else None,
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "params": sorted(dag.params.keys()),
        "on_failure_callback": callbacks(dag),
        "tasks": {
            t.task_id: {
                "retries": t.retries,
                "retry_delay_seconds": t.retry_delay.total_seconds(),
                "on_failure_callback": callbacks(t),
                "max_active_tis_per_dagrun": t.max_active_tis_per_dagrun,
                "mapped": type(t).__name__.endswith("MappedOperator"),
                "upstream": sorted(t.upstream_task_ids),
                "trigger_rule": _value(t.trigger_rule),
            }
            for t in dag.tasks
        },
    }


def _label(ti: Any) -> str | None:
    rendered = getattr(ti, "rendered_map_index", None)
    return rendered or (str(ti.map_index) if ti.map_index is not None and ti.map_index >= 0 else None)


def _error_text(error: Any) -> str:
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {error}"
    else:
        text = str(error)
    return text if len(text) <= 300 else text[:299] + "…"


def _value(state: Any) -> Any:
    return getattr(state, "value", state)


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
