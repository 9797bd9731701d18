"""Behavioural features of every recipient over a trailing window, for the anomaly model.

`compute_features(conn, as_of, window_days)` returns one row per person in `recipient` (index person_id,
sorted), one float column per feature of `risk.scoring.catalogue.CATALOGUE` (same order), never NaN: a
feature with nothing to measure takes the catalogue's neutral value.

The window is (as_of - window_days, as_of]: a card event counts when its Beijing day `occurred_on`, a
payment when its `paid_on`, is after as_of - window_days and not after as_of. Days since certification
and since card use look at the whole history up to as_of; age is taken on as_of.

The warehouse does the heavy work. Each query scans a fact table once and returns a compact aggregate:
per (person, county) for the window's card events, per (person, pharmacy, day), per (person, benefit type,
account, period) for the window's payments, per person for certification events. Dates are bound
parameters and the SQL is plain (CASE, substr, MIN/MAX/SUM), the same on SQLite and PostgreSQL; pandas
finishes shares, peer medians and account sharing, vectorised.

Two things keep SQLite fast (a 100,000-person year: ~2M card events, ~1.2M payments):
- the per-person GROUP BYs group by `_pid(person_id)`, an expression (substr of the whole ID), not the bare
  column: on the bare column SQLite walks the person_id index and fetches every row at random, 4-5 times
  slower than one sequential scan and a sort. PostgreSQL hashes either way.
- dates and periods come back as text on SQLite (type_coerce to String) and pandas parses them in one
  vectorised call, instead of a Python date object per value; PostgreSQL's driver returns dates, which
  pandas takes as they are.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
from sqlalchemy import Connection, String, and_, case, func, literal_column, select, true, type_coerce

from risk.contract import RECURRING
from risk.db.tables import card_event, certification, payment, recipient
from risk.scoring.catalogue import CATALOGUE, FEATURE_NAMES

CARD_TYPES = ("medical", "pharmacy", "withdrawal", "transit", "other")
NIGHT_LAST_HOUR = 5  # Beijing hours 0-5 are night
COUNTY_DIGITS = 6  # a 12-digit region code starts with its 6-digit county
ID_LENGTH = 18


def compute_features(conn: Connection, as_of: date, window_days: int = 90,
                     county: str | None = None) -> pd.DataFrame:
    """One row per recipient (index person_id, sorted), the catalogue's features as float columns.

    With `county`, only the recipients whose village is in that county, and each query reads only their
    facts; the result equals those rows of the whole city's: the features that compare a person with
    others compare with peers of the same county (all in the part) or with the people paid into the same
    accounts (read whichever county they live in)."""
    if window_days <= 0:
        raise ValueError("window_days must be positive")
    start = as_of - timedelta(days=window_days)  # excluded: the window is (start, as_of]
    mine = _part(county)
    people = _recipients(conn, county)
    index = people.index
    out = pd.DataFrame(index=index)
    per_30 = 30.0 / window_days

    by_county = _card_by_county(conn, start, as_of, mine)
    card = _card_per_person(by_county, people).reindex(index)
    events = card["events"]
    for t in CARD_TYPES:
        out[f"{t}_per_30d"] = card[f"n_{t}"] * per_30
    out["night_share"] = _share(card["n_night"], events)
    out["away_share"] = _share(card["n_away"], events)
    out["distinct_counties"] = card["counties"]
    busiest = _pharmacy_busiest(conn, start, as_of, mine).reindex(index)
    out["pharmacy_busiest_day"] = busiest["day"]
    out["pharmacy_busiest_month"] = busiest["month"]
    out["card_amount_per_30d"] = card["cents"] / 100 * per_30
    out["card_max_amount"] = card["max_cents"] / 100
    out["withdrawal_amount_share"] = _share(card["withdrawal_cents"], card["cents"])

    paid = _payments_in_window(conn, start, as_of, mine)
    out["payment_peer_ratio"] = _peer_ratio(paid, people)
    out["days_since_certification"] = _days_since_certification(conn, people, as_of, mine)
    out["age"] = _age(people["birth_date"], as_of)
    pairs = paid[["person_id", "bank_account"]] if county is None else _account_pairs(conn, start, as_of, mine)
    out["account_people"] = _account_people(pairs)
    out["other_account_share"] = _other_account_share(paid, people)
    silent = index[card["last_use"].isna()]
    last_use = card["last_use"].fillna(_last_use_before_window(conn, silent, as_of).reindex(index))
    out["days_since_card_use"] = _days_since_card_use(conn, last_use, as_of)

    for name, f in CATALOGUE.items():
        out[name] = pd.to_numeric(out[name], errors="raise").astype("float64").fillna(f.neutral)
    return out[list(FEATURE_NAMES)]


# ---------------------------------------------------------------- people


def _part(county: str | None):
    """A function giving the condition 'this person_id column is one of the county's recipients' (always
    true without a county)."""
    if county is None:
        return lambda _column: true()
    members = select(recipient.c.person_id).where(func.substr(recipient.c.village_code, 1, COUNTY_DIGITS) == county)
    return lambda column: column.in_(members)


def _recipients(conn: Connection, county: str | None = None) -> pd.DataFrame:
    r = recipient.c
    q = select(r.person_id, r.village_code, _text(r.birth_date).label("birth_date"),
               _text(r.last_certified_on).label("last_certified_on"), r.bank_account)
    if county is not None:
        q = q.where(func.substr(r.village_code, 1, COUNTY_DIGITS) == county)
    people = _frame(conn, q,
                    index=None)
    people["county"] = people["village_code"].astype(str).str.slice(0, COUNTY_DIGITS)
    people["birth_date"] = _dates(people["birth_date"])
    people["last_certified_on"] = _dates(people["last_certified_on"])
    return people.set_index("person_id").sort_index()


def _age(birth: pd.Series, as_of: date) -> pd.Series:
    """Completed years on as_of (a birthday on as_of counts)."""
    not_yet = (birth.dt.month > as_of.month) | ((birth.dt.month == as_of.month) & (birth.dt.day > as_of.day))
    return (as_of.year - birth.dt.year - not_yet.astype(int)).astype(float)


# ---------------------------------------------------------------- card events


def _card_by_county(conn: Connection, start: date, as_of: date, mine) -> pd.DataFrame:
    """The window's card events per (person, county): counts per type and at night, amounts, last day."""
    e = card_event.c
    pid = _pid(e.person_id)

    def count_if(condition):
        return func.sum(case((condition, 1), else_=0))

    q = (
        select(
            pid.label("pid"),
            e.county_code,
            func.count().label("events"),
            *[count_if(e.event_type == t).label(f"n_{t}") for t in CARD_TYPES],
            count_if(e.occurred_hour <= NIGHT_LAST_HOUR).label("n_night"),
            func.sum(e.amount_cents).label("cents"),
            func.max(e.amount_cents).label("max_cents"),
            func.sum(case((e.event_type == "withdrawal", e.amount_cents), else_=0)).label("withdrawal_cents"),
            func.max(_text(e.occurred_on)).label("last_use"),
        )
        .where(_in_window(e.occurred_on, start, as_of), mine(e.person_id))
        .group_by(pid, e.county_code)
    )
    return _frame(conn, q, index=None)


