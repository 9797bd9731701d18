"""A plain reference reading of a landing: contract §1-3 loading and the §4 rules, in pandas.

It knows nothing of how the generator works; tests use it to check that the generator's truth files
(built by construction) agree with what the contract demands from the files actually written. It is
not the project's engine: slow paths are fine, clarity first.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from risk.contract import BY_NAME, RECURRING, SOURCES, Kind, Source, Type
from risk.identity.numbers import try_normalise

TODAY = date(2100, 1, 1)
_TS = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})"


def read_file(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                       compression="gzip" if path.name.endswith(".gz") else None)


def _valid_dates(s: pd.Series) -> pd.Series:
    return s.str.fullmatch(r"\d{4}-\d{2}-\d{2}") & pd.to_datetime(s, format="%Y-%m-%d", errors="coerce").notna()


def _row_errors(src: Source, df: pd.DataFrame, known_regions: dict[str, str]) -> pd.Series:
    """A boolean per row: does it break the contract?"""
    bad = pd.Series(False, index=df.index)
    for col in src.columns:
        s = df[col.name] if col.name in df else pd.Series("", index=df.index)
        empty = s == ""
        if col.required:
            bad |= empty
        ok = pd.Series(True, index=df.index)
        if col.type == Type.DATE:
            ok = _valid_dates(s)
        elif col.type == Type.MONTH:
            ok = s.str.fullmatch(r"\d{4}-(0[1-9]|1[0-2])")
        elif col.type == Type.TIMESTAMP:
            ok = s.str.fullmatch(_TS) & pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601").notna()
        elif col.type == Type.MONEY:
            ok = s.str.fullmatch(r"-?\d+(?:\.\d{1,2})?")
            value = pd.to_numeric(s.where(ok, "0"))
            ok &= (value > col.min_value) if col.strict_min else (value >= col.min_value)
        elif col.type == Type.PERSON_ID:
            ok = s.map(lambda v: try_normalise(v, TODAY)[0] is not None)
        elif col.type == Type.REGION_CODE:
            ok = s.str.fullmatch(r"\d{12}")
        elif col.type == Type.ENUM:
            ok = s.isin(col.values)
        bad |= ~empty & ~ok.astype(bool)
    if src.name == "recipients":
        norm = df.person_id.map(lambda v: try_normalise(v, TODAY)[0] or "")
        birth = norm.str[6:10] + "-" + norm.str[10:12] + "-" + norm.str[12:14]
        gender = np.where(norm.str[16:17].map(lambda d: d.isdigit() and int(d) % 2 == 1), "M", "F")
        bad |= (df.birth_date != birth) | (df.gender != gender)
        bad |= ~df.village_code.map(lambda c: known_regions.get(c) == "village")
        bad |= df.card_no.str.len() != 9
    if src.name == "regions":
        here = set(df.code)
        bad |= (df.parent_code != "") & ~df.parent_code.map(lambda c: c in known_regions or c in here)
    if src.name == "supervisors":
        bad |= ~df.region_code.map(lambda c: c in known_regions)
    if src.name == "incarcerations":
        bad |= (df.end_date != "") & (df.end_date < df.start_date)
    return bad


@dataclass
class Loaded:
    facts: dict[str, list[pd.DataFrame]] = field(default_factory=dict)
    upserts: dict[str, dict[str, dict]] = field(default_factory=dict)
    rejects: set[tuple[str, str, int, str]] = field(default_factory=set)
    seen: dict[str, dict[str, tuple]] = field(default_factory=dict)


def load(landing: str | Path) -> Loaded:
    out = Loaded()
    regions: dict[str, str] = {}
    for day_dir in sorted(p for p in Path(landing).iterdir() if p.is_dir()):
        day = day_dir.name
        for src in SOURCES:
            path = next((p for p in (day_dir / f"{src.name}.csv", day_dir / f"{src.name}.csv.gz") if p.exists()),
                        None)
            if path is None:
                continue
            df = read_file(path)
            df["_line"] = np.arange(len(df)) + 2
            bad = _row_errors(src, df, regions)
            for line, key in zip(df._line[bad], df[src.key][bad], strict=True):
                out.rejects.add((src.name, day, int(line), key))
            good = df[~bad]
            if src.kind == Kind.UPSERT:
                table = out.upserts.setdefault(src.name, {})
                for row in good.to_dict("records"):
                    table[row[src.key]] = row
                if src.name == "regions":
                    regions.update(dict(zip(good.code, good.level, strict=True)))
                continue
            seen = out.seen.setdefault(src.name, {})
            content = list(zip(*[good[c] if c in good else [""] * len(good) for c in src.column_names],
                               strict=True))
            keep = []
            for k, (key, row, line) in enumerate(zip(good[src.key], content, good._line, strict=True)):
                if key not in seen:
                    seen[key] = row
                    keep.append(k)
                elif seen[key] != row:
                    out.rejects.add((src.name, day, int(line), key))
            out.facts.setdefault(src.name, []).append(good.iloc[keep])
    return out


def _cents(s: pd.Series) -> pd.Series:
    return s.map(lambda v: int(Decimal(v) * 100)).astype(np.int64)


def _norm(s: pd.Series) -> pd.Series:
    uniq = {v: try_normalise(v, TODAY)[0] for v in s.unique()}
    return s.map(uniq)


def _month_first(period: pd.Series) -> pd.Series:
    return pd.to_datetime(period + "-01")


def alerts(loaded: Loaded) -> dict[tuple[str, str], int]:
    """(rule, person_id) -> amount_at_risk in cents."""
    def facts(name: str) -> pd.DataFrame:
        return pd.concat(loaded.facts.get(name, []) or [pd.DataFrame(columns=BY_NAME[name].column_names)],
                         ignore_index=True)
    pay, cards, deaths, jail = facts("payments"), facts("card_events"), facts("deaths"), facts("incarcerations")
    pay["pid"], pay["cents"] = _norm(pay.person_id), _cents(pay.amount)
    pay["first"] = _month_first(pay.period)
    pay["last"] = pay["first"] + pd.offsets.MonthEnd(0)
    rec = pay[pay.benefit_type.isin(RECURRING)]
    cards["pid"], cards["cents"] = _norm(cards.person_id), _cents(cards.amount)
    cards["day"] = (pd.to_datetime(cards.occurred_at, utc=True, format="ISO8601")
                    .dt.tz_convert("Asia/Shanghai").dt.tz_localize(None).dt.normalize())
    deaths["pid"] = _norm(deaths.person_id)
    death = pd.to_datetime(deaths.groupby("pid").death_date.min())
    out: dict[tuple[str, str], int] = {}

    def put(rule: str, sums: pd.Series) -> None:
        for pid, cents in sums.items():
            out[(rule, pid)] = int(cents)

    # deceased_payment
    d = rec.assign(death=rec.pid.map(death)).dropna(subset=["death"])
    d = d[d["first"] > d.death.dt.to_period("M").dt.to_timestamp()]
    put("deceased_payment", d.groupby("pid").cents.sum())
    # card_after_death
    c = cards[cards.event_type.isin(["medical", "pharmacy", "certification", "transit"])]
    c = c.assign(death=c.pid.map(death)).dropna(subset=["death"])
    c = c[c.day > c.death]
    admitted = pd.to_datetime(c.admitted_on.replace("", None))
    c = c[~((c.event_type == "medical") & admitted.notna() & (admitted <= c.death))]
    put("card_after_death", c.groupby("pid").cents.sum())
    # incarcerated_payment
    jail["pid"] = _norm(jail.person_id)
    cust = jail[jail.sentence_type == "custodial"].copy()
    cust["from"] = pd.to_datetime(cust.start_date).dt.to_period("M").dt.to_timestamp() + pd.offsets.MonthBegin(1)
    cust["to"] = pd.to_datetime(cust.end_date.replace("", "2999-12-31")).dt.to_period("M").dt.to_timestamp()
    j = rec[rec.benefit_type.isin(["resident_pension", "employee_pension"])].merge(
        cust[["pid", "from", "to"]], on="pid")
    j = j[(j["first"] >= j["from"]) & (j["first"] <= j["to"])].drop_duplicates("payment_id")
    put("incarcerated_payment", j.groupby("pid").cents.sum())
    # dual_benefit
    types = rec.groupby(["pid", "period"]).benefit_type.agg(set)
    both = types[types.map(lambda t: {"resident_pension", "employee_pension"} <= t)].index
    unemp = types[types.map(lambda t: "unemployment" in t and bool(t & {"resident_pension", "employee_pension"}))].index
    key = pd.MultiIndex.from_frame(rec[["pid", "period"]])
    dual = rec[(key.isin(both) & (rec.benefit_type == "resident_pension").to_numpy())
               | (key.isin(unemp) & (rec.benefit_type == "unemployment").to_numpy())]
    put("dual_benefit", dual.groupby("pid").cents.sum())
    # duplicate_payment
    dup = rec.sort_values(["paid_on", "payment_id"])
    dup = dup[dup.duplicated(["pid", "benefit_type", "period"], keep="first")]
    fun = pay[(pay.benefit_type == "funeral_grant") & pay.pid.isin(death.index)].sort_values(["paid_on", "payment_id"])
    fun = fun[fun.duplicated(["pid"], keep="first")]
    put("duplicate_payment", pd.concat([dup, fun]).groupby("pid").cents.sum())
    # shared_account
    n = pay.groupby(["bank_account", "period"]).pid.nunique()
    shared = n[n >= 3].index
    s = pay[pd.MultiIndex.from_frame(pay[["bank_account", "period"]]).isin(shared)]
    put("shared_account", s.groupby("pid").cents.sum())
    # underage_pension
    u = rec[rec.benefit_type.isin(["resident_pension", "employee_pension"])].copy()
    male = u.pid.str[16].astype(int) % 2 == 1
    years = np.where(u.benefit_type == "resident_pension", 60, np.where(male, 50, 45))
    year = (u.pid.str[6:10].astype(int) + years).astype(str)
    floor = pd.to_datetime(year + u.pid.str[10:14], format="%Y%m%d", errors="coerce")
    floor = floor.fillna(pd.to_datetime(year + "0228", format="%Y%m%d"))  # Feb 29 birthdays
    u = u[u["first"] < floor]
    put("underage_pension", u.groupby("pid").cents.sum())
    # certification_overdue
    recipients = pd.DataFrame(list(loaded.upserts.get("recipients", {}).values()))
    recipients["pid"] = _norm(recipients.person_id)
    certs = pd.concat([
        recipients.loc[recipients.last_certified_on != "", ["pid"]].assign(
            cert=pd.to_datetime(recipients.last_certified_on[recipients.last_certified_on != ""])),
        cards.loc[cards.event_type == "certification", ["pid"]].assign(
            cert=cards.day[cards.event_type == "certification"]),
    ]).dropna().sort_values("cert")
    r = rec.sort_values("last").copy()
    r = pd.merge_asof(r, certs.rename(columns={"cert": "latest"}), left_on="last", right_on="latest", by="pid")
    first_paid = r.groupby("pid")["first"].transform("min")
    has_any = r.pid.isin(certs.pid)
    limit = r.latest.where(r.latest.notna(), first_paid) + pd.DateOffset(years=1)
    loaded.ambiguous = int((r.latest.isna() & has_any & (r["last"] > limit)).sum())  # type: ignore[attr-defined]
    put("certification_overdue", r[r["last"] > limit].groupby("pid").cents.sum())
    return out
