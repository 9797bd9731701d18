"""Background facts, vectorised: monthly payments, card use, yearly certifications, deaths and the
lump sums that follow them. Everything here is lawful by construction; planted.py adds the rest.
Payments and card use are drawn one month at a time (months.py streams them)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from risk.contract import BENEFIT_TYPES, EVENT_TYPES
from risk.synth.people import EMP, NAT, Population
from risk.synth.regions import NIGHT_COUNTIES, OUTSIDE_COUNTIES, Regions
from risk.synth.timeline import Calendar

ET = {t: i for i, t in enumerate(EVENT_TYPES)}  # event type codes
PAY_COLS = ["pi", "btype", "period", "cents", "paid_on", "holder", "order", "seq"]  # btype: BENEFIT_TYPES index
CARD_COLS = ["pi", "ts", "etype", "county", "inst", "cents", "admitted", "utc", "file_month"]
DEATH_COLS = ["pi", "form", "death", "source", "reported", "day"]
JAIL_COLS = ["pi", "form", "sentence", "start", "end", "day"]
TYPE_P = {"pharmacy": 0.38, "medical": 0.30, "transit": 0.12, "withdrawal": 0.11, "other": 0.09}


def county_codes(regions: Regions) -> list[str]:
    """12-digit county codes indexed by the `county` column of card events."""
    return [c + "000000" for c in regions.counties] + OUTSIDE_COUNTIES + NIGHT_COUNTIES


def paid_in(pop: Population, m: int) -> np.ndarray:
    """Persons whose regular monthly payment for period m is due (from `first` to `last`)."""
    return np.flatnonzero((pop.first <= m) & (m <= pop.last) & (pop.benefit >= 0))


def lump_sums(rng: np.random.Generator, pop: Population, cal: Calendar) -> pd.DataFrame:
    """Funeral grants and the like for about half of the background deaths, 1-2 months later."""
    dead = np.flatnonzero(~np.isnat(pop.death) & ~pop.planted)
    dead = dead[rng.random(len(dead)) < 0.5]
    month = cal.month_of(pop.death[dead]) + rng.integers(1, 3, len(dead))
    dead, month = dead[month < cal.months], month[month < cal.months]
    rows = []
    for kind, p, lo, hi in (("funeral_grant", 1.0, 200000, 800000),
                            ("survivor_benefit", 0.5, 1000000, 5000000),
                            ("account_inheritance", 0.4, 100000, 2000000)):
        take = rng.random(len(dead)) < p
        if kind == "survivor_benefit":
            take &= pop.benefit[dead] == EMP
        who, m = dead[take], month[take]
        rows.append(pd.DataFrame({
            "pi": who, "btype": BENEFIT_TYPES.index(kind), "period": m,
            "cents": rng.integers(lo, hi, len(who)) // 100 * 100,
            "paid_on": (cal.month0 + m).astype("datetime64[D]") + 9, "holder": who, "order": 0, "seq": -1,
        }))
    return pd.concat(rows, ignore_index=True)


def card_rate(rng: np.random.Generator, n: int) -> np.ndarray:
    """Each person's mean number of everyday card events a month."""
    return rng.gamma(2.0, 0.85, n)


def card_events(rng: np.random.Generator, pop: Population, cal: Calendar, regions: Regions, rate: np.ndarray,
                m: int) -> pd.DataFrame:
    """Everyday card use in month m: daytime, mostly in the home county; cut at `card_until`."""
    counts = rng.poisson(rate)
    counts[pop.first > m] = 0
    pi = np.repeat(np.arange(pop.n), counts)
    n = len(pi)
    month_first = cal.first(m)
    day = month_first + (rng.random(n) * cal.days_in(m)).astype("timedelta64[D]")
    secs = (rng.uniform(7, 21.5, n) * 3600).astype(np.int64)
    ts = day.astype("datetime64[s]") + secs.astype("timedelta64[s]")
    etype = rng.choice([ET[t] for t in TYPE_P], size=n, p=list(TYPE_P.values())).astype(np.int8)
    home = pop.county_of(regions)[pi]
    n_city = len(regions.counties)
    u = rng.random(n)
    county = np.where(u < 0.92, home, np.where(u < 0.97, rng.integers(0, n_city, n),
                                               n_city + rng.integers(0, len(OUTSIDE_COUNTIES), n)))
    cents = _event_amounts(rng, etype)
    inpatient = (etype == ET["medical"]) & (rng.random(n) < 0.04)
    cents = np.where(inpatient, np.round(rng.lognormal(8.0, 0.5, n) * 100).astype(np.int64), cents)
    admitted = np.where(inpatient, day - rng.integers(2, 20, n).astype("timedelta64[D]"), NAT)
    cut = pop.card_until[pi]
    keep = np.isnat(cut) | (day <= cut)
    return pd.DataFrame({
        "pi": pi[keep], "ts": ts[keep], "etype": etype[keep], "county": county[keep],
        "inst": institution(rng, county, etype)[keep], "cents": cents[keep], "admitted": admitted[keep],
        "utc": False, "file_month": m,
    })