def _card_per_person(by_county: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    """Per person: the sums over counties, events outside the home county, distinct counties."""
    home = people["county"].reindex(by_county["person_id"]).to_numpy()
    away = by_county["county_code"].astype(str).str.slice(0, COUNTY_DIGITS).to_numpy() != home
    by_county = by_county.assign(n_away=np.where(away, by_county["events"], 0),
                                 last_use=_dates(by_county["last_use"]))
    sums = ["events", *[f"n_{t}" for t in CARD_TYPES], "n_night", "n_away", "cents", "withdrawal_cents"]
    grouped = by_county.groupby("person_id")
    card = grouped[sums].sum().astype(float)
    card["max_cents"] = grouped["max_cents"].max().astype(float)
    card["counties"] = grouped.size().astype(float)
    card["last_use"] = grouped["last_use"].max()
    return card


def _pharmacy_busiest(conn: Connection, start: date, as_of: date, mine) -> pd.DataFrame:
    """Per person: the most pharmacy events at one institution on one day, and in one calendar month.

    SQL counts per (person, pharmacy, day); months are taken in pandas (SQL has no portable month
    function) on rows already aggregated."""
    e = card_event.c
    pid = _pid(e.person_id)
    q = (
        select(pid.label("pid"), e.institution_id, _text(e.occurred_on).label("day"), func.count().label("n"))
        .where(e.event_type == "pharmacy", _in_window(e.occurred_on, start, as_of), mine(e.person_id))
        .group_by(pid, e.institution_id, e.occurred_on)
    )
    days = _frame(conn, q, index=None)
    if days.empty:
        return pd.DataFrame({"day": pd.Series(dtype=float), "month": pd.Series(dtype=float)})
    days["month"] = _dates(days["day"]).to_numpy().astype("datetime64[M]")
    by_day = days.groupby("person_id")["n"].max()
    by_month = days.groupby(["person_id", "institution_id", "month"])["n"].sum().groupby(level=0).max()
    return pd.DataFrame({"day": by_day, "month": by_month}).astype(float)


def _certification_events(conn: Connection, as_of: date, mine) -> pd.Series:
    """Per person: the day of the latest certification card event on or before as_of."""
    e = card_event.c
    pid = _pid(e.person_id)
    q = (
        select(pid.label("pid"), func.max(_text(e.occurred_on)).label("day"))
        .where(e.event_type == "certification", e.occurred_on <= as_of, mine(e.person_id))
        .group_by(pid)
    )
    return _dates(_frame(conn, q)["day"])


def _last_use_before_window(conn: Connection, silent: pd.Index, as_of: date) -> pd.Series:
    """The last card use on or before as_of of people who did not use their card in the window (for the
    others it is in the window's aggregate): few people, looked up through the person_id index."""
    e = card_event.c

    def query(ids: list[str]):
        return (select(e.person_id, func.max(_text(e.occurred_on)).label("day"))
                .where(e.person_id.in_(ids), e.occurred_on <= as_of).group_by(e.person_id))

    return _dates(_for_people(conn, query, silent)["day"])


def _days_since_card_use(conn: Connection, last_use: pd.Series, as_of: date) -> pd.Series:
    """Days since the last card use; a card never used gets the days from the warehouse's first card
    event to as_of (as long as the records can tell; 0 with no card events at all)."""
    days = (pd.Timestamp(as_of) - last_use).dt.days.astype(float)
    if days.isna().any():
        first = conn.execute(select(func.min(_text(card_event.c.occurred_on)))
                             .where(card_event.c.occurred_on <= as_of)).scalar()
        span = 0.0 if first is None else float((pd.Timestamp(as_of) - pd.Timestamp(first)).days)
        days = days.fillna(span)
    return days


# ---------------------------------------------------------------- payments


def _payments_in_window(conn: Connection, start: date, as_of: date, mine) -> pd.DataFrame:
    """Per (person, benefit type, bank account, period): the amount paid in the window (by paid_on).
    About one row per payment of the window: compact enough to finish in pandas."""
    p = payment.c
    pid = _pid(p.person_id)
    q = (
        select(pid.label("pid"), p.benefit_type, p.bank_account, _text(p.period).label("period"),
               func.sum(p.amount_cents).label("cents"))
        .where(_in_window(p.paid_on, start, as_of), mine(p.person_id))
        .group_by(pid, p.benefit_type, p.bank_account, p.period)
    )
    paid = _frame(conn, q, index=None)
    paid["cents"] = paid["cents"].astype(float)
    return paid


def _peer_ratio(paid: pd.DataFrame, people: pd.DataFrame) -> pd.Series:
    """Largest over the person's recurring benefit types of (amount per paid period) / (median of that
    over people with the same type and home county)."""
    rec = paid[paid["benefit_type"].isin(RECURRING)]
    if rec.empty:
        return pd.Series(np.nan, index=people.index)
    per_type = rec.groupby(["person_id", "benefit_type"]).agg(cents=("cents", "sum"), periods=("period", "nunique"))
    per_type["monthly"] = per_type["cents"] / per_type["periods"]
    per_type = per_type.reset_index()
    per_type["county"] = people["county"].reindex(per_type["person_id"]).to_numpy()
    median = per_type.groupby(["benefit_type", "county"])["monthly"].transform("median")
    per_type["ratio"] = per_type["monthly"] / median
    return per_type.groupby("person_id")["ratio"].max()


def _account_pairs(conn: Connection, start: date, as_of: date, mine) -> pd.DataFrame:
    """(person, account) paid in the window, for every account one of the part's people was paid into:
    the people sharing an account may live in another county."""
    p = payment.c
    theirs = select(p.bank_account).where(_in_window(p.paid_on, start, as_of), mine(p.person_id))
    q = (select(_pid(p.person_id).label("pid"), p.bank_account)
         .where(_in_window(p.paid_on, start, as_of), p.bank_account.in_(theirs))
         .group_by(_pid(p.person_id), p.bank_account))
    return _frame(conn, q, index=None)


def _account_people(pairs: pd.DataFrame) -> pd.Series:
    """Distinct people paid in the window into any of the accounts the person was paid into."""
    pairs = pairs[["person_id", "bank_account"]].drop_duplicates()
    shared = pairs.merge(pairs.rename(columns={"person_id": "other"}), on="bank_account")
    return shared[["person_id", "other"]].drop_duplicates().groupby("person_id").size().astype(float)


def _other_account_share(paid: pd.DataFrame, people: pd.DataFrame) -> pd.Series:
    registered = people["bank_account"].reindex(paid["person_id"]).to_numpy()
    elsewhere = paid["cents"].where(paid["bank_account"].to_numpy() != registered, 0.0)
    sums = pd.DataFrame({"person_id": paid["person_id"], "elsewhere": elsewhere, "cents": paid["cents"]}) \
        .groupby("person_id")[["elsewhere", "cents"]].sum()
    return _share(sums["elsewhere"], sums["cents"])


# ---------------------------------------------------------------- certification


def _days_since_certification(conn: Connection, people: pd.DataFrame, as_of: date, mine) -> pd.Series:
    """Days from the latest certification on or before as_of (the recipients row, any delivered
    last_certified_on, a certification card event); with none on record, from the first day of the
    first paid recurring period (as contract §4 counts); NaN (neutral later) with neither."""
    c = certification.c
    delivered = _frame(conn, select(_pid(c.person_id).label("pid"), func.max(_text(c.certified_on)).label("d"))
                       .where(c.certified_on <= as_of, mine(c.person_id)).group_by(_pid(c.person_id)))["d"]
    current = people["last_certified_on"].where(people["last_certified_on"] <= pd.Timestamp(as_of))
    latest = pd.concat([current, _dates(delivered).reindex(people.index),
                        _certification_events(conn, as_of, mine).reindex(people.index)], axis=1).max(axis=1)
    never = latest.index[latest.isna()]
    if len(never):
        p = payment.c

        def query(ids: list[str]):
            return (select(p.person_id, func.min(_text(p.period)).label("period"))
                    .where(p.person_id.in_(ids), p.benefit_type.in_(RECURRING), p.period <= as_of)
                    .group_by(p.person_id))

        first_paid = _dates(_for_people(conn, query, never)["period"])
        latest = latest.fillna(first_paid.reindex(people.index))
    return (pd.Timestamp(as_of) - latest).dt.days.astype(float)


# ---------------------------------------------------------------- helpers


def _for_people(conn: Connection, query, people: pd.Index, chunk: int = 10_000) -> pd.DataFrame:
    """`query(ids)` for a few people (found through the person_id index), one frame indexed by person_id.
    Chunks keep the bound parameters inside every database's limit (SQLite 32,766 since 3.32, PostgreSQL
    65,535) while one statement covers 10,000 people: a planner without statistics that scans the table
    instead of using the index still scans it once, not once per few hundred people."""
    ids = [str(x) for x in people]
    if not ids:
        return pd.DataFrame(columns=list(query([]).selected_columns.keys())).set_index("person_id")
    return pd.concat([_frame(conn, query(ids[i:i + chunk])) for i in range(0, len(ids), chunk)])


def _pid(column):
    """The person_id as an expression, for GROUP BY: see the module docstring (SQLite's index walk).
    Constants are literal so that the SELECT and GROUP BY expressions are textually equal (PostgreSQL)."""
    return func.substr(column, literal_column("1"), literal_column(str(ID_LENGTH)))


def _text(column):
    """A date column read back without per-value conversion (text on SQLite, a date on PostgreSQL)."""
    return type_coerce(column, String)


def _dates(values: pd.Series) -> pd.Series:
    """ISO date text (SQLite) or dates (PostgreSQL) as datetime64, missing as NaT."""
    present = values.dropna()
    if present.empty:
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[s]")
    if isinstance(present.iloc[0], str):
        return pd.to_datetime(values, format="%Y-%m-%d")
    return pd.to_datetime(values)


def _in_window(day_column, start: date, as_of: date):
    return and_(day_column > start, day_column <= as_of)


def _frame(conn: Connection, query, index: str | None = "person_id") -> pd.DataFrame:
    """Run `query`; its `pid` column (if any) becomes person_id; the index when `index` is given."""
    result = conn.execute(query)
    columns = list(result.keys())
    # The driver's own tuples, fetched at once: the selected columns need no SQLAlchemy result processing
    # (dates come as text, see _text), and Row objects cost more than the query on big aggregates.
    rows = result.cursor.fetchall() if result.cursor is not None else []
    result.close()
    frame = pd.DataFrame.from_records(rows, columns=columns)
    frame = frame.rename(columns={"pid": "person_id"})
    for column in frame.columns:  # PostgreSQL sums BIGINT into NUMERIC, which psycopg reads as Decimal
        values = frame[column].dropna()
        if frame[column].dtype == object and len(values) and isinstance(values.iloc[0], Decimal):
            frame[column] = frame[column].astype(float)
    return frame.set_index(index) if index else frame


def _share(part: pd.Series, whole: pd.Series) -> pd.Series:
    """part / whole, NaN (neutral later) where whole is 0 or missing."""
    whole = whole.astype(float)
    return part.astype(float) / whole.where(whole > 0)
