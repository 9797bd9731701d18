"""Where things are and how the bureau wants them: every RISK_* variable, in one place.

`Settings` has one field per variable (RISK_ and the field's name in capitals), typed, with its default and
its meaning in Chinese and English; the table of variables in docs/operations.md is checked against these
fields (tests/unit/test_settings.py), and .env.example and docker-compose.yaml against them as well
(tests/integration/test_compose.py). Three ways to get values:

- `Settings.load(db=…, var_dir=…, outbox=…)`: what the `risk` command and the three DAGs use (the DAGs
  through risk.orchestration.runs.run_settings): an argument, else the environment, else the default. A
  value that cannot work stops it with a ConfigError naming the variable, the value and what is expected
  (the command exits 2), never a traceback.
- `Settings(database_url, var_dir, …)`: made in code (the demo, tests): the arguments, else the defaults,
  never the environment.
- `Settings.read(name)`: one variable from the environment, checked alone, for code that reads it when it
  is used and is handed no settings: the web app's secret key and HTTPS flag when the app is made, the SMTP
  URL when digests go out, the operators' Apprise URLs when a task has failed for good (also when another
  variable is wrong), a Celery worker's name, and ROOT.

Secrets (RISK_SECRET_KEY, RISK_SMTP_URL, RISK_OPERATOR_NOTIFY, a password in RISK_DATABASE_URL) are never
shown in a repr or in an error message.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, JsonValue, SecretStr, TypeAdapter, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from risk.errors import ConfigError

PREFIX = "RISK_"
DEFAULT_SLA_DAYS = {"high": 3, "medium": 7, "low": 14}
DEFAULT_PARTS = 2
_CHECKOUT = Path(__file__).resolve().parents[1]


def parse_sla_days(text: str | None) -> dict[str, int]:
    """`high=3,medium=7,low=14` (any subset; the rest keep their defaults) → days per severity."""
    days = dict(DEFAULT_SLA_DAYS)
    for part in (text or "").split(","):
        if not part.strip():
            continue
        severity, _, value = part.partition("=")
        severity = severity.strip()
        if severity not in DEFAULT_SLA_DAYS:
            raise ConfigError(f"RISK_SLA_DAYS={text!r}: 未知的严重程度 / unknown severity {severity!r} "
                              f"(high, medium, low)")
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"RISK_SLA_DAYS={text!r}: {severity} 的天数须为正整数 / days must be a whole "
                              f"number ≥ 1, got {value.strip()!r}")
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


def _sla_days(value: Any) -> Any:
    if isinstance(value, Mapping):
        value = ",".join(f"{severity}={days}" for severity, days in value.items())
    return parse_sla_days(value) if isinstance(value, str) else value


def _parts(value: Any) -> Any:
    return parse_parts(value) if isinstance(value, str) else value


def _flag(value: Any) -> Any:
    """`1`/`true`/`yes` (any case) is on, empty/`0`/`false`/`no` off, as the web app always read it."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("1", "true", "yes"):
            return True
        if word in ("", "0", "false", "no"):
            return False
        raise ValueError(word)
    return value


_WHOLE = ("正整数", "a whole number")
_NUMBER = ("数", "a number")


def _setting(default: Any, zh: str, en: str, expect: tuple[str, str] = ("有效值", "a valid value"), *,
             shown: str = "", secret: bool = False, **field: Any) -> Any:
    """A field: its default, its meaning (Chinese / English) and, for messages, what a value must be
    (with the field's bounds added), how its default reads in the docs, whether it is a secret."""
    bounds = [f"{sign} {field[key]:g}" for key, sign in (("gt", ">"), ("ge", "≥"), ("le", "≤")) if key in field]
    extra: dict[str, JsonValue] = {"expect_zh": f"{expect[0]} {' 且 '.join(bounds)}".strip(),
                                   "expect_en": f"{expect[1]} {' and '.join(bounds)}".strip(),
                                   "shown": shown, "secret": secret}
    if callable(default):
        return Field(default_factory=default, description=f"{zh} / {en}", json_schema_extra=extra, **field)
    return Field(default, description=f"{zh} / {en}", json_schema_extra=extra, **field)


