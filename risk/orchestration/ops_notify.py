"""Tell the operators that a nightly task failed.

Used as the Airflow tasks' `on_failure_callback` (called once a task has failed for good, after its
retries). Every failure appends one JSON line to `<var>/outbox/operators.jsonl`; when
RISK_OPERATOR_NOTIFY holds Apprise URLs (space- or comma-separated, e.g. `json://ops-hook:8080/`,
`mailtos://...`, `dingtalk://...`) the same event is sent through Apprise as well.

An event names the DAG, task, map index, run and try, and the error's class and message: no data
rows. The message is cut short and anything that looks like a resident ID number is blanked, since
an operators' chat channel is not a place for personal data.

The callback never raises: a broken notification channel must not hide the task's own failure.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

OUTBOX_FILE = "operators.jsonl"
MAX_MESSAGE = 500


def failure_event(context: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-able event for a task-failure context (ids and the error, nothing else)."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    error = context.get("exception")
    return {
        "event": "task_failed",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dag_id": getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "map_index": getattr(ti, "map_index", None),
        "run_id": getattr(ti, "run_id", None) or context.get("run_id"),
        "try_number": getattr(ti, "try_number", None),
        "error_class": type(error).__name__ if isinstance(error, BaseException) else None,
        "error": _scrub(str(error)) if error is not None else None,
    }


def notify_operators(context: Mapping[str, Any]) -> None:
    """Airflow `on_failure_callback`: outbox line always, Apprise when configured; never raises."""
    try:
        event = failure_event(context)
    except Exception:  # noqa: BLE001 - a callback must not raise
        log.exception("could not describe the failed task")
        return
    try:
        append_outbox(_var_dir(context), event)
    except Exception:  # noqa: BLE001
        log.exception("could not write the operators' outbox")
    try:
        send_apprise(event)
    except Exception:  # noqa: BLE001
        log.exception("could not send the operators' notification")


def append_outbox(var_dir: Path, event: Mapping[str, Any]) -> Path:
    outbox = Path(var_dir) / "outbox" / OUTBOX_FILE
    outbox.parent.mkdir(parents=True, exist_ok=True)
    with outbox.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n")
    return outbox


def apprise_urls(env: Mapping[str, str] | None = None) -> list[str]:
    """RISK_OPERATOR_NOTIFY (of `env`, else the environment), read alone: a wrong other variable, which may
    be why the task failed, does not keep the operators from hearing of it."""
    from risk.settings import Settings

    raw = Settings.read("operator_notify", env).get_secret_value()
    return [url for url in re.split(r"[\s,]+", raw) if url]


def send_apprise(event: Mapping[str, Any], urls: list[str] | None = None) -> bool | None:
    """Send the event to every Apprise URL; None when none is configured, else whether all got it."""
    urls = apprise_urls() if urls is None else urls
    if not urls:
        return None
    import apprise  # only when someone is to be told

    sender = apprise.Apprise()
    for url in urls:
        if not sender.add(url):
            log.warning("ignoring an Apprise URL it cannot use (scheme %s)", url.split(":", 1)[0])
    if not len(sender):
        return False
    title, body = render(event)
    delivered = bool(sender.notify(title=title, body=body))
    if not delivered:
        log.warning("Apprise could not deliver the operators' notification to every URL")
    return delivered


def render(event: Mapping[str, Any]) -> tuple[str, str]:
    task = event.get("task_id") or "?"
    if event.get("map_index") not in (None, -1):
        task = f"{task}[{event['map_index']}]"
    title = f"夜间任务失败 / Nightly task failed: {event.get('dag_id')}.{task}"
    body = "\n".join(
        [
            f"DAG: {event.get('dag_id')}",
            f"任务 / task: {task} (try {event.get('try_number')})",
            f"运行 / run: {event.get('run_id')}",
            f"错误 / error: {event.get('error_class')}: {event.get('error')}",
            f"时间 / at: {event.get('at')}",
        ]
    )
    return title, body


def _scrub(message: str) -> str:
    """The error as operators may read it: personal numbers masked as in every log (risk.privacy), cut short."""
    from risk.privacy import redact

    message = redact(message)
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def _var_dir(context: Mapping[str, Any]) -> Path:
    from risk.settings import Settings

    params = context.get("params") or {}
    return Settings.load(var_dir=params.get("var_dir") or None).var_dir
