"""Row validation with Great Expectations 1.x: one expectation suite per source, kept in checks/ in git.

The suites are built from the contract (`build_suite`) and written once (`risk quality suites --write`);
a test keeps the JSON in git equal to what the contract says. At run time the JSON is what is applied.

Checks that need more than one value (an ID's check character, a birth date agreeing with the ID, a
village known to the warehouse) are computed in pandas as `<column>__<check>` columns beside the
delivered text, and the suite expects them to be true; every expectation carries, in `meta`, the field
it speaks of and the reason a person reads in the quality queue (Chinese / English).
"""
from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from risk.contract import SOURCES, Column, Personal, Source, Type
from risk.identity import numbers as identity
from risk.settings import ROOT

log = logging.getLogger(__name__)

CHECKS_DIR = ROOT / "checks"

DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
MONTH_RE = r"^[0-9]{4}-(?:0[1-9]|1[0-2])$"
TIMESTAMP_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})$"
MONEY_RE = r"^-?[0-9]{1,12}(?:\.[0-9]{1,2})?$"
REGION_RE = r"^[0-9]{12}$"
COUNTY_RE = r"^[0-9]{6}000000$"
CARD_NO_RE = r"^[0-9A-Z]{9}$"


def _exp(kind: str, column: str, field: str, zh: str, en: str, **kwargs) -> dict:
    return {"type": kind, "kwargs": {"column": column, **kwargs}, "meta": {"field": field, "zh": zh, "en": en}}


def _column_expectations(c: Column) -> list[dict]:
    n = c.name
    z = f"{c.zh}（{n}）" if c.zh else n  # the Chinese name a supervisor reads, with the column it names
    out: list[dict] = []
    if c.required:
        out.append(_exp("expect_column_values_to_not_be_null", n, n, f"必填项{z}为空", f"{n} is empty"))
    if c.type is Type.ENUM:
        out.append(_exp("expect_column_values_to_be_in_set", n, n, f"{z}取值不在约定范围内（{'、'.join(c.values)}）",
                        f"{n} is not one of {', '.join(c.values)}", value_set=list(c.values)))
    elif c.type is Type.DATE:
        out.append(_exp("expect_column_values_to_match_regex", n, n, f"{z}不是YYYY-MM-DD格式的日期", f"{n} is not a YYYY-MM-DD date",
                        regex=DATE_RE))
        out.append(_exp("expect_column_values_to_be_in_set", f"{n}__real", n, f"{z}不是真实存在的日期",
                        f"{n} is not a real calendar date", value_set=[True]))
    elif c.type is Type.MONTH:
        out.append(_exp("expect_column_values_to_match_regex", n, n, f"{z}不是YYYY-MM格式的月份", f"{n} is not a YYYY-MM month",
                        regex=MONTH_RE))
    elif c.type is Type.TIMESTAMP:
        out.append(_exp("expect_column_values_to_match_regex", n, n, f"{z}不是带时区的ISO 8601时间",
                        f"{n} is not an ISO 8601 timestamp with offset", regex=TIMESTAMP_RE))
        out.append(_exp("expect_column_values_to_be_in_set", f"{n}__real", n, f"{z}不是真实存在的时间",
                        f"{n} is not a real point in time", value_set=[True]))
    elif c.type is Type.MONEY:
        out.append(_exp("expect_column_values_to_match_regex", n, n, f"{z}不是最多两位小数的金额",
                        f"{n} is not an amount with at most two decimals", regex=MONEY_RE))
        word_zh = "大于" if c.strict_min else "大于等于"
        word_en = "greater than" if c.strict_min else "at least"
        out.append(_exp("expect_column_values_to_be_between", f"{n}__yuan", n, f"{z}必须{word_zh}{c.min_value:g}",
                        f"{n} must be {word_en} {c.min_value:g}", min_value=c.min_value, strict_min=c.strict_min))
    elif c.type is Type.PERSON_ID:
        out.append(_exp("expect_column_values_to_be_in_set", f"{n}__valid", n, "身份证号无效（格式、校验位或出生日期）",
                        "the resident ID is not valid (format, check character or birth date)", value_set=[True]))
    elif c.type is Type.REGION_CODE:
        county = n == "county_code"
        out.append(_exp("expect_column_values_to_match_regex", n, n,
                        f"{z}不是12位{'县区' if county else '区划'}代码", f"{n} is not a 12-digit {'county' if county else 'region'} code",
                        regex=COUNTY_RE if county else REGION_RE))
    if n == "card_no":
        out.append(_exp("expect_column_values_to_match_regex", n, n, "社保卡号应为9位字母或数字",
                        "card_no is not 9 letters or digits", regex=CARD_NO_RE))
    return out


