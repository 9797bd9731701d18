"""Checking ahead: the self-contained facts of the pending days (payments, card events, deaths, custody
records: their checks need nothing beyond the file and its delivery day) are read, checked and typed in
batches that span several days, by a thread of their own (and, for a big load, a worker process), while
the loader stores the files before them. Great Expectations costs a fixed amount per call, which dominates
small files: one suite run per batch (risk.ingest.intake.check_batch) instead of one per file.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pyarrow as pa

from risk import memory, worker
from risk.contract import BY_NAME, SOURCES, Source
from risk.ingest import intake
from risk.ingest.intake import Checked, text_size
from risk.ingest.read import DEFAULT_LIMITS, Limits, files_of_day

log = logging.getLogger(__name__)

# checked with nothing but the file (and its delivery day): can be checked before earlier days are loaded
SELF_CONTAINED = frozenset({"payments", "card_events", "deaths", "incarcerations"})
BATCH_BYTES = 32 * 2**20  # text checked in one suite run: ~350,000 payments


class Intake:
    """The self-contained facts of several pending days, checked ahead in batches (see the module's
    docstring) by a thread of their own, ahead of the loader: reading, checking and typing the next files
    overlaps with storing this one (Arrow, NumPy and SQLite release the interpreter's lock while they work).
    It runs ahead by at most `AHEAD_ROWS` rows unless the loader waits for one. A load big enough checks in
    a worker process, which leaves the typed rows in files of a spool folder of its own: what is checked
    ahead waits on disk, not in memory. `take(day, source)` gives a file's result once, its rows read back;
    files it does not hold are checked by the caller when their day is loaded.
    `close()` (or leaving the `with` block) stops the thread."""

    def __init__(self, landing: str | Path, days: list[str], batch_bytes: int | None = None,
                 parallel: bool | None = None, suite_rows: int | None = None, limits: Limits = DEFAULT_LIMITS):
        self.batch_bytes = batch_bytes or BATCH_BYTES
        self.limits = limits
        self.suite_rows = suite_rows or intake.SUITE_ROWS  # passed on: the worker process does not see a changed default
        self.spool: Path | None = None  # where the worker leaves typed rows (a folder of this load's own)
        self.waiting: dict[str, list[tuple[str, Path]]] = {name: [] for name in SELF_CONTAINED}
        self.plan: list[tuple[str, str]] = []  # (day, source) in the order the loader asks for them
        for day in days:
            found, _warnings, _extra = files_of_day(Path(landing) / day)
            for source in SOURCES:
                if source.name in SELF_CONTAINED and source.name in found:
                    self.waiting[source.name].append((day, found[source.name]))
                    self.plan.append((day, source.name))
        self.planned = set(self.plan)
        self.ready: dict[tuple[str, str], Checked | BaseException] = {}
        self.wanted: tuple[str, str] | None = None
        self.changed = threading.Condition()
        self.stopped = False
        self.executor: ProcessPoolExecutor | None = None
        total = sum(text_size(p) for files in self.waiting.values() for _d, p in files)
        self.parallel = total >= PARALLEL_BYTES if parallel is None else parallel
        self.thread = threading.Thread(target=self._work, name="intake", daemon=True)
        if self.plan:
            self.thread.start()

    def __enter__(self) -> Intake:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with self.changed:
            self.stopped = True
            self.changed.notify_all()
        if self.thread.is_alive():
            self.thread.join()
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)
        if self.spool is not None:
            shutil.rmtree(self.spool, ignore_errors=True)

    def _check(self, source: Source, batch: list[tuple[str, Path]]) -> list[Checked]:
        """In the worker process when there is one (started for a load big enough to pay its start), else
        here; a worker that cannot start (a daemon process, as Celery's) or that dies leaves the work to
        this thread."""
        if self.parallel and self.executor is None:
            try:
                self.executor = worker.start()
                self.spool = Path(tempfile.mkdtemp(prefix="risk-intake-"))
            except (AssertionError, OSError) as e:
                log.info("checking ahead in this process: no worker process (%s)", e)
                self.parallel = False
        if self.executor is not None:
            try:
                return self.executor.submit(checked_in_worker, source, batch, self.spool,
                                            self.suite_rows, self.limits).result()
            except (BrokenProcessPool, AssertionError, OSError) as e:  # the worker died (killed for memory,
                # say) or could not start (a daemon process may not have children): its batch is done here
                log.warning("检查进程意外退出，改在本进程检查 / the checking worker stopped (%s): checking in "
                            "this process from now on", e)
                self.executor.shutdown(wait=False, cancel_futures=True)
                self.executor, self.parallel = None, False
        return intake.check_batch(source, batch, typed=True, suite_rows=self.suite_rows, limits=self.limits)

    def text_bytes(self, source_name: str) -> int:
        """The size, as text, of the files of `source_name` to load."""
        return sum(text_size(path) for _day, path in self.waiting.get(source_name, [])) + sum(
            text_size(Path(c.path)) for (_d, n), c in list(self.ready.items())
            if n == source_name and isinstance(c, Checked) and c.path)

    def take(self, day: str, source: Source) -> Checked | None:
        key = (day, source.name)
        if key not in self.planned:
            return None
        with self.changed:
            self.wanted = key
            self.changed.notify_all()
            while key not in self.ready and not self.stopped:
                self.changed.wait()
            self.wanted = None
            result = self.ready.pop(key, None)
            self.changed.notify_all()
        if isinstance(result, BaseException):
            raise result
        return spooled_rows(result) if result is not None else None

    def _ahead_rows(self) -> int:
        return sum(c.rows_read for c in self.ready.values() if isinstance(c, Checked))

    def _work(self) -> None:
        for day, name in self.plan:
            if not self.waiting[name] or self.waiting[name][0][0] != day:
                continue  # checked with an earlier batch
            with self.changed:
                while not self.stopped and self.wanted is None and self._ahead_rows() > AHEAD_ROWS:
                    self.changed.wait()
                if self.stopped:
                    return
            batch = self._next_batch(name)
            try:
                results: list[Checked | BaseException] = list(self._check(BY_NAME[name], batch))
            except BaseException as e:  # handed to the loader, which raises it where it would have
                results = [e] * len(batch)
            with self.changed:
                for (d, _p), checked in zip(batch, results, strict=True):
                    self.ready[(d, name)] = checked
                self.changed.notify_all()

    def _next_batch(self, name: str) -> list[tuple[str, Path]]:
        queue = self.waiting[name]
        batch: list[tuple[str, Path]] = []
        size = 0
        while queue and (not batch or size + text_size(queue[0][1]) <= self.batch_bytes):
            size += text_size(queue[0][1])
            batch.append(queue.pop(0))
        return batch


AHEAD_ROWS = 500_000  # rows checked ahead and not yet loaded, at most (unless the loader waits for one): a
# batch or so, which keeps the worker busy while bounding what the loading process holds besides its file
PARALLEL_BYTES = 256 * 2**20  # a load this big pays for a worker process (seconds to start: it imports GX)


def checked_in_worker(source: Source, files: list[tuple[str, Path]], spool: Path | None,
                      suite_rows: int | None = None, limits: Limits = DEFAULT_LIMITS) -> list[Checked]:
    """`check_batch` in the worker process. The typed rows go to files in `spool` (`Checked.rows_file`)
    rather than back through the pipe, which would hold them twice on each side (the objects and their
    pickled bytes); the loader reads each when it stores it. The worker's freed memory then goes back to
    the system: the frames a batch needed are not carried into the next one."""
    results = intake.check_batch(source, files, typed=True, spool=spool, suite_rows=suite_rows, limits=limits)
    memory.release()
    return results


def spooled_rows(checked: Checked) -> Checked:
    """`checked` with the typed rows its worker spooled read back (`rows`), the file removed."""
    if checked.rows_file:
        path = Path(checked.rows_file)
        with pa.OSFile(str(path), "rb") as f:
            table = pa.ipc.open_file(f).read_all()
        checked.rows = table.to_pandas()
        del table
        path.unlink(missing_ok=True)
        checked.rows_file = ""
    return checked
