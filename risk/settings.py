"""Where things are and how the bureau wants them: the warehouse URL (the models live in it), the working
folder for reports and logs, the behaviour window and alert budget, escalation deadlines, where digests
go, how big a delivered file may be, and how long a web session lasts.

Each comes from the environment (RISK_*), so the nightly DAG, the escalation DAG and the `risk` command
read the same values."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from risk.errors import ConfigError

# The project folder, where checks/, sql/ and dags/ live: the checkout, or RISK_HOME where an installed
# package (the Docker image) keeps them.
ROOT = Path(os.environ.get("RISK_HOME") or Path(__file__).resolve().parents[1])

DEFAULT_SLA_DAYS = {"high": 3, "medium": 7, "low": 14}
DEFAULT_PARTS = 2


def parse_sla_days(text: str | None) -> dict[str, int]:
    """`high=3,medium=7,low=14` (any subset; the rest keep their defaults) → days per severity."""
    days = dict(DEFAULT_SLA_DAYS)
    for part in (text or "").split(","):
        if not part.strip():
            continue
        severity, _, value = part.partition("=")
        severity = severity.strip()
        if severity not in DEFAULT_SLA_DAYS:
            raise ConfigError(f"RISK_SLA_DAYS: 未知的严重程度 / unknown severity {severity!r} "
                              f"(high, medium, low)")
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"RISK_SLA_DAYS: {severity} 的天数须为正整数 / days must be a whole number ≥ 1, "
                              f"got {value.strip()!r}")
        days[severity] = n
    return days


def parse_parts(text: str | None) -> int:
    """RISK_PARTS: how many parts (mapped tasks) a night's detection and scoring split into; empty: 2."""
    if not (text or "").strip():
        return DEFAULT_PARTS
    try:
        n = int(str(text).strip())
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"RISK_PARTS 须为正整数 / must be a whole number ≥ 1, got {str(text).strip()!r}")
    return n


@dataclass(frozen=True)
class Settings:
    database_url: str
    var_dir: Path
    window_days: int = 90  # behaviour features look back this far
    anomaly_budget: float = 0.005  # share of scored people who get an `anomaly` alert each night
    sla_days: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_SLA_DAYS))
    outbox: Path | None = None  # digests are written here instead of being sent
    base_url: str = "http://localhost:8000"  # the web app, for the links in digests
    parts: int = DEFAULT_PARTS  # a night's detection and scoring split into at most this many parts
    memory_mib: int = 4096  # what a night's processes may hold together (RISK_MEMORY_MIB): decides what runs at once
    max_file_mib: int = 200  # a delivered file larger than this as text (decompressed) is refused whole (RISK_MAX_FILE_MIB)
    session_hours: float = 8  # a web login lasts at most this long (RISK_SESSION_HOURS) …
    session_idle_minutes: float = 30  # … and ends sooner after this long without a request (RISK_SESSION_IDLE_MINUTES)

    @property
    def reports_dir(self) -> Path:
        return self.var_dir / "reports"

    @classmethod
    def load(cls, db: str | None = None, var_dir: str | Path | None = None,
             outbox: str | Path | None = None) -> Settings:
        """`--db`, else RISK_DATABASE_URL, else a SQLite file in the working directory's var/."""
        var = Path(var_dir or os.environ.get("RISK_VAR_DIR") or Path.cwd() / "var").resolve()
        url = db or os.environ.get("RISK_DATABASE_URL") or f"sqlite:///{var / 'risk.db'}"
        box = outbox or os.environ.get("RISK_OUTBOX")
        return cls(database_url=url, var_dir=var,
                   window_days=int(os.environ.get("RISK_WINDOW_DAYS", "90")),
                   anomaly_budget=float(os.environ.get("RISK_ANOMALY_BUDGET", "0.005")),
                   sla_days=parse_sla_days(os.environ.get("RISK_SLA_DAYS")),
                   outbox=Path(box).resolve() if box else None,
                   base_url=os.environ.get("RISK_BASE_URL", "http://localhost:8000"),
                   parts=parse_parts(os.environ.get("RISK_PARTS")),
                   memory_mib=int(os.environ.get("RISK_MEMORY_MIB") or "4096"),
                   max_file_mib=int(os.environ.get("RISK_MAX_FILE_MIB") or "200"),
                   session_hours=float(os.environ.get("RISK_SESSION_HOURS") or "8"),
                   session_idle_minutes=float(os.environ.get("RISK_SESSION_IDLE_MINUTES") or "30"))