EXTRA = {
    "id_agrees": [
        _exp("expect_column_values_to_be_in_set", "gender__agrees", "gender", "性别与身份证号第17位不符",
             "gender does not agree with the ID's 17th digit", value_set=[True]),
        _exp("expect_column_values_to_be_in_set", "birth_date__agrees", "birth_date", "出生日期与身份证号不符",
             "birth_date does not agree with the ID", value_set=[True]),
    ],
    "known_village": [
        _exp("expect_column_values_to_be_in_set", "village_code__known", "village_code", "村（社区）代码不是已知的村级区划",
             "village_code is not a known village", value_set=[True]),
    ],
    "card_no_shape": [],
    "region_code_shape": [
        _exp("expect_column_values_to_be_in_set", "code__fits_level", "code", "区划代码与层级不符",
             "code does not fit its level (city CCCC00000000, county CCCCCC000000, township CCCCCCTTT000)",
             value_set=[True]),
    ],
    "parent_present": [
        _exp("expect_column_values_to_be_in_set", "parent_code__fits", "parent_code", "上级代码缺失或不是上一级区划",
             "parent_code is missing or is not the enclosing unit", value_set=[True]),
    ],
    "known_region": [
        _exp("expect_column_values_to_be_in_set", "region_code__known", "region_code", "负责区划不是已知区划或与角色层级不符",
             "region_code is not a known region of the role's level", value_set=[True]),
    ],
    "end_after_start": [
        _exp("expect_column_values_to_be_in_set", "end_date__after_start", "end_date", "释放日期早于开始日期",
             "end_date is before start_date", value_set=[True]),
    ],
}


def build_suite(source: Source) -> dict:
    expectations: list[dict] = []
    for c in source.columns:
        expectations.extend(_column_expectations(c))
    for name in source.extra_checks:
        expectations.extend(EXTRA[name])
    return {"name": source.name, "meta": {"zh": source.zh, "en": source.en, "key": source.key},
            "expectations": expectations}


def suite_path(source: Source) -> Path:
    return CHECKS_DIR / f"{source.name}.json"


def stale_suites() -> list[str]:
    """The sources whose suite in checks/ is missing or is not what the contract makes of it."""
    return [s.name for s in SOURCES
            if not suite_path(s).exists() or json.loads(suite_path(s).read_text(encoding="utf-8")) != build_suite(s)]


