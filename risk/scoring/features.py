"""Behavioural features of every recipient over a trailing window, for the anomaly model.

`compute_features(conn, as_of, window_days)` returns one row per person in `recipient` (index person_id,
sorted), one float column per feature of `risk.scoring.catalogue.CATALOGUE` (same order), never NaN: a
feature with nothing to measure takes the catalogue's neutral value.

The window is (as_of - window_days, as_of]: a card event counts when its Beijing day `occurred_on`, a
payment when its `paid_on`, is after as_of - window_days and not after as_of. Days since certification
and since card use look at the whole history up to as_of; age is taken on as_of.

The warehouse does the work, set-based: each query scans a fact table once and returns at most one row
per person (the four recurring benefit types as columns). The home county (a join of each person's
per-county aggregate with `recipient`), the busiest pharmacy day and calendar month, distinct paid
periods, payments into another account than the registered one, the people sharing an account (a
window function over the window's (person, account) pairs) and the latest certification of three
sources are all SQL. pandas only divides, takes the peer medians (no portable SQL median) and turns
dates into days, column by column. Dates are bound parameters and the SQL is plain (CASE, substr,
MIN/MAX/SUM, COUNT DISTINCT, UNION ALL, a window function, CTEs), the same on SQLite and PostgreSQL; a
calendar month is a CASE over the window's month boundaries, bound as dates. No query joins two derived
tables (see `_pharmacy_busiest`). How the queries are read: risk/scoring/aggregates.py.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import BigInteger, Connection, case, cast, func, literal_column, null, select, true, union_all

from risk import domain
from risk.contract import RECURRING
from risk.db.tables import card_event, certification, payment, recipient
from risk.domain import Level
from risk.scoring.aggregates import (
    as_text,
    count_if,
    dates,
    for_people,
    frame,
    in_chunks,
    person_key,
    share,
    sum_int,
    within_window,
)
from risk.scoring.catalogue import CATALOGUE, FEATURE_NAMES

CARD_TYPES = ("medical", "pharmacy", "withdrawal", "transit", "other")
NIGHT_LAST_HOUR = 5  # Beijing hours 0-5 are night


def compute_features(conn: Connection, as_of: date, window_days: int = 90,
                     counties: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per recipient (index person_id, sorted), the catalogue's features as float columns.

    With `counties` (a part: see risk.detection.scope.groups), only the recipients whose village is in one of them,
    and each query reads only their facts; the result equals those rows of the whole city's: the features
    that compare a person with others compare with peers of the same county (all in the part) or with the
    people paid into the same accounts (read whichever county they live in)."""
    if window_days <= 0:
        raise ValueError("window_days must be positive")
    start = as_of - timedelta(days=window_days)  # excluded: the window is (start, as_of]
    mine = part_members(counties)
    people = _recipients(conn, counties)
    index = people.index
    out = pd.DataFrame(index=index)
    per_30 = 30.0 / window_days

    card = _card_use(conn, start, as_of, mine).reindex(index)
    events = card["events"]
    for t in CARD_TYPES:
        out[f"{t}_per_30d"] = card[f"n_{t}"] * per_30
    out["night_share"] = share(card["n_night"], events)
    out["away_share"] = share(card["n_away"], events)
    out["distinct_counties"] = card["counties"]
    busiest = _pharmacy_busiest(conn, start, as_of, mine).reindex(index)
    out["pharmacy_busiest_day"] = busiest["day"]
    out["pharmacy_busiest_month"] = busiest["month"]
    out["card_amount_per_30d"] = card["cents"] / 100 * per_30
    out["card_max_amount"] = card["max_cents"] / 100
    out["withdrawal_amount_share"] = share(card["withdrawal_cents"], card["cents"])

    paid = _payments(conn, start, as_of, mine).reindex(index)
    out["payment_peer_ratio"] = _peer_ratio(paid)
    out["days_since_certification"] = _days_since_certification(conn, index, as_of, counties, mine)
    out["age"] = _age(people["birth_date"], as_of)
    out["account_people"] = _account_people(conn, start, as_of, counties, mine).reindex(index)
    out["other_account_share"] = share(paid["elsewhere_cents"], paid["cents"])
    last_use = dates(card["last_use"])
    silent = index[last_use.isna()]
    last_use = last_use.fillna(_last_use_before_window(conn, silent, as_of).reindex(index))
    out["days_since_card_use"] = _days_since_card_use(conn, last_use, as_of)

    for name, f in CATALOGUE.items():
        out[name] = pd.to_numeric(out[name], errors="raise").astype("float64").fillna(f.neutral)
    return out[list(FEATURE_NAMES)]