def _event_amounts(rng: np.random.Generator, etype: np.ndarray) -> np.ndarray:
    n = len(etype)
    withdrawal = np.array([20000, 30000, 50000, 100000])[rng.integers(0, 4, n)]
    return np.select(
        [etype == ET["medical"], etype == ET["pharmacy"], etype == ET["transit"],
         etype == ET["withdrawal"], etype == ET["other"]],
        [np.round(rng.lognormal(5.0, 0.9, n) * 100), np.round(rng.lognormal(3.8, 0.7, n) * 100),
         np.full(n, 200), withdrawal, np.round(rng.lognormal(3.0, 0.9, n) * 100)],
        0,
    ).astype(np.int64)


def institution(rng: np.random.Generator, county: np.ndarray, etype: np.ndarray) -> np.ndarray:
    """Institution numbers: county slot (2 digits), type (1 digit), a pool number (3 digits)."""
    pool = np.array([40, 80, 10, 25, 1, 30])[etype]  # medical, pharmacy, withdrawal, cert, transit, other
    return county * 10000 + etype.astype(np.int64) * 1000 + (rng.random(len(county)) * pool).astype(np.int64)


def certifications(rng: np.random.Generator, pop: Population, cal: Calendar, regions: Regions) -> pd.DataFrame:
    """Yearly certification events: at most 330 days apart, the first within 330 days of the last
    certification on record (or of the first paid period), so no paid period ever runs over."""
    who = np.flatnonzero(pop.cert_events)
    first_day = (cal.month0 + pop.first[who]).astype("datetime64[D]")
    base = np.where(np.isnat(pop.c0[who]), first_day, pop.c0[who])
    k = int(np.ceil(cal.months * 31 / 250)) + 2
    lo = np.maximum(base + 250, np.minimum(first_day, base + 329))
    e1 = lo + (rng.random(len(who)) * (base + 330 - lo).astype(int)).astype("timedelta64[D]")
    gaps = rng.integers(250, 331, (len(who), k - 1)).astype("timedelta64[D]")
    ev = np.concatenate([e1[:, None], e1[:, None] + np.cumsum(gaps, axis=1)], axis=1)
    pi = np.repeat(who, k)
    day = ev.ravel()
    cut = pop.card_until[pi]
    keep = (day >= cal.first_day) & (day <= cal.end) & (np.isnat(cut) | (day <= cut))
    pi, day = pi[keep], day[keep]
    n = len(pi)
    ts = day.astype("datetime64[s]") + (rng.uniform(8, 17.5, n) * 3600).astype("timedelta64[s]")
    county = pop.county_of(regions)[pi]
    etype = np.full(n, ET["certification"], dtype=np.int8)
    return pd.DataFrame({
        "pi": pi, "ts": ts, "etype": etype, "county": county, "inst": institution(rng, county, etype),
        "cents": 0, "admitted": np.full(n, NAT), "utc": False, "file_month": cal.month_of(day),
    })


def death_records(rng: np.random.Generator, pop: Population, cal: Calendar) -> pd.DataFrame:
    """One to three departments report each background death, mostly within weeks, some months late."""
    dead = np.flatnonzero(~np.isnat(pop.death) & ~pop.planted)
    n_src = rng.choice([1, 2, 3], size=len(dead), p=[0.5, 0.35, 0.15])
    pi = np.repeat(dead, n_src)
    order = np.concatenate([rng.permutation(3)[:k] for k in n_src]) if len(dead) else np.array([], int)
    late = rng.random(len(pi)) < 0.15
    lag = np.where(late, rng.integers(41, 180, len(pi)), rng.integers(2, 40, len(pi)))
    reported = pop.death[pi] + lag.astype("timedelta64[D]")
    same = rng.random(len(pi)) < 0.4  # sources often share the same day
    first_of = pd.Series(reported).groupby(pi).transform("first").to_numpy().astype("datetime64[D]")
    reported = np.where(same, first_of, reported)
    day = cal.report_days(reported)
    born19 = np.array([str(b)[:2] == "19" for b in pop.birth[pi]], dtype=bool)
    form = np.where(born19 & (rng.random(len(pi)) < 0.04), "legacy15",
                    np.where(rng.random(len(pi)) < 0.5, "lower_x", "std"))
    frame = pd.DataFrame({
        "pi": pi, "form": form, "death": pop.death[pi],
        "source": np.array(["public_security", "health", "civil_affairs"], dtype=object)[order],
        "reported": reported, "day": day,
    })
    return frame[frame.day <= cal.final_day]
