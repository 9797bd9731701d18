"""Assemble every fact (background + planted), give it its key, and render the contract's text
columns, one DataFrame per delivery file: `files[(day, source)]` with the contract columns plus two
meta columns, `_reject` (the row breaks the contract) and `_key` (its key as delivered)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from risk.contract import EVENT_TYPES
from risk.synth import facts
from risk.synth.names import person_names
from risk.synth.people import NAT, _with_check, legacy15
from risk.synth.world import World

Files = dict[tuple[str, str], pd.DataFrame]


def _str(a: pa.Array | pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    return pd.array(a, dtype="str")


def money(cents: np.ndarray | pd.Series) -> pd.api.extensions.ExtensionArray:
    """Cents as text with two decimals (`-` for negatives)."""
    c = np.asarray(cents, dtype=np.int64)
    a = np.abs(c)
    text = pc.binary_join_element_wise(pc.cast(pa.array(a // 100), pa.string()),
                                       pc.utf8_lpad(pc.cast(pa.array(a % 100), pa.string()), 2, "0"), ".")
    return _str(pc.if_else(pa.array(c < 0), pc.binary_join_element_wise("-", text, ""), text))


def dates(days: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """YYYY-MM-DD, empty for NaT."""
    arr = pa.array(np.asarray(days, dtype="datetime64[D]"), from_pandas=True)
    return _str(pc.fill_null(pc.cast(arr, pa.string()), ""))


def stamps(ts: np.ndarray, utc: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Beijing local times as ISO 8601 with +08:00, or in UTC with +00:00 where `utc`."""
    written = np.where(utc, ts - np.timedelta64(8, "h"), ts).astype("datetime64[s]")
    text = pc.replace_substring(pc.cast(pa.array(written), pa.string()), " ", "T")
    return _str(pc.binary_join_element_wise(text, pa.array(np.where(utc, "+00:00", "+08:00")), ""))


def keys(prefix: str, start: int, n: int, width: int) -> pd.api.extensions.ExtensionArray:
    digits = pc.utf8_lpad(pc.cast(pa.array(np.arange(start, start + n)), pa.string()), width, "0")
    return _str(pc.binary_join_element_wise(prefix, digits, ""))


def _take(values: np.ndarray, idx: np.ndarray) -> pd.api.extensions.ExtensionArray:
    return _str(pa.array(values, type=pa.string()).take(pa.array(idx)))


def payments(w: World) -> pd.DataFrame:
    """Regular months (minus skips, with redirects) + background lump sums + explicit rows, keyed
    by payment_id in (delivery day, regular first, person, insertion) order."""
    p = w.pop
    regular = facts.payments(p, w.cal)
    regular["seq"] = -1
    if w.skips:
        skip = np.array([pi * 10000 + m for pi, m in w.skips])
        regular = regular[~np.isin(regular.pi.to_numpy() * 10000 + regular.period.to_numpy(), skip)]
    if w.redirects:
        red = pd.Series({pi * 10000 + m: acc for (pi, m), acc in w.redirects.items()})
        code = regular.pi.to_numpy() * 10000 + regular.period.to_numpy()
        hit = np.isin(code, red.index.to_numpy())
        regular.loc[hit, "account"] = red.loc[code[hit]].to_numpy()
    lumps = facts.lump_sums(w.rng, p, w.cal)
    lumps["seq"] = -1
    explicit = pd.DataFrame(w.pay_rows, columns=facts.PAY_COLS + ["seq"])
    out = pd.concat([regular, lumps, explicit], ignore_index=True)
    out = out.sort_values(["day", "order", "pi", "seq"], kind="stable", ignore_index=True)
    out["key"] = keys("P", 1, len(out), 9)
    return out