# ---------------------------------------------------------------- people


def _in_county(counties: Sequence[str] | None):
    """The condition 'this recipient lives in one of the counties' (always true without counties)."""
    if counties is None:
        return true()
    return domain.prefix_sql(recipient.c.village_code, Level.COUNTY).in_(sorted(counties))


def part_members(counties: Sequence[str] | None):
    """A function giving the condition 'this person_id column is a recipient of one of the counties'
    (always true without counties)."""
    if counties is None:
        return lambda _column: true()
    members = select(recipient.c.person_id).where(_in_county(counties))
    return lambda column: column.in_(members)


def home_counties(conn: Connection) -> pd.Series:
    """Every recipient's county (index person_id): the part their features belong to."""
    r = recipient.c
    return frame(conn, select(r.person_id, domain.prefix_sql(r.village_code, Level.COUNTY).label("county")))["county"]


def _recipients(conn: Connection, counties: Sequence[str] | None = None) -> pd.DataFrame:
    r = recipient.c
    people = frame(conn, select(r.person_id, as_text(r.birth_date).label("birth_date")).where(_in_county(counties)),
                   index=None)
    people["birth_date"] = dates(people["birth_date"])
    return people.set_index("person_id").sort_index()


def _age(birth: pd.Series, as_of: date) -> pd.Series:
    """Completed years on as_of (a birthday on as_of counts)."""
    not_yet = (birth.dt.month > as_of.month) | ((birth.dt.month == as_of.month) & (birth.dt.day > as_of.day))
    return (as_of.year - birth.dt.year - not_yet.astype(int)).astype(float)


# ---------------------------------------------------------------- card events


def _card_use(conn: Connection, start: date, as_of: date, mine) -> pd.DataFrame:
    """Per person, the window's card events: counts per type, at night and outside the home county,
    distinct counties of use, amounts, the last day of use.

    The events are first grouped per (person, county of use), then joined with the person's recipient
    row (one lookup per group, not per event) and summed per person."""
    e = card_event.c
    pid = person_key(e.person_id)
    by_county = (
        select(
            pid.label("pid"),
            e.county_code,
            func.count().label("events"),
            *[count_if(e.event_type == t).label(f"n_{t}") for t in CARD_TYPES],
            count_if(e.occurred_hour <= NIGHT_LAST_HOUR).label("n_night"),
            func.sum(e.amount_cents).label("cents"),
            func.max(e.amount_cents).label("max_cents"),
            func.sum(case((e.event_type == "withdrawal", e.amount_cents), else_=0)).label("withdrawal_cents"),
            func.max(as_text(e.occurred_on)).label("last_use"),
        )
        .where(within_window(e.occurred_on, start, as_of), mine(e.person_id))
        .group_by(pid, e.county_code)
        .subquery("by_county")
    )
    c, r = by_county.c, recipient.c
    home = domain.prefix_sql(c.county_code, Level.COUNTY) == domain.prefix_sql(r.village_code, Level.COUNTY)
    q = (
        select(
            c.pid,
            sum_int(c.events).label("events"),
            *[sum_int(c[f"n_{t}"]).label(f"n_{t}") for t in CARD_TYPES],
            sum_int(c.n_night).label("n_night"),
            sum_int(case((home, 0), else_=c.events)).label("n_away"),
            func.count().label("counties"),
            sum_int(c.cents).label("cents"),
            func.max(c.max_cents).label("max_cents"),
            sum_int(c.withdrawal_cents).label("withdrawal_cents"),
            func.max(c.last_use).label("last_use"),
        )
        .select_from(by_county.join(recipient, r.person_id == c.pid))
        .group_by(c.pid)
    )
    return frame(conn, q)


