"""The small sources, whole: death and custody records (background, planted and of people who hold no
benefit) and the recipients' rows, rendered into one DataFrame per delivery file:
`files[(day, source)]` with the contract columns plus two meta columns, `_reject` (the row breaks the
contract) and `_key` (its key as delivered). Payments and card events are streamed instead (months.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from risk.synth import facts, render
from risk.synth.names import person_names
from risk.synth.people import NAT, _with_check, legacy15
from risk.synth.world import World

Files = dict[tuple[str, str], pd.DataFrame]


def _str(a: pa.Array | pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    return pd.array(a, dtype="str")


def dates(days: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """YYYY-MM-DD, empty for NaT."""
    return _str(render.dates(days))


def keys(prefix: str, start: int, n: int, width: int) -> pd.api.extensions.ExtensionArray:
    return _str(render.keys(prefix, start, n, width))


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
    """n valid, distinct IDs and names of people who hold no benefit here."""
    rng = w.rng
    known = set(w.pop.pid)
    ids: list[str] = []
    male: list[bool] = []
    while len(ids) < n:
        k = n - len(ids)
        birth = np.datetime64("1935-01-01") + rng.integers(0, 20000, k).astype("timedelta64[D]")
        ymd = np.array([str(d).replace("-", "") for d in birth], dtype=object)
        addr = np.array(w.regions.counties, dtype=object)[rng.integers(0, len(w.regions.counties), k)]
        men = rng.random(k) < 0.5
        for pid, man in zip(_with_check(addr + ymd, rng.integers(0, 500, k) * 2 + men.astype(int)), men, strict=True):
            if pid not in known:
                known.add(pid)
                ids.append(pid)
                male.append(bool(man))
    return np.array(ids, dtype=object), person_names(rng, np.array(male, dtype=bool))


def _form(pid: str, form: str) -> str:
    if form == "legacy15":
        return legacy15(pid)
    if form == "lower_x":
        return pid[:-1] + pid[-1].lower()
    return pid


# ---- rendering ----------------------------------------------------------------------------------
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