def card_events(w: World, background: pd.DataFrame) -> pd.DataFrame:
    """Background events (minus custody blackouts) + explicit rows, keyed by event_id."""
    if w.blackouts:
        bo = pd.DataFrame(w.blackouts, columns=["pi", "lo", "hi"])
        hit = background.pi.isin(bo.pi)
        sub = background[hit].reset_index().merge(bo, on="pi")
        day = sub.ts.to_numpy().astype("datetime64[D]")
        drop = sub["index"][(day >= sub.lo.to_numpy()) & (day <= sub.hi.to_numpy())
                            & (sub.etype.to_numpy() != facts.ET["certification"])]
        background = background.drop(index=drop.unique())
    explicit = pd.DataFrame(w.card_rows, columns=facts.CARD_COLS)
    out = pd.concat([background, explicit], ignore_index=True)
    out = out.sort_values(["file_month", "pi", "ts"], kind="stable", ignore_index=True)
    out["key"] = keys("E", 1, len(out), 10)
    return out


def deaths(w: World) -> pd.DataFrame:
    """Background and planted death records, plus deaths of people who hold no benefit."""
    cal, rng = w.cal, w.rng
    bg = facts.death_records(rng, w.pop, cal)
    explicit = pd.DataFrame(w.death_rows, columns=facts.DEATH_COLS)
    explicit["planted_row"] = np.arange(len(explicit))
    frame = pd.concat([bg, explicit], ignore_index=True)
    frame["pid"] = w.pop.pid[frame.pi.to_numpy()]
    frame["name"] = w.pop.name[frame.pi.to_numpy()]
    n = max(2, int(round(w.pop.n * 0.002)))
    outsiders = strangers(w, n)
    death = cal.first_day + rng.integers(0, cal.span - 60, n).astype("timedelta64[D]")
    reported = death + rng.integers(3, 50, n).astype("timedelta64[D]")
    frame = pd.concat([frame, pd.DataFrame({
        "pi": -1, "form": "std", "death": death, "reported": reported, "day": cal.report_days(reported),
        "source": np.array(["public_security", "health", "civil_affairs"], dtype=object)[rng.integers(0, 3, n)],
        "pid": outsiders[0], "name": outsiders[1],
    })], ignore_index=True)
    frame = frame[frame.day <= cal.final_day]
    frame = frame.sort_values(["day", "reported", "pi"], kind="stable", ignore_index=True)
    frame["key"] = keys("D", 1, len(frame), 7)
    frame["pid"] = [_form(pid, form) for pid, form in zip(frame.pid, frame.form, strict=True)]
    return frame


def incarcerations(w: World) -> pd.DataFrame:
    cal, rng = w.cal, w.rng
    frame = pd.DataFrame(w.jail_rows, columns=facts.JAIL_COLS + ["reported"])
    frame["planted_row"] = np.arange(len(frame))
    frame["pid"] = w.pop.pid[frame.pi.to_numpy()]
    frame["name"] = w.pop.name[frame.pi.to_numpy()]
    n = max(2, int(round(w.pop.n * 0.001)))
    pid, name = strangers(w, n)
    start = cal.first_day + rng.integers(0, cal.span - 60, n).astype("timedelta64[D]")
    reported = start + rng.integers(3, 40, n).astype("timedelta64[D]")
    sentence = np.array(["custodial", "probation", "pretrial"], dtype=object)[rng.integers(0, 3, n)]
    frame = pd.concat([frame, pd.DataFrame({
        "pi": -1, "form": "std", "sentence": sentence, "start": start, "end": np.full(n, NAT),
        "reported": reported, "day": cal.report_days(reported), "pid": pid, "name": name,
    })], ignore_index=True)
    frame = frame.sort_values(["day", "reported", "pi"], kind="stable", ignore_index=True)
    frame["key"] = keys("J", 1, len(frame), 7)
    frame["pid"] = [_form(pid, form) for pid, form in zip(frame.pid, frame.form, strict=True)]
    return frame