def _pharmacy_busiest(conn: Connection, start: date, as_of: date, mine) -> pd.DataFrame:
    """Per person: the most pharmacy events at one institution on one day, and in one calendar month.

    Both maxima come from one aggregate per (person, pharmacy, day), stacked (UNION ALL) rather than
    joined: a join of two derived tables is planned from row estimates, and PostgreSQL's statistics
    underestimate the newest window (its days lie past the histogram) into a nested loop of N x N."""
    e = card_event.c
    pid = person_key(e.person_id)
    days = (
        select(pid.label("pid"), e.institution_id, e.occurred_on.label("day"), func.count().label("n"))
        .where(e.event_type == "pharmacy", within_window(e.occurred_on, start, as_of), mine(e.person_id))
        .group_by(pid, e.institution_id, e.occurred_on)
        .cte("pharmacy_days")
    )
    d, none = days.c, cast(null(), BigInteger)
    stacked = union_all(
        select(d.pid, d.n.label("on_a_day"), none.label("in_a_month")),
        select(d.pid, none, sum_int(d.n)).group_by(d.pid, d.institution_id, *_month_of(d.day, start, as_of)),
    ).subquery("stacked")
    q = (select(stacked.c.pid, func.max(stacked.c.on_a_day).label("day"), func.max(stacked.c.in_a_month).label("month"))
         .group_by(stacked.c.pid))
    return frame(conn, q).astype(float)


def _month_of(day_column, start: date, as_of: date) -> list:
    """The calendar month of a day in the window (start, as_of], as a GROUP BY term: a CASE over the
    first days of the months that begin inside the window (bound dates), numbering the months from 0.
    No term when the window lies inside one month."""
    firsts = []
    month = date(start.year, start.month, 1)
    while True:
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        if month > as_of:
            break
        firsts.append(month)
    if not firsts:
        return []
    numbered = reversed(list(enumerate(firsts, 1)))
    return [case(*[(day_column >= first, literal_column(str(n))) for n, first in numbered], else_=literal_column("0"))]


def _last_use_before_window(conn: Connection, silent: pd.Index, as_of: date) -> pd.Series:
    """The last card use on or before as_of of people who did not use their card in the window (for the
    others it is in the window's aggregate): few people, looked up through the person_id index."""
    e = card_event.c

    def query(ids: list[str]):
        return (select(e.person_id, func.max(as_text(e.occurred_on)).label("day"))
                .where(e.person_id.in_(ids), e.occurred_on <= as_of).group_by(e.person_id))

    return dates(for_people(conn, query, silent)["day"])


def _days_since_card_use(conn: Connection, last_use: pd.Series, as_of: date) -> pd.Series:
    """Days since the last card use; a card never used gets the days from the warehouse's first card
    event to as_of (as long as the records can tell; 0 with no card events at all)."""
    days = (pd.Timestamp(as_of) - last_use).dt.days.astype(float)
    if days.isna().any():
        first = conn.execute(select(func.min(as_text(card_event.c.occurred_on)))
                             .where(card_event.c.occurred_on <= as_of)).scalar()
        span = 0.0 if first is None else float((pd.Timestamp(as_of) - pd.Timestamp(first)).days)
        days = days.fillna(span)
    return days


# ---------------------------------------------------------------- payments


def _payments(conn: Connection, start: date, as_of: date, mine) -> pd.DataFrame:
    """Per person, the window's payments (by paid_on): the amount, the amount paid into another account
    than the registered one, the home county, and per recurring benefit type the amount and the number
    of distinct periods paid (`<type>_cents`, `<type>_periods`)."""
    p, r = payment.c, recipient.c
    pid = person_key(p.person_id)
    per_type = []
    for t in RECURRING:
        per_type += [sum_int(case((p.benefit_type == t, p.amount_cents))).label(f"{t}_cents"),
                     func.count(func.distinct(case((p.benefit_type == t, p.period)))).label(f"{t}_periods")]
    q = (
        select(
            pid.label("pid"),
            func.min(domain.prefix_sql(r.village_code, Level.COUNTY)).label("county"),
            sum_int(p.amount_cents).label("cents"),
            sum_int(case((p.bank_account == r.bank_account, 0), else_=p.amount_cents)).label("elsewhere_cents"),
            *per_type,
        )
        .select_from(payment.join(recipient, r.person_id == p.person_id))
        .where(within_window(p.paid_on, start, as_of), mine(p.person_id))
        .group_by(pid)
    )
    paid = frame(conn, q)
    numbers = [c for c in paid.columns if c != "county"]
    return paid.astype(dict.fromkeys(numbers, "float64"))


def _peer_ratio(paid: pd.DataFrame) -> pd.Series:
    """Largest over the person's recurring benefit types of (amount per paid period) / (median of that
    over people with the same type and home county)."""
    ratios = []
    for t in RECURRING:
        monthly = paid[f"{t}_cents"] / paid[f"{t}_periods"].where(paid[f"{t}_periods"] > 0)
        median = monthly.groupby(paid["county"]).transform("median")
        ratios.append(monthly / median)
    return pd.concat(ratios, axis=1).max(axis=1)