def write_suites(folder: Path = CHECKS_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in SOURCES:
        p = folder / f"{s.name}.json"
        p.write_text(json.dumps(build_suite(s), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        paths.append(p)
    return paths


# ---------------------------------------------------------------- running the suites


@cache
def _gx():
    import great_expectations as gx

    # GX fingerprints every batch below this size by hashing the whole frame (seconds for a month of card
    # events), for batch metadata this project never reads: switched off
    from great_expectations.execution_engine import pandas_execution_engine

    pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # pragma: no cover - only hides progress bars
        log.debug("could not switch off GX progress bars")
    datasource = context.data_sources.add_pandas("landing")
    return gx, context, datasource


# GX is used from the loader's thread and from the thread checking facts ahead: one at a time (its context,
# stores and suites are shared state; and Python runs one thread at a time anyway)
_GX_LOCK = threading.RLock()


def _suite_and_batch(source_name: str):
    with _GX_LOCK:
        return _suite_and_batch_once(source_name)


@cache
def _suite_and_batch_once(source_name: str):
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    gx, context, datasource = _gx()
    spec = json.loads((CHECKS_DIR / f"{source_name}.json").read_text(encoding="utf-8"))
    suite = gx.ExpectationSuite(name=spec["name"], meta=spec.get("meta", {}))
    for e in spec["expectations"]:
        suite.add_expectation_configuration(
            ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e.get("meta", {})))
    suite = context.suites.add(suite)
    asset = datasource.add_dataframe_asset(name=source_name)
    batch_definition = asset.add_batch_definition_whole_dataframe("delivery")
    return suite, batch_definition


def warm_up(sources: Iterable[str] | None = None) -> None:
    """Import GX and load the suites of `sources` (default: every source): seconds, worth doing before the
    first file is timed."""
    for name in sources if sources is not None else [s.name for s in SOURCES]:
        _suite_and_batch(name)


@dataclass
class Failure:
    row: int  # position in the frame
    field: str  # the delivered field it speaks of
    column: str  # the column the expectation checked (a field or a derived `field__check`)
    reason: str


# checks against other data: a row failing only these may pass once the missing regions are delivered
REFERENCE_CHECKS = frozenset({"village_code__known", "region_code__known", "parent_code__fits"})


def run_suite(source: Source, checked: pd.DataFrame) -> tuple[bool, list[Failure], list[dict]]:
    """Validate the derived frame; return (all passed, row failures, per-expectation statistics).

    Two passes: the whole suite with BOOLEAN_ONLY results (GX's fixed cost per expectation is most of
    the time on a delivery), then, in one more run, only the expectations that failed, with COMPLETE
    results, which list every failing row.
    """
    if checked.empty:
        return True, [], []
    with _GX_LOCK:
        return _run_suite(source, checked)


def _run_suite(source: Source, checked: pd.DataFrame) -> tuple[bool, list[Failure], list[dict]]:
    gx, _context, _datasource = _gx()
    suite, batch_definition = _suite_and_batch(source.name)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": checked[_suite_columns(source.name)]})
    overview = batch.validate(suite, result_format={"result_format": "BOOLEAN_ONLY"})
    for r in overview.results:
        _raise_if_broken(source, r)
    failed = [r.expectation_config for r in overview.results if not r.success]
    unexpected: dict[str, list] = {}
    if failed:
        again = gx.ExpectationSuite(name=f"{source.name}-failed",
                                    expectations=[copy.copy(_expectation(source.name, c)) for c in failed])
        detail = batch.validate(again, result_format={"result_format": "COMPLETE"})
        for r in detail.results:
            _raise_if_broken(source, r)
            unexpected[_key(r.expectation_config)] = list(r.result.get("unexpected_index_list") or [])
    failures: list[Failure] = []
    stats: list[dict] = []
    for r in overview.results:
        cfg = r.expectation_config
        meta = cfg.meta or {}
        rows = unexpected.get(_key(cfg), []) if not r.success else []
        stats.append({"expectation": cfg.type, "column": cfg.kwargs.get("column"), "field": meta.get("field"),
                      "success": bool(r.success), "unexpected": len(rows),
                      "zh": meta.get("zh"), "en": meta.get("en")})
        for pos in rows:
            row = pos if isinstance(pos, int | np.integer) else int(next(iter(pos.values())))
            failures.append(Failure(int(row), meta.get("field", ""), cfg.kwargs.get("column", ""),
                                    f"{meta.get('zh')} / {meta.get('en')}"))
    return bool(overview.success), failures, stats


def _key(cfg) -> str:
    """An expectation's identity across a suite and its copies: its type and arguments."""
    return json.dumps([cfg.type, cfg.kwargs], sort_keys=True, default=str)


def _raise_if_broken(source: Source, result) -> None:
    info = result.exception_info or {}
    if info.get("raised_exception"):
        raise RuntimeError(f"expectation {result.expectation_config.type} on {source.name} could not run: "
                           f"{info.get('exception_message')}")


@cache
def _suite_columns(source_name: str) -> list[str]:
    """The columns the suite reads: GX gets only those."""
    suite, _ = _suite_and_batch(source_name)
    return list(dict.fromkeys(e.configuration.kwargs["column"] for e in suite.expectations))


@cache
def _expectations_by_id(source_name: str) -> dict:
    suite, _ = _suite_and_batch(source_name)
    return {e.id: e for e in suite.expectations}


def _expectation(source_name: str, cfg):
    """The suite's expectation object behind a result's configuration."""
    return _expectations_by_id(source_name)[cfg.id]


def reasons_by_row(failures: Iterable[Failure], checked: pd.DataFrame,
                   personal: Mapping[str, Personal]) -> dict[int, tuple[str, str, bool]]:
    """Row position -> (fields, reason text with the offending values, personal data masked; whether only
    reference checks failed)."""
    out: dict[int, list[Failure]] = {}
    for f in failures:
        out.setdefault(f.row, []).append(f)
    result: dict[int, tuple[str, str, bool]] = {}
    for row, fs in out.items():
        if any(f.column not in REFERENCE_CHECKS for f in fs):
            # rejected for what it is: whether its region was known yet depends on the order days were
            # loaded in, so it is not part of the reason (the queue would depend on that order)
            fs = [f for f in fs if f.column not in REFERENCE_CHECKS]
        parts: list[str] = []
        fields: list[str] = []
        for f in fs:
            if f.field in fields and any(p.startswith(f.reason) for p in parts):
                continue
            value = checked.at[row, f.field] if f.field in checked.columns else None
            shown = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
            if f.field in personal and shown:
                shown = identity.mask(shown, personal[f.field])
            parts.append(f"{f.reason}（{f.field}='{shown}'）" if shown else f.reason)
            if f.field not in fields:
                fields.append(f.field)
        result[row] = (",".join(fields), "; ".join(parts), all(f.column in REFERENCE_CHECKS for f in fs))
    return result
