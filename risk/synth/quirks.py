"""What real deliveries look like besides the facts: exact re-deliveries (across days and inside one
file: skipped, not rejected), conflicts (a key re-delivered with other content: rejected), rows that
break the contract (rejected), and the re-delivered master data (upserts)."""
from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd

from risk.contract import BY_NAME
from risk.identity import check_char
from risk.synth.tables import Files, keys
from risk.synth.timeline import iso
from risk.synth.world import World


def insert(df: pd.DataFrame, rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """`rows` spliced into `df` at random positions (df's own order kept)."""
    if rows.empty:
        return df
    pos = np.sort(rng.integers(0, len(df) + 1, len(rows)))
    order = np.concatenate([np.arange(len(df), dtype=float), pos - 0.5 + np.arange(len(rows)) * 1e-6])
    both = pd.concat([df, rows], ignore_index=True)
    return both.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)


def empty(source: str) -> pd.DataFrame:
    cols = BY_NAME[source].column_names + ["_reject", "_key"]
    return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})


def add(w: World, files: Files, day: str, source: str, rows: pd.DataFrame, reject: bool = False) -> None:
    rows = rows.copy()
    rows["_reject"] = reject
    rows["_key"] = rows[BY_NAME[source].key]
    files[(day, source)] = insert(files.get((day, source), empty(source)), rows, w.rng)


def wrong_check(pid: str) -> str:
    right = check_char(pid[:17])
    return pid[:17] + ("1" if right != "1" else "2")


