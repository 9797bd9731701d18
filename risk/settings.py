"""Where things are: the warehouse URL, the working folder for reports and models."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the project folder: checks/, sql/, dags/ live here


@dataclass(frozen=True)
class Settings:
    database_url: str
    var_dir: Path
    window_days: int = 90  # behaviour features look back this far
    anomaly_budget: float = 0.005  # share of scored people who get an `anomaly` alert each night

    @property
    def reports_dir(self) -> Path:
        return self.var_dir / "reports"

    @classmethod
    def load(cls, db: str | None = None, var_dir: str | Path | None = None) -> Settings:
        """`--db`, else RISK_DATABASE_URL, else a SQLite file in the working directory's var/."""
        var = Path(var_dir or os.environ.get("RISK_VAR_DIR") or Path.cwd() / "var").resolve()
        url = db or os.environ.get("RISK_DATABASE_URL") or f"sqlite:///{var / 'risk.db'}"
        return cls(database_url=url, var_dir=var,
                   window_days=int(os.environ.get("RISK_WINDOW_DAYS", "90")),
                   anomaly_budget=float(os.environ.get("RISK_ANOMALY_BUDGET", "0.005")))
