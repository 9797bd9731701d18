"""The year one month at a time: each month's payments and card events, assembled from the
population arrays and the planted rows of that month only, in key order.

Nothing here holds more than one month of payments or card use; the year's certification events
(about one a person) and lump sums are drawn once and bucketed by month, like the planted rows
(world.py). Background draws of month m come from their own random stream (`stream(kind, m)`), so a
month is the same whichever months are drawn before it, and the city stays deterministic for a seed.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pyarrow as pa

from risk.contract import BENEFIT_TYPES
from risk.synth import facts, render
from risk.synth.quirks import BROKEN_CARDS, MonthQuirks, broken_payments
from risk.synth.world import World

CARDS, PAYMENT_QUIRKS, CARD_QUIRKS, WRITER = range(4)  # kinds of random streams


class Months:
    """The facts of each month, on demand."""

    def __init__(self, w: World):
        self.w = w
        p, cal, rng = w.pop, w.cal, w.rng
        self.entropy = int(rng.integers(2**62))
        self.rate = facts.card_rate(rng, p.n)
        lumps = facts.lump_sums(rng, p, cal)
        self.lumps = {int(m): g for m, g in lumps.groupby("period")}
        certs = facts.certifications(rng, p, cal, w.regions)
        self.certs = certs  # the whole year's background certifications: about one a person
        self.certs_of = {int(m): g for m, g in certs.groupby("file_month")}
        self.pays = _explicit_payments(w)
        explicit = pd.DataFrame(w.card_rows, columns=facts.CARD_COLS)
        self.cards = {int(m): g for m, g in explicit.groupby("file_month")}
        self.skips: defaultdict[int, list[int]] = defaultdict(list)
        for i, m in w.skips:
            self.skips[m].append(i)
        self.redirects: defaultdict[int, dict[int, int]] = defaultdict(dict)
        for (i, m), holder in w.redirects.items():
            self.redirects[m][i] = holder
        self.blackouts = pd.DataFrame(w.blackouts, columns=["pi", "lo", "hi"])

    def stream(self, kind: int, m: int) -> np.random.Generator:
        """The random stream of one kind of draw in month m."""
        return np.random.default_rng([self.entropy, kind, m])

    def payments(self, m: int) -> pd.DataFrame:
        """Every payment delivered on month m's payments day (the 10th): regular months (minus skips,
        with redirects), lump sums and planted rows, in payment_id order (regular first, person,
        insertion)."""
        p = self.w.pop
        who = facts.paid_in(p, m)
        if self.skips.get(m):
            who = who[~np.isin(who, self.skips[m])]
        holder = who.copy()
        if self.redirects.get(m):
            moved = np.array(list(self.redirects[m].items()), dtype=np.int64)
            hit = np.isin(who, moved[:, 0])
            holder[hit] = pd.Series(moved[:, 1], index=moved[:, 0]).loc[who[hit]].to_numpy()
        regular = pd.DataFrame({
            "pi": who, "btype": p.benefit[who].astype(np.int64), "period": m, "cents": p.cents[who],
            "paid_on": self.w.cal.pay_day(m), "holder": holder, "order": 0, "seq": -1,
        })
        parts = [regular, self.lumps.get(m), self.pays.get(m)]
        out = pd.concat([x for x in parts if x is not None and len(x)], ignore_index=True)
        seq = out.seq.to_numpy() + 1
        key = (out.order.to_numpy() * p.n + out.pi.to_numpy()) * (int(seq.max()) + 1) + seq
        return out.take(np.argsort(key, kind="stable")).reset_index(drop=True)

    def card_events(self, m: int) -> pd.DataFrame:
        """Every card event of month m (delivered on the 1st of the next month): background use minus
        custody blackouts, yearly certifications and planted rows, in event_id order (person, time)."""
        w = self.w
        background = facts.card_events(self.stream(CARDS, m), w.pop, w.cal, w.regions, self.rate, m)
        if len(self.blackouts):
            background = _without_blackouts(background, self.blackouts)
        parts = [background, self.certs_of.get(m), self.cards.get(m)]
        out = pd.concat([x for x in parts if x is not None and len(x)], ignore_index=True)
        second = (out.ts.to_numpy().astype("datetime64[s]") - w.cal.first(m)).astype(np.int64)  # < 2**22
        return out.take(np.argsort(out.pi.to_numpy() * 2**22 + second, kind="stable")).reset_index(drop=True)


def _explicit_payments(w: World) -> dict[int, pd.DataFrame]:
    """Planted payment rows by the month of their delivery day."""
    rows = pd.DataFrame(w.pay_rows, columns=["pi", "btype", "period", "cents", "paid_on", "holder", "day",
                                             "order", "seq"])
    if rows.empty:
        return {}
    rows["btype"] = [BENEFIT_TYPES.index(b) for b in rows.btype]
    month = w.cal.month_of(rows.day.to_numpy().astype("datetime64[D]"))
    rows = rows.drop(columns="day")
    return {int(m): g for m, g in rows.groupby(month)}


def _without_blackouts(events: pd.DataFrame, blackouts: pd.DataFrame) -> pd.DataFrame:
    """Drop everyday events of people in custody, day lo to day hi (certifications stay)."""
    hit = np.flatnonzero(np.isin(events.pi.to_numpy(), blackouts.pi.to_numpy()))
    if not len(hit):
        return events
    sub = events.iloc[hit][["pi", "ts", "etype"]].assign(row=hit).merge(blackouts, on="pi")
    day = sub.ts.to_numpy().astype("datetime64[D]")
    drop = sub.row[(day >= sub.lo.to_numpy()) & (day <= sub.hi.to_numpy())
                   & (sub.etype.to_numpy() != facts.ET["certification"])]
    keep = np.ones(len(events), dtype=bool)
    keep[drop.to_numpy()] = False
    return events[keep]


class Stream:
    """A streamed source's file of month m: its facts, keyed after every earlier key of the source,
    rendered as text, with the month's quirks."""

    def __init__(self, months: Months, texts: render.Texts, source: str):
        self.months, self.texts, self.source = months, texts, source
        self.next_key = 0
        if source == "payments":
            self.quirks = MonthQuirks(months.w, source, broken_payments(months.w.cal))
        else:
            self.quirks = MonthQuirks(months.w, source, BROKEN_CARDS)

    def _keys(self, n: int) -> pa.Array:
        prefix, width = ("P", 9) if self.source == "payments" else ("E", 10)
        out = render.keys(prefix, self.next_key + 1, n, width)
        self.next_key += n
        return out

    def file(self, m: int) -> render.Delivery:
        if self.source == "payments":
            facts_ = self.months.payments(m)
            table = render.payments(self.texts, facts_, self._keys(len(facts_)))
            rng = self.months.stream(PAYMENT_QUIRKS, m)
        else:
            facts_ = self.months.card_events(m)
            table = render.card_events(self.texts, facts_, self._keys(len(facts_)))
            rng = self.months.stream(CARD_QUIRKS, m)
        return self.quirks.apply(m, facts_.pi.to_numpy(), table, self._keys, rng)
