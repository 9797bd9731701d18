"""What a run of the DAGs works on: its settings (`run_settings`, the one way all three DAGs get theirs from
a run's params/conf, else the environment, else the defaults), and for the nightly run its landing folder
and the business day it loads up to (`resolve_run`). The DAGs' tasks and the tests share them; nothing
here imports Airflow (pendulum, which Airflow brings, only when a logical date is given)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from risk.errors import ConfigError, MissingLanding, RunConfigError
from risk.settings import Settings

BUSINESS_TZ = "Asia/Shanghai"  # the bureau's business day is Beijing's
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class RunConfig:
    settings: Settings
    landing: Path
    until: str | None

    def require_landing(self) -> Path:
        if not self.landing.is_dir():
            raise MissingLanding(
                f"落地目录不存在 / landing folder {self.landing} does not exist or is not a folder"
            )
        return self.landing


def run_settings(params: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """The settings of a run of any of the three DAGs: from its conf/params (`db`, `var_dir`, `outbox`,
    `landing`, `parts`; each DAG has some of them), else the environment (RISK_DATABASE_URL, RISK_VAR_DIR,
    RISK_OUTBOX, RISK_LANDING, RISK_PARTS, and every other RISK_* variable), else the defaults. A conf
    `parts` that cannot be one raises RunConfigError (the task fails without retries)."""
    if params.get("parts") is not None:
        try:
            Settings.check("parts", params["parts"])
        except ConfigError as error:
            raise RunConfigError(str(error)) from error
    return Settings.load(
        db=params.get("db") or None,
        var_dir=params.get("var_dir") or None,
        outbox=params.get("outbox") or None,
        landing=params.get("landing") or None,
        parts=params.get("parts"),
        env=env,
    )


def resolve_run(
    params: Mapping[str, Any], logical_date: datetime | None, env: Mapping[str, str] | None = None
) -> RunConfig:
    """A run's landing folder, warehouse and `until` day.

    The settings as `run_settings` has them (conf/params, else the environment, else the defaults); the
    landing folder is the conf's `landing`, else RISK_LANDING. `until` falls back to the logical date's day
    in Asia/Shanghai; a run triggered without a logical date and without `until` loads every day.
    """
    settings = run_settings(params, env)
    if settings.landing is None:
        raise RunConfigError(
            "未指定落地目录 / no landing folder: pass conf {'landing': DIR} or set RISK_LANDING"
        )
    until = params.get("until") or business_day(logical_date)
    if until is not None and not _DAY.match(str(until)):
        raise RunConfigError(f"until must be YYYY-MM-DD, got {until!r}")
    return RunConfig(settings=settings, landing=settings.landing.expanduser(), until=until)


def business_day(logical_date: datetime | None) -> str | None:
    """The calendar day of a logical date in Asia/Shanghai (the 02:00 run of D gives D)."""
    if logical_date is None:
        return None
    import pendulum

    return pendulum.instance(logical_date).in_timezone(BUSINESS_TZ).date().isoformat()