class Quirks:
    """Adds re-deliveries, conflicts and broken rows to the rendered files."""

    def __init__(self, w: World, files: Files):
        self.w, self.files, self.rng = w, files, w.rng
        p = w.pop
        self.index = {pid: i for i, pid in enumerate(p.pid)}
        out = {i for i, _ in w.outliers}
        self.clean = ~p.planted & np.isnat(p.death) & ~np.isin(np.arange(p.n), list(out))
        self.clean_pids = set(p.pid[self.clean])
        self.counters = {"payments": 0, "card_events": 0, "deaths": 0, "incarcerations": 0}

    def file(self, day: np.datetime64 | str, source: str) -> pd.DataFrame:
        return self.files.get((iso(day) if not isinstance(day, str) else day, source), empty(source))

    def template(self, day: np.datetime64, source: str, k: int = 1) -> pd.DataFrame:
        """k good rows of clean people from a file (sampled: files can be large)."""
        df = self.file(day, source)
        rows = self.rng.permutation(len(df))[: 50 * k + 200]
        pids, rejected = df.person_id.to_numpy()[rows], df._reject.to_numpy()[rows]
        ok = [r for r, pid, bad in zip(rows, pids, rejected, strict=True) if pid in self.clean_pids and not bad]
        assert len(ok) >= k, f"no clean rows to copy in {source} of {day}"
        return df.iloc[ok[:k]].reset_index(drop=True)

    def fresh(self, source: str, n: int, start: int) -> np.ndarray:
        prefix, width = {"payments": ("P", 9), "card_events": ("E", 10), "deaths": ("D", 7),
                         "incarcerations": ("J", 7)}[source]
        base = start + self.counters[source] + 1
        self.counters[source] += n
        return keys(prefix, base, n, width)

    # ---- payments and card events ---------------------------------------------------------------
    def facts(self, source: str, n_keys: int, broken: list[tuple[str, str, object]], day_of) -> None:
        """Re-deliver rows of month 0 on the next delivery, duplicate two rows inside one file,
        re-deliver a key with other content two months later, and add broken rows."""
        w, m_n = self.w, self.w.cal.months
        k = max(2, w.per_variant(0.5))
        again = self.template(day_of(0), source, k)
        add(w, self.files, iso(day_of(1)), source, again)
        mid = m_n // 2
        twice = self.template(day_of(mid), source, 2)
        add(w, self.files, iso(day_of(mid)), source, twice)
        if source == "payments":
            for pid in list(again.person_id) + list(twice.person_id):
                w.lawful_case("redelivered_payment", self.index[pid], "duplicate_payment: the same payment_id "
                              "delivered again (a later day, or twice in one file) is one payment")
        conflict = self.template(day_of(1), source, 1)
        conflict["amount"] = conflict.amount.map(lambda a: f"{float(a) + 100:.2f}")
        add(w, self.files, iso(day_of(3)), source, conflict, reject=True)
        if source == "payments":
            w.lawful_case("conflicting_payment_rejected", self.index[conflict.person_id[0]],
                          "duplicate_payment: a payment_id re-delivered with another amount is a conflict, "
                          "rejected; the first stands")
        for n, (_reason, column, value) in enumerate(broken):
            m = 1 + n % (m_n - 1)
            row = self.template(day_of(m), source, 1)
            row[BY_NAME[source].key] = self.fresh(source, 1, n_keys)
            row[column] = value(row[column][0], m) if callable(value) else value
            add(w, self.files, iso(day_of(m)), source, row, reject=True)

    def payments(self, n_keys: int) -> None:
        year = lambda m: str(self.w.cal.month(m))[:4]  # noqa: E731
        self.facts("payments", n_keys, [
            ("bad ID check character", "person_id", lambda v, m: wrong_check(v)),
            ("negative amount", "amount", lambda v, m: "-" + v),
            ("empty required field", "bank_account", ""),
            ("unknown benefit type", "benefit_type", "pension"),
            ("impossible date", "paid_on", lambda v, m: f"{year(m)}-02-30"),
            ("period not YYYY-MM", "period", lambda v, m: v.replace("-", "/")),
            ("three decimals", "amount", lambda v, m: v + "5"),
            ("amount not > 0", "amount", "0.00"),
        ], self.w.cal.pay_day)
        w = self.w
        m = min(1, w.cal.months - 1)
        df = self.files[(iso(w.cal.pay_day(m)), "payments")]
        df["remark"] = np.where(self.rng.random(len(df)) < 0.01, "补发", "")  # unknown column: ignored

    def cards(self, n_keys: int) -> None:
        self.facts("card_events", n_keys, [
            ("timestamp not ISO 8601", "occurred_at", "yesterday"),
            ("unknown event type", "event_type", "atm"),
            ("negative amount", "amount", lambda v, m: "-" + (v if Decimal(v) else "1.00")),
            ("timestamp without offset", "occurred_at", lambda v, m: v[:19]),
            ("county code not 12 digits", "county_code", lambda v, m: v[:8]),
        ], self.w.cal.card_day)

    # ---- deaths and custody -----------------------------------------------------------------------
    def later_day(self, day: str) -> np.datetime64 | None:
        d = np.datetime64(day) + 1
        nxt = self.w.cal.report_day(d)
        return nxt if nxt <= self.w.cal.final_day else None

    def records(self, source: str, frame: pd.DataFrame, n_keys: int, conflicts: list[tuple[int, dict]]) -> None:
        """conflicts: (planted_row, changed columns): re-delivered later with other content."""
        w = self.w
        for row, changes in conflicts:
            hit = frame[frame.planted_row == row].iloc[0]
            day = iso(hit.day)
            got = self.file(day, source)
            rec = got[got.record_id == hit.key].head(1).copy()
            later = self.later_day(day)
            assert later is not None, "conflict planted too late"
            for col, value in changes.items():
                rec[col] = value
            add(w, self.files, iso(later), source, rec, reject=True)
        days = sorted(d for d, s in self.files if s == source)
        usable = [d for d in days if self.later_day(d) is not None and
                  (~self.files[(d, source)]._reject).any()]
        if usable:
            d = usable[len(usable) // 2]
            df = self.files[(d, source)]
            good = df[~df._reject & ~df.record_id.isin(frame.key[frame.planted_row.notna()])]
            if len(good):
                rec = good.iloc[[int(self.rng.integers(len(good)))]]
                add(w, self.files, iso(self.later_day(d)), source, rec)  # exact re-delivery, later day
            d2 = usable[0]
            df2 = self.files[(d2, source)]
            add(w, self.files, d2, source, df2[~df2._reject].iloc[[0]])  # twice in one file

    def living(self, k: int) -> np.ndarray:
        return self.rng.choice(np.flatnonzero(self.clean), k, replace=False)

    def deaths(self, frame: pd.DataFrame, n_keys: int) -> None:
        w, cal = self.w, self.w.cal
        self.records("deaths", frame, n_keys, [(row, {"death_date": iso(other)}) for row, other in w.death_conflicts])
        broken = [("unknown source", "source", "hospital"), ("impossible date", "death_date", None),
                  ("bad ID check character", "person_id", None), ("empty required field", "reported_on", "")]
        people = self.living(len(broken))
        for n, ((_reason, column, value), i) in enumerate(zip(broken, people, strict=True)):
            m = 1 + n % (cal.months - 1)
            day = cal.first(m) + (14 if n % 2 else 0)
            death = cal.day(m - 1, w.randint(1, 20))
            row = pd.DataFrame({
                "record_id": self.fresh("deaths", 1, n_keys), "person_id": [w.pop.pid[i]],
                "name": [w.pop.name[i]], "death_date": [iso(death)], "source": ["health"],
                "reported_on": [iso(death + 5)],
            })
            if column == "death_date":
                value = f"{str(cal.month(m))[:4]}-02-30"
            elif column == "person_id":
                value = wrong_check(w.pop.pid[i])
            row[column] = value
            add(w, self.files, iso(day), "deaths", row, reject=True)

    def incarcerations(self, frame: pd.DataFrame, n_keys: int) -> None:
        w, cal = self.w, self.w.cal
        conflicts = []
        for row in w.jail_conflicts:
            start = w.jail_rows[row]["start"]
            conflicts.append((row, {"end_date": iso(min(start + w.randint(60, 120), cal.end))}))
        self.records("incarcerations", frame, n_keys, conflicts)
        people = self.living(3)
        for n, i in enumerate(people):
            m = 1 + n % (cal.months - 1)
            start = cal.day(m - 1, w.randint(1, 28))
            row = pd.DataFrame({
                "record_id": self.fresh("incarcerations", 1, n_keys), "person_id": [w.pop.pid[i]],
                "name": [w.pop.name[i]], "sentence_type": ["custodial"], "start_date": [iso(start)],
                "end_date": [""],
            })
            if n == 0:
                row["sentence_type"] = "prison"
            elif n == 1:
                row["end_date"] = iso(start - 10)  # released before it started
            else:
                row["start_date"] = ""
            add(w, self.files, iso(cal.first(m) + 14), "incarcerations", row, reject=True)
