"""The columns Great Expectations checks besides the delivered ones (`derive`): each date, timestamp, amount
and ID as parsed (`<field>__real`, `__utc`, `__yuan`, `__norm`, `__valid`), and what a row must agree
with beyond itself (`__agrees`, `__known`, `__fits`): the ID's birth date and gender, the villages and
regions the warehouse knows (`Context`), the region hierarchy."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from risk import domain
from risk.contract import Source, Type
from risk.domain import Role
from risk.identity import numbers as identity
from risk.ingest.checks import DATE_RE, MONEY_RE, TIMESTAMP_RE


@dataclass(frozen=True)
class Context:
    """What the checks know beyond the file itself."""

    villages: frozenset[str]
    regions: dict[str, str]  # code -> level, in the warehouse
    today: date
    rejected: frozenset[str] = frozenset()  # codes of this regions file that fail: no parent to others


def _real_dates(raw: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce")
    return _ok(raw, parsed.notna())


def _ok(raw: pd.Series, ok: pd.Series) -> pd.Series:
    """True/False where a value was delivered, missing where it was not (GX then skips the row)."""
    return pd.Series(np.where(raw.isna(), None, ok.to_numpy(dtype=bool)), index=raw.index, dtype="object")


def normalised_ids(raw: pd.Series, today: date) -> pd.Series:
    """The §3 normalised ID for each value, missing where it cannot be made valid (vectorised over the
    distinct values: a person appears in many rows)."""
    codes, uniques = pd.factorize(raw)
    normal = identity.normalise_many(pd.Series(uniques, dtype="str"), today).to_numpy(dtype=object)
    mapped = np.where(codes >= 0, normal[np.maximum(codes, 0)] if len(normal) else None, None)
    return pd.Series(mapped, index=raw.index, dtype="str")


def derive(source: Source, frame: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """The frame GX validates: delivered text (empty as missing) plus the derived check columns."""
    df = frame.replace("", None) if len(frame) else frame.copy()
    for c in source.columns:
        n = c.name
        col = df[n]
        if c.type is Type.DATE:
            df[f"{n}__real"] = _real_dates(col.where(col.str.match(DATE_RE, na=False)))
        elif c.type is Type.TIMESTAMP:
            shaped = col.where(col.str.match(TIMESTAMP_RE, na=False))
            parsed = pd.to_datetime(shaped, format="ISO8601", utc=True, errors="coerce")
            df[f"{n}__real"] = _ok(shaped, parsed.notna())
            df[f"{n}__utc"] = parsed  # kept for storing (the Beijing day and hour): not checked by the suite
        elif c.type is Type.MONEY:
            df[f"{n}__yuan"] = pd.to_numeric(col.where(col.str.match(MONEY_RE, na=False)), errors="coerce")
        elif c.type is Type.PERSON_ID:
            df[f"{n}__norm"] = normalised_ids(col, ctx.today)
            df[f"{n}__valid"] = _ok(col, df[f"{n}__norm"].notna())
    extra = set(source.extra_checks)
    if "id_agrees" in extra:
        pid = df["person_id__norm"].fillna("")
        valid = pid.str.len() == 18
        odd = pd.to_numeric(pid.str.slice(16, 17), errors="coerce") % 2 == 1
        gender_ok = pd.Series(np.where(odd, "M", "F"), index=df.index) == df["gender"]
        birth_ok = (pid.str.slice(6, 10) + "-" + pid.str.slice(10, 12) + "-" + pid.str.slice(12, 14)) == df["birth_date"]
        df["gender__agrees"] = _ok(df["gender"].where(valid), gender_ok)
        df["birth_date__agrees"] = _ok(df["birth_date"].where(valid), birth_ok)
    if "known_village" in extra:
        df["village_code__known"] = _ok(df["village_code"], pd.Series(df["village_code"].to_numpy(dtype=object), index=df.index).isin(ctx.villages))
    if "region_code_shape" in extra:
        df["code__fits_level"] = _ok(df["code"], _fits_level(df["code"].fillna(""), df["level"].fillna("")))
    if "parent_present" in extra:
        in_file = {c: lv for c, lv in zip(df["code"].fillna(""), df["level"].fillna(""), strict=True)
                   if c not in ctx.rejected}
        levels = {**ctx.regions, **in_file}
        expected_parent = df.apply(lambda r: domain.parent(r["code"], r["level"]), axis=1) if len(df) else df["code"]
        fits = (df["parent_code"].fillna("") == expected_parent.fillna("")) & (
            df["parent_code"].isna() | df["parent_code"].map(lambda p: p in levels))
        df["parent_code__fits"] = _ok(df["code"], fits)
    if "known_region" in extra:
        role_level = df["role"].map({role.value: role.level.value for role in Role})
        known = df["region_code"].map(ctx.regions.get)
        df["region_code__known"] = _ok(df["region_code"], known.notna() & (known == role_level))
    if "end_after_start" in extra:
        ok = df["end_date"].fillna("9999-12-31") >= df["start_date"].fillna("")
        df["end_date__after_start"] = _ok(df["end_date"], ok)
    return df.reset_index(drop=True)


_LEVEL_SHAPES = {
    "city": re.compile(r"^[0-9]{4}0{8}$"),
    "county": re.compile(r"^[0-9]{6}0{6}$"),
    "township": re.compile(r"^[0-9]{9}000$"),
    "village": re.compile(r"^[0-9]{12}$"),
}


def _fits_level(code: pd.Series, level: pd.Series) -> pd.Series:
    def fits(c: str, lv: str) -> bool:
        shape = _LEVEL_SHAPES.get(lv)
        if not shape or not shape.match(c):
            return False
        nested = {"city": c[4:6] == "00", "county": c[4:6] != "00", "township": c[6:9] != "000",
                  "village": c[6:9] != "000" and c[9:] != "000"}
        return nested[lv]

    return pd.Series([fits(c, lv) for c, lv in zip(code, level, strict=True)], index=code.index)