def _account_people(conn: Connection, start: date, as_of: date, counties: Sequence[str] | None,
                    mine) -> pd.Series:
    """Per person paid in the window: the distinct people paid in the window into any of the accounts the
    person was paid into (themselves included). With counties, every account one of their people was paid
    into counts all its people: the people sharing an account may live in another county.

    Without a join: the window's distinct (person, account) pairs, each account's people counted by a
    window function, and per person the number of accounts and the most people on one. A person paid
    into one account (nearly everyone) has their answer; the few paid into several are looked up through
    the person_id and bank_account indexes and their people united in pandas. (A self-join of the pairs
    would be planned from PostgreSQL's underestimate of the newest window: a nested loop of N x N.)"""
    p = payment.c
    pid = person_key(p.person_id)
    in_window = within_window(p.paid_on, start, as_of)
    paid = select(pid.label("pid"), p.bank_account).where(in_window)
    if counties is not None:
        paid = paid.where(p.bank_account.in_(select(p.bank_account).where(in_window, mine(p.person_id))))
    pairs = paid.group_by(pid, p.bank_account).subquery("pairs")
    sized = select(pairs.c.pid, func.count().over(partition_by=pairs.c.bank_account).label("people")) \
        .subquery("sized")
    per_person = frame(conn, select(sized.c.pid, func.count().label("accounts"), func.max(sized.c.people).label("people"))
                       .where(mine(sized.c.pid)).group_by(sized.c.pid))
    people = per_person["people"].astype(float)
    several = per_person.index[per_person["accounts"] > 1]
    if len(several):
        # by label: `people[several] = …` would assign in order, giving each their neighbour's count
        people.loc[several] = _people_sharing_accounts(conn, several, in_window).reindex(several)
    return people


def _people_sharing_accounts(conn: Connection, people: pd.Index, in_window) -> pd.Series:
    """For a few people: the distinct people paid (in the window) into any of their accounts."""
    p = payment.c

    def theirs(ids: list[str]):
        return select(p.person_id, p.bank_account).where(p.person_id.in_(ids), in_window).distinct()

    def sharing(accounts: list[str]):
        return select(p.bank_account, p.person_id.label("other")).where(p.bank_account.in_(accounts), in_window) \
            .distinct()

    own = for_people(conn, theirs, people).reset_index()
    others = in_chunks(conn, sharing, own["bank_account"].drop_duplicates().tolist())
    shared = own.merge(others, on="bank_account")[["person_id", "other"]].drop_duplicates()
    return shared.groupby("person_id").size().astype(float)


# ---------------------------------------------------------------- certification


def _days_since_certification(conn: Connection, index: pd.Index, as_of: date,
                              counties: Sequence[str] | None, mine) -> pd.Series:
    """Days from the latest certification on or before as_of (the recipients row, any delivered
    last_certified_on, a certification card event); with none on record, from the first day of the
    first paid recurring period (as contract §4 counts); NaN (neutral later) with neither."""
    r, c, e = recipient.c, certification.c, card_event.c
    sources = union_all(
        select(r.person_id.label("pid"), r.last_certified_on.label("day"))
        .where(r.last_certified_on <= as_of, _in_county(counties)),
        select(person_key(c.person_id), c.certified_on).where(c.certified_on <= as_of, mine(c.person_id)),
        select(person_key(e.person_id), e.occurred_on)
        .where(e.event_type == "certification", e.occurred_on <= as_of, mine(e.person_id)),
    ).subquery("certified")
    latest = frame(conn, select(sources.c.pid, func.max(as_text(sources.c.day)).label("day"))
                   .group_by(sources.c.pid))["day"]
    latest = dates(latest).reindex(index)
    never = latest.index[latest.isna()]
    if len(never):
        p = payment.c

        def query(ids: list[str]):
            return (select(p.person_id, func.min(as_text(p.period)).label("period"))
                    .where(p.person_id.in_(ids), p.benefit_type.in_(RECURRING), p.period <= as_of)
                    .group_by(p.person_id))

        first_paid = dates(for_people(conn, query, never)["period"])
        latest = latest.fillna(first_paid.reindex(index))
    return (pd.Timestamp(as_of) - latest).dt.days.astype(float)
