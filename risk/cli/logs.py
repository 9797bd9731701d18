"""Where a command's log goes: the log file in the working folder's logs/ (from INFO up, tracebacks
included) and the terminal (warnings and errors, more with `--verbose`; never a traceback)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from risk.cli.common import say
from risk.settings import Settings


class _Terminal(logging.StreamHandler):
    """To standard error as it is when the record comes (not as it was when the handler was made)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup(verbose: bool) -> Path | None:
    """The log file in the working folder's logs/ (None when it cannot be written: the messages then go
    to the terminal only, and the command goes on) and the terminal's share."""
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
    sh.addFilter(lambda record: not getattr(record, "file_only", False))  # tracebacks: the log file only
    sh.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    sh._risk_cli = True  # type: ignore[attr-defined]
    root.addHandler(sh)
    for noisy in ("great_expectations", "alembic", "py.warnings"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path
