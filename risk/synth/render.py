"""The contract's text for each value (§2): money with two decimals, dates, timestamps with their
offset, keys; and the rows of the two streamed sources (payments, card events) as Arrow tables of
text, vectorised. Strings are `large_string` throughout, so that a month of a million people fits."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from risk.contract import BENEFIT_TYPES, EVENT_TYPES
from risk.synth.facts import county_codes
from risk.synth.world import World

TEXT = pa.large_string()


@dataclass
class Delivery:
    """One file's rows as text, and which of them break the contract (the truth's rejects)."""
    table: pa.Table
    reject: np.ndarray

    @classmethod
    def of_frame(cls, df: pd.DataFrame) -> Delivery:
        """From a small source's DataFrame with the meta column `_reject`."""
        columns = [c for c in df.columns if not c.startswith("_")]
        text_ = {c: pc.fill_null(pa.array(df[c], from_pandas=True).cast(TEXT), text("")) for c in columns}
        return cls(pa.table(text_), df._reject.to_numpy(dtype=bool))


def text(value: str) -> pa.Scalar:
    return pa.scalar(value, TEXT)


CENTS = pa.array([f".{c:02d}" for c in range(100)], TEXT)
CLOCK = pa.array([f"T{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)], TEXT)


def money(cents: np.ndarray | pd.Series) -> pa.Array:
    """Cents as text with two decimals (`-` for negatives)."""
    c = np.asarray(cents, dtype=np.int64)
    a = np.abs(c)
    text_ = pc.binary_join_element_wise(pc.cast(pa.array(a // 100), TEXT), CENTS.take(pa.array(a % 100)), text(""))
    if not (c < 0).any():
        return text_
    return pc.if_else(pa.array(c < 0), pc.binary_join_element_wise(text("-"), text_, text("")), text_)


def dates(days: np.ndarray) -> pa.Array:
    """YYYY-MM-DD, empty for NaT. Days span a few years at most: each one's text is made once."""
    day = np.asarray(days, dtype="datetime64[D]")
    nat = np.isnat(day)
    number = day.astype(np.int64)
    if nat.all():
        return pa.array(np.full(len(day), ""), TEXT)
    lo, hi = number[~nat].min(), number[~nat].max()
    texts = np.append(np.datetime_as_string(np.arange(lo, hi + 1).astype("datetime64[D]")), "")
    return pa.array(texts, TEXT).take(pa.array(np.where(nat, hi - lo + 1, number - lo)))


def stamps(ts: np.ndarray, utc: np.ndarray) -> pa.Array:
    """Beijing local times as ISO 8601 with +08:00, or in UTC with +00:00 where `utc`."""
    written = np.where(utc, ts - np.timedelta64(8, "h"), ts).astype("datetime64[s]")
    day = written.astype("datetime64[D]")
    clock = CLOCK.take(pa.array((written - day).astype(np.int64)))
    offset = pc.if_else(pa.array(utc), text("+00:00"), text("+08:00")) if utc.any() else text("+08:00")
    return pc.binary_join_element_wise(dates(day), clock, offset, text(""))


def keys(prefix: str, start: int, n: int, width: int) -> pa.Array:
    """n keys from `start`: prefix and the number zero-padded to `width` digits."""
    digits = pc.utf8_lpad(pc.cast(pa.array(np.arange(start, start + n)), TEXT), width, "0")
    return pc.binary_join_element_wise(text(prefix), digits, text(""))


@dataclass
class Texts:
    """The text of every person, account, period and code, made once and looked up by index."""
    pid: pa.Array
    card: pa.Array
    account: pa.Array
    period: pa.Array
    benefit: pa.Array
    event: pa.Array
    county: pa.Array

    @classmethod
    def of(cls, w: World) -> Texts:
        months = np.arange(w.cal.months + 1)
        return cls(
            pid=pa.array(w.pop.pid, TEXT), card=pa.array(w.pop.card, TEXT), account=pa.array(w.pop.account, TEXT),
            period=pa.array(np.datetime_as_string(w.cal.month0 + months, unit="M"), TEXT),
            benefit=pa.array(BENEFIT_TYPES, TEXT), event=pa.array(EVENT_TYPES, TEXT),
            county=pa.array(county_codes(w.regions), TEXT),
        )


def _at(values: pa.Array, idx: np.ndarray | pd.Series) -> pa.Array:
    return values.take(pa.array(np.asarray(idx, dtype=np.int64)))


def payments(t: Texts, frame: pd.DataFrame, key: pa.Array) -> pa.Table:
    return pa.table({
        "payment_id": key,
        "person_id": _at(t.pid, frame.pi),
        "benefit_type": _at(t.benefit, frame.btype),
        "period": _at(t.period, frame.period),
        "amount": money(frame.cents),
        "paid_on": dates(frame.paid_on.to_numpy()),
        "bank_account": _at(t.account, frame.holder),
    })


def card_events(t: Texts, frame: pd.DataFrame, key: pa.Array) -> pa.Table:
    inst = pc.utf8_lpad(pc.cast(pa.array(frame.inst.to_numpy()), TEXT), 6, "0")
    return pa.table({
        "event_id": key,
        "person_id": _at(t.pid, frame.pi),
        "card_no": _at(t.card, frame.pi),
        "occurred_at": stamps(frame.ts.to_numpy().astype("datetime64[s]"), frame.utc.to_numpy().astype(bool)),
        "event_type": _at(t.event, frame.etype),
        "county_code": _at(t.county, frame.county),
        "institution_id": pc.binary_join_element_wise(text("I"), inst, text("")),
        "amount": money(frame.cents),
        "admitted_on": dates(frame.admitted.to_numpy()),
    })
