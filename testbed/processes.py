"""Processes the local Airflow services leave behind: found by session and signalled, and log tails."""
from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(no log: {error})"


def task_name(ti: Mapping[str, Any]) -> str:
    index = ti.get("map_index")
    return f"{ti.get('task_id')}[{index}]" if index is not None and index >= 0 else str(ti.get("task_id"))


def session_pids(sessions: set[int]) -> set[int]:
    """Live (not zombie) processes whose session is one of `sessions`."""
    found: set[int] = set()
    if not sessions:
        return found
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if os.getsid(proc.pid) in sessions:
                found.add(proc.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


def signal_all(pids: set[int], groups: set[int], sig: signal.Signals) -> set[int]:
    """`sig` to the process groups `groups` (of live leaders we started) and to each of `pids`: the task
    supervisors put their tasks in process groups of their own, so the groups alone do not reach them."""
    for leader in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(leader, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    return pids | groups
