"""Where a command's log goes: the log file in the working folder's logs/ (from INFO up, tracebacks and
Python's warnings included) and the terminal (warnings and errors, more with `--verbose`; never a
traceback, nor a warning of Python's unless `--verbose`)."""
from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

from risk.cli.common import say
from risk.settings import Settings

# Warnings of other people's code that say nothing to whoever runs `risk` and that only they can fix: not
# written at all. Every other warning goes to the log file (see `setup`). Each is named by the start of its
# message and its category, with why it is left out.
KNOWN_NOISE: list[tuple[str, type[Warning]]] = [
    # Great Expectations 1.x imports the regular-expression internals Python 3.11 deprecated (in
    # great_expectations/datasource/fluent/data_connector/file_path_data_connector.py) the first time a
    # delivery day is validated: seen with `python -W default -m risk.cli run --landing <the sample>`, and
    # whenever deprecation warnings are shown (PYTHONWARNINGS, -X dev, pytest)
    (r"module 'sre_constants' is deprecated", DeprecationWarning),
    (r"module 'sre_parse' is deprecated", DeprecationWarning),
    # Apprise imports the imghdr module Python 3.11 deprecated (apprise/utils/pgp.py) when it first sends an
    # email: `risk notify` and `risk run` with RISK_SMTP_URL set (seen in tests/unit/test_notify.py)
    (r"'imghdr' is deprecated", DeprecationWarning),
]


def quiet_known_noise() -> None:
    for message, category in KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category)


class _Terminal(logging.StreamHandler):
    """To standard error as it is when the record comes: a progress bar shows lines above itself by
    standing in for standard error while it runs (risk.cli.display)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _for_the_terminal(verbose: bool):
    def keep(record: logging.LogRecord) -> bool:
        if getattr(record, "file_only", False):  # tracebacks: the log file only
            return False
        return verbose or record.name != "py.warnings"

    return keep


def setup(verbose: bool) -> Path | None:
    """The log file in the working folder's logs/ (None when it cannot be written: the messages then go
    to the terminal only, and the command goes on), the terminal's share, and Python's warnings as log
    records (`logging.captureWarnings`), KNOWN_NOISE left out."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for old in [h for h in root.handlers if getattr(h, "_risk_cli", False)]:  # main() called again in-process
        root.removeHandler(old)
        old.close()
    file = Settings.load().var_dir / "logs" / "risk.log"
    path: Path | None = file
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(file, encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        fh._risk_cli = True  # type: ignore[attr-defined]
        root.addHandler(fh)
    except OSError as e:
        say(f"警告 / warning: 无法写入日志 / cannot write the log {file}: {e.strerror or e}")
        path = None
    sh = _Terminal()
    sh.setLevel(logging.INFO if verbose else logging.WARNING)
    sh.addFilter(_for_the_terminal(verbose))
    sh.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    sh._risk_cli = True  # type: ignore[attr-defined]
    root.addHandler(sh)
    for noisy in ("great_expectations", "alembic", "py.warnings"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # off, then on: whatever showed warnings before (a library that captured them already, a test's
    # catch_warnings since restored) is what an uncaptured warning goes back to
    logging.captureWarnings(False)
    logging.captureWarnings(True)
    quiet_known_noise()
    return path