class Settings(BaseSettings):
    """Every RISK_* variable (see the module's docstring). Frozen: nothing changes a Settings once made."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, env_ignore_empty=True)

    home: Path = _setting(
        lambda: _CHECKOUT, "项目目录（sql/、checks/、dags/ 所在处）", "the project folder, where sql/, checks/ "
        "and dags/ are: the checkout, or where an installed package (the Docker image) keeps them",
        shown="the checkout")
    database_url: str = _setting(
        ..., "数据仓库的 SQLAlchemy URL（模型也存于其中）", "the warehouse's SQLAlchemy URL (the models live in it)",
        shown="sqlite:///<RISK_VAR_DIR>/risk.db", secret=True)
    var_dir: Path = _setting(
        ..., "工作目录：报告、日志、发件箱、网页密钥", "the working folder: reports, logs, outbox, the web app's key",
        shown="./var")
    landing: Path | None = _setting(
        None, "落地目录：每个交付日一个子目录（夜间 DAG）", "the landing folder, one folder per delivery day "
        "(the nightly DAG; `risk run --landing` names its own)")
    window_days: int = _setting(
        90, "行为特征回看的天数", "how many days of behaviour the scoring looks back over", _WHOLE, ge=1)
    anomaly_budget: float = _setting(
        0.005, "每晚获得 anomaly 预警的评分人员比例", "the share of scored people who get an `anomaly` alert "
        "each night", _NUMBER, gt=0, le=1)
    sla_days: Annotated[Mapping[str, int], NoDecode, BeforeValidator(_sla_days)] = _setting(
        lambda: dict(DEFAULT_SLA_DAYS), "各严重程度的确认期限（天），逾期升级一级", "days an alert may stay "
        "unacknowledged before it moves up a level, per severity", ("如 high=3,medium=7,low=14",
                                                                   "e.g. high=3,medium=7,low=14"),
        shown="high=3,medium=7,low=14")
    outbox: Path | None = _setting(
        None, "摘要写入此目录而不发送；空则发送", "digests are written to this folder instead of being sent; "
        "empty: sent")
    base_url: str = _setting(
        "http://localhost:8000", "网页地址，用于摘要中的链接", "the web app's address, for the links in digests")
    smtp_url: SecretStr = _setting(
        SecretStr(""), "摘要邮件的 Apprise mailto:// URL（不含收件人）；空则不发邮件", "the Apprise mailto:// URL "
        "the digests are mailed through (without `to`); empty: no email", secret=True)
    operator_notify: SecretStr = _setting(
        SecretStr(""), "任务最终失败时通知的 Apprise URL（空格或逗号分隔）", "Apprise URLs (space- or "
        "comma-separated) told when a task fails for good; empty: only `<var>/outbox/operators.jsonl`",
        secret=True)
    parts: Annotated[int, BeforeValidator(_parts)] = _setting(
        DEFAULT_PARTS, "每晚检测与评分拆分的份数（映射任务）", "how many parts (mapped tasks) a night's detection "
        "and scoring split into", _WHOLE, ge=1)
    memory_mib: int = _setting(
        4096, "夜间各进程合计可用的内存（MiB），决定何者同时运行", "the memory a night's processes may hold "
        "together (MiB): decides what runs at once", _WHOLE, ge=256)
    max_file_mib: int = _setting(
        200, "交付文件解压后超过此大小（MiB）即整体拒收", "a delivered file larger than this as text "
        "(decompressed, MiB) is refused whole", _WHOLE, ge=1)
    secret_key: SecretStr | None = _setting(
        None, "网页会话 Cookie 的签名密钥；空则生成并保存在 `<var>/secret.key`", "signs the web app's session "
        "cookies; empty: a random key kept in `<var>/secret.key`", secret=True)
    https_only: Annotated[bool, BeforeValidator(_flag)] = _setting(
        False, "为 1 时会话 Cookie 仅经 HTTPS 发送", "1: the session cookie is sent over HTTPS only",
        ("1、true、yes 或 0、false、no", "1, true, yes or 0, false, no"), shown="0")
    session_hours: float = _setting(
        8, "网页登录最长持续的小时数", "a web login lasts at most this many hours", _NUMBER, gt=0)
    session_idle_minutes: float = _setting(
        30, "无请求超过此分钟数即结束登录", "a web login ends after this many minutes without a request",
        _NUMBER, gt=0)
    celery_worker: str | None = _setting(
        None, "同一台机器上多个 Celery worker 之一的名字，任务记录为其主机名", "the name of one of several "
        "Celery workers on one machine, which its tasks record as their hostname; empty: the machine's name")

    def __init__(self, database_url: str, var_dir: str | Path, **values: Any) -> None:
        try:
            super().__init__(database_url=database_url, var_dir=var_dir, **values)
        except ValidationError as error:
            raise _config_error(error) from None

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Made in code: the arguments and the defaults only; `load` and `read` add the environment."""
        return (init_settings,)

    @property
    def reports_dir(self) -> Path:
        return self.var_dir / "reports"

    @classmethod
    def load(cls, db: str | None = None, var_dir: str | Path | None = None, outbox: str | Path | None = None,
             *, landing: str | Path | None = None, parts: int | str | None = None,
             env: Mapping[str, str] | None = None) -> Settings:
        """Each setting from its argument, else its RISK_* variable (of `env`, else os.environ), else its
        default: `--db`, else RISK_DATABASE_URL, else a SQLite file in the var folder, itself RISK_VAR_DIR,
        else var/ in the working directory. The folders are made absolute."""
        values = _Environment(cls, env)()
        given = {"database_url": db, "var_dir": var_dir, "outbox": outbox, "landing": landing, "parts": parts}
        values.update({name: value for name, value in given.items() if value is not None and value != ""})
        var = Path(values.get("var_dir") or Path.cwd() / "var").resolve()
        values["var_dir"] = var
        values.setdefault("database_url", f"sqlite:///{var / 'risk.db'}")
        if values.get("outbox"):
            values["outbox"] = Path(values["outbox"]).resolve()
        return cls(**values)

    @classmethod
    def read(cls, name: str, env: Mapping[str, str] | None = None) -> Any:
        """The setting `name` from its variable (of `env`, else os.environ), else its default; checked alone."""
        raw = _Environment(cls, env, only=name)().get(name)
        field = cls.model_fields[name]
        return field.get_default(call_default_factory=True) if raw is None else cls.check(name, raw)

    @classmethod
    def check(cls, name: str, value: Any) -> Any:
        """`value` as the setting `name` takes it; a ConfigError names the variable when it cannot be one."""
        try:
            return _adapter(name).validate_python(value)
        except ValidationError as error:
            raise _config_error(error, name) from None

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable of a field: RISK_ and its name in capitals."""
        return PREFIX + name.upper()

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (_without_password(value) if name == "database_url" else value)


def variables() -> list[tuple[str, str, str]]:
    """(variable, default as the docs show it, meaning) of every setting, in the fields' order."""
    rows = []
    for name, field in Settings.model_fields.items():
        extra = _extra(name)
        default = field.get_default(call_default_factory=True)
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        shown = extra["shown"] or ("" if default is None else str(default))
        rows.append((Settings.variable(name), shown, str(field.description)))
    return rows