def strangers(w: World, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Valid IDs and names of people who hold no benefit here."""
    rng = w.rng
    birth = np.datetime64("1935-01-01") + rng.integers(0, 20000, n).astype("timedelta64[D]")
    ymd = np.array([str(d).replace("-", "") for d in birth], dtype=object)
    addr = np.array(w.regions.counties, dtype=object)[rng.integers(0, len(w.regions.counties), n)]
    male = rng.random(n) < 0.5
    ids = _with_check(addr + ymd, rng.integers(0, 500, n) * 2 + male.astype(int))
    known = set(w.pop.pid)
    ids = np.array([x for x in ids if x not in known], dtype=object)
    return ids, person_names(rng, male[: len(ids)])


def _form(pid: str, form: str) -> str:
    if form == "legacy15":
        return legacy15(pid)
    if form == "lower_x":
        return pid[:-1] + pid[-1].lower()
    return pid


# ---- rendering ----------------------------------------------------------------------------------
def render_payments(w: World, frame: pd.DataFrame) -> pd.DataFrame:
    months = np.arange(w.cal.months + 1)
    period = np.datetime_as_string(w.cal.month0 + months, unit="M")
    return pd.DataFrame({
        "payment_id": frame.key.array,
        "person_id": _take(w.pop.pid, frame.pi.to_numpy()),
        "benefit_type": frame.btype.to_numpy(),
        "period": _take(period, frame.period.to_numpy()),
        "amount": money(frame.cents),
        "paid_on": dates(frame.paid_on.to_numpy()),
        "bank_account": frame.account.to_numpy(),
    })


def render_cards(w: World, frame: pd.DataFrame, county_codes: list[str]) -> pd.DataFrame:
    pi = frame.pi.to_numpy()
    inst = pc.utf8_lpad(pc.cast(pa.array(frame.inst.to_numpy()), pa.string()), 6, "0")
    return pd.DataFrame({
        "event_id": frame.key.array,
        "person_id": _take(w.pop.pid, pi),
        "card_no": _take(w.pop.card, pi),
        "occurred_at": stamps(frame.ts.to_numpy().astype("datetime64[s]"), frame.utc.to_numpy().astype(bool)),
        "event_type": _take(np.array(EVENT_TYPES, dtype=object), frame.etype.to_numpy().astype(np.int64)),
        "county_code": _take(np.array(county_codes, dtype=object), frame.county.to_numpy().astype(np.int64)),
        "institution_id": _str(pc.binary_join_element_wise("I", inst, "")),
        "amount": money(frame.cents),
        "admitted_on": dates(frame.admitted.to_numpy()),
    })


def render_deaths(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "record_id": frame.key.array, "person_id": frame.pid.to_numpy(), "name": frame.name.to_numpy(),
        "death_date": dates(frame.death.to_numpy()), "source": frame.source.to_numpy(),
        "reported_on": dates(frame.reported.to_numpy()),
    })


def render_jail(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "record_id": frame.key.array, "person_id": frame.pid.to_numpy(), "name": frame.name.to_numpy(),
        "sentence_type": frame.sentence.to_numpy(), "start_date": dates(frame.start.to_numpy()),
        "end_date": dates(frame.end.to_numpy()),
    })


def render_recipients(w: World, idx: np.ndarray, overrides: dict[int, dict] | None = None) -> pd.DataFrame:
    p = w.pop
    out = pd.DataFrame({
        "person_id": p.pid[idx], "name": p.name[idx], "gender": np.where(p.male[idx], "M", "F").astype(object),
        "birth_date": dates(p.birth[idx]), "village_code": w.regions.villages[p.village[idx]],
        "bank_account": p.account[idx], "card_no": p.card[idx], "last_certified_on": dates(p.c0[idx]),
        "phone": p.phone[idx],
    })
    if overrides:
        pos = {int(i): k for k, i in enumerate(idx)}
        for i, changes in overrides.items():
            for col, value in changes.items():
                out.at[pos[i], col] = value
    return out


def split(frame: pd.DataFrame, rendered: pd.DataFrame, source: str, key: str, files: Files) -> None:
    """Distribute rendered rows into their delivery files (by the frame's `day`)."""
    rendered = rendered.copy()
    rendered["_reject"] = False
    rendered["_key"] = rendered[key]
    day = frame.day.to_numpy().astype("datetime64[D]")
    assert (day[1:] >= day[:-1]).all(), "facts are sorted by delivery day"
    bounds = np.flatnonzero(np.diff(day.astype(np.int64))) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(day)], strict=True):
        if hi > lo:
            files[(str(day[lo]), source)] = rendered.iloc[lo:hi].reset_index(drop=True)
