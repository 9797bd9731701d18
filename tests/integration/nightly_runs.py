"""What the tests that run the nightly DAG through real Airflow services share: the contract sample's first
days as a landing folder, and `risk run` on the same landing in a process of its own, running while
Airflow works, to compare with."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

SAMPLE_LANDING = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "sample" / "landing"
DAYS = ["2025-03-01", "2025-03-10", "2025-04-01", "2025-04-10"]
UNTIL = "2025-04-10"


def sample_landing(folder: Path, days: Sequence[str] = DAYS) -> Path:
    """A landing folder holding the contract sample's `days` (skips the test when the sample is missing)."""
    if not SAMPLE_LANDING.is_dir():
        pytest.skip(f"the contract sample is not at {SAMPLE_LANDING}")
    for day in days:
        shutil.copytree(SAMPLE_LANDING / day, folder / day)
    return folder


REFERENCE = """
import sys
from risk import pipeline
from risk.settings import Settings
db, var_dir, landing, until, outbox = sys.argv[1:]
settings = Settings.load(db=db, var_dir=var_dir, outbox=outbox or None)
pipeline.run(settings, landing, until=until, send_digests=bool(outbox))
"""


class Reference:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc, self.log = proc, log

    def finish(self, timeout: float = 300.0) -> None:
        code = self.proc.wait(timeout=timeout)
        assert code == 0, f"the reference run failed ({code}):\n{self.log.read_text(errors='replace')[-3000:]}"


@contextlib.contextmanager
def reference_run(landing: Path, url: str, var_dir: Path, until: str = UNTIL,
                  outbox: Path | None = None) -> Iterator[Reference]:
    """`risk.pipeline.run` in a child process (digests into `outbox`, none without one); killed if still
    running at the end."""
    log = var_dir.parent / f"reference-run-{var_dir.name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", REFERENCE, url, str(var_dir), str(landing), until, str(outbox or "")],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        yield Reference(proc, log)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