class _Environment(EnvSettingsSource):
    """pydantic-settings' source of environment variables, over `env` (else os.environ), only the RISK_*
    ones (exactly so: `risk_parts` is not RISK_PARTS), or only the variable of field `only`."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str] | None = None,
                 only: str | None = None) -> None:
        self._env = os.environ if env is None else env
        self._only = Settings.variable(only) if only else None
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        wanted = {name: value for name, value in self._env.items()
                  if name.startswith(PREFIX) and self._only in (None, name)}
        return parse_env_vars(wanted, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def _extra(name: str) -> dict[str, Any]:
    extra = Settings.model_fields[name].json_schema_extra
    return extra if isinstance(extra, dict) else {}


@cache
def _adapter(name: str) -> TypeAdapter[Any]:
    field = Settings.model_fields[name]
    kind: Any = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
    return TypeAdapter(kind)


def _config_error(error: ValidationError, name: str | None = None) -> ConfigError:
    """One line per wrong setting: its variable, its value (a secret's hidden) and what it must be."""
    lines = []
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] and name is None else name or "?"
        if field not in Settings.model_fields:
            lines.append(f"未知的设置 / unknown setting {field!r}")
            continue
        extra = _extra(field)
        value = "***" if extra["secret"] else repr(problem["input"])
        lines.append(f"{Settings.variable(field)}={value} 无效，须为{extra['expect_zh']} / is not valid: "
                     f"expected {extra['expect_en']}")
    return ConfigError("\n".join(dict.fromkeys(lines)))


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}").geturl()


# The project folder, where checks/, sql/ and dags/ live: the checkout, or RISK_HOME where an installed
# package (the Docker image) keeps them.
ROOT: Path = Settings.read("home")
