"""What real deliveries look like besides the facts: exact re-deliveries (across days and inside one
file: skipped, not rejected), conflicts (a key re-delivered with other content: rejected) and rows
that break the contract (rejected). Deaths and custody records get theirs whole (`Quirks`); payments
and card events month by month as they are streamed (`MonthQuirks`)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa

from risk.contract import BY_NAME
from risk.identity.numbers import check_char
from risk.synth.render import TEXT, Delivery
from risk.synth.tables import Files, keys
from risk.synth.timeline import Calendar, iso
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


def clean_people(w: World) -> np.ndarray:
    """Who may lend a row to copy: neither planted, dead nor an outlier."""
    p = w.pop
    outliers = np.zeros(p.n, dtype=bool)
    outliers[[i for i, _ in w.outliers]] = True
    return ~p.planted & np.isnat(p.death) & ~outliers


def wrong_check(pid: str) -> str:
    right = check_char(pid[:17])
    return pid[:17] + ("1" if right != "1" else "2")


class Quirks:
    """Adds re-deliveries, conflicts and broken rows to the rendered files of deaths and custody."""

    def __init__(self, w: World, files: Files):
        self.w, self.files, self.rng = w, files, w.rng
        self.clean = clean_people(w)
        self.counters = {"deaths": 0, "incarcerations": 0}

    def file(self, day: np.datetime64 | str, source: str) -> pd.DataFrame:
        return self.files.get((iso(day) if not isinstance(day, str) else day, source), empty(source))

    def fresh(self, source: str, n: int, start: int) -> np.ndarray:
        prefix, width = {"deaths": ("D", 7), "incarcerations": ("J", 7)}[source]
        base = start + self.counters[source] + 1
        self.counters[source] += n
        return keys(prefix, base, n, width)

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


# ---- payments and card events (streamed) ----------------------------------------------------------
Broken = list[tuple[str, str, object]]  # (reason, column, value or function(value, month))


def broken_payments(cal: Calendar) -> Broken:
    year = lambda m: str(cal.month(m))[:4]  # noqa: E731
    return [
        ("bad ID check character", "person_id", lambda v, m: wrong_check(v)),
        ("negative amount", "amount", lambda v, m: "-" + v),
        ("empty required field", "bank_account", ""),
        ("unknown benefit type", "benefit_type", "pension"),
        ("impossible date", "paid_on", lambda v, m: f"{year(m)}-02-30"),
        ("period not YYYY-MM", "period", lambda v, m: v.replace("-", "/")),
        ("three decimals", "amount", lambda v, m: v + "5"),
        ("amount not > 0", "amount", "0.00"),
    ]


BROKEN_CARDS: Broken = [
    ("timestamp not ISO 8601", "occurred_at", "yesterday"),
    ("unknown event type", "event_type", "atm"),
    ("negative amount", "amount", lambda v, m: "-" + (v if Decimal(v) else "1.00")),
    ("timestamp without offset", "occurred_at", lambda v, m: v[:19]),
    ("county code not 12 digits", "county_code", lambda v, m: v[:8]),
]


class MonthQuirks:
    """The quirks of a streamed source, decided while month m's file is made: rows of month 0
    re-delivered with month 1, two rows twice in the middle month's file (both skipped, not
    rejected), a row of month 1 re-delivered in month 3 with another amount (a conflict), broken
    rows, and for payments an unknown extra column. The rows copied are clean people's, taken from
    the month's own rows, so no other month needs to be in memory."""

    def __init__(self, w: World, source: str, broken: Broken):
        self.w, self.source, self.broken = w, source, broken
        self.key = BY_NAME[source].key
        self.clean = clean_people(w)
        self.later: defaultdict[int, list[tuple[pa.Table, bool]]] = defaultdict(list)  # month -> rows

    def apply(self, m: int, pi: np.ndarray, table: pa.Table, fresh: Callable[[int], pa.Array],
              rng: np.random.Generator) -> Delivery:
        """Month m's file: `table` (rendered rows of persons `pi`) with the quirks of month m."""
        w, m_n = self.w, self.w.cal.months
        candidates = np.flatnonzero(self.clean[pi])

        def copy(n: int) -> np.ndarray:
            assert len(candidates) >= n, f"no clean rows to copy in {self.source} of month {m}"
            return np.sort(rng.choice(candidates, n, replace=False))

        extra: list[tuple[pa.Table, bool]] = []
        if m == 0:
            again = copy(max(2, w.per_variant(0.5)))
            self.later[1].append((table.take(again), False))
            self._lawful_redelivery(pi[again])
        if m == m_n // 2:
            twice = copy(2)
            extra.append((table.take(twice), False))
            self._lawful_redelivery(pi[twice])
        if m == 1:
            row = copy(1)
            self.later[3].append((_changed(table.take(row), "amount",
                                           lambda a, _m: f"{Decimal(a) + 100:.2f}", m), True))
            if self.source == "payments":
                w.lawful_case("conflicting_payment_rejected", int(pi[row[0]]), "duplicate_payment: a payment_id "
                              "re-delivered with another amount is a conflict, rejected; the first stands")
        for n, (_reason, column, value) in enumerate(self.broken):
            if 1 + n % (m_n - 1) == m:
                row = _changed(table.take(copy(1)), self.key, lambda _v, _m: fresh(1)[0].as_py(), m)
                extra.append((_changed(row, column, value, m), True))
        table, reject = splice(table, extra + self.later.pop(m, []), rng)
        if self.source == "payments" and m == min(1, m_n - 1):  # an unknown column: ignored
            remark = np.where(rng.random(table.num_rows) < 0.01, "补发", "")
            table = table.append_column("remark", pa.array(remark, TEXT))
        return Delivery(table, reject)

    def _lawful_redelivery(self, people: np.ndarray) -> None:
        if self.source == "payments":
            for i in people:
                self.w.lawful_case("redelivered_payment", int(i), "duplicate_payment: the same payment_id "
                                   "delivered again (a later day, or twice in one file) is one payment")


def _changed(rows: pa.Table, column: str, value: object, m: int) -> pa.Table:
    """`rows` with `column` set to `value`, or to value(old, m) when it is a function."""
    old = rows.column(column).to_pylist()
    new = [value(v, m) for v in old] if callable(value) else [value] * len(old)
    return rows.set_column(rows.schema.get_field_index(column), column, pa.array(new, TEXT))


def splice(table: pa.Table, extra: list[tuple[pa.Table, bool]], rng: np.random.Generator
           ) -> tuple[pa.Table, np.ndarray]:
    """`extra` rows (each batch with its reject flag) spliced into `table` at random positions, the
    table's own order kept (slices, not copies); returns the rows and which of them break the contract."""
    n = table.num_rows
    if not extra:
        return table, np.zeros(n, dtype=bool)
    rows = pa.concat_tables([t for t, _ in extra])
    k = rows.num_rows
    before = np.sort(rng.integers(0, n + 1, k))  # each extra row goes before this row of the table
    pieces, start = [], 0
    for r, at in enumerate(before.tolist()):
        pieces += [table.slice(start, at - start), rows.slice(r, 1)]
        start = at
    pieces.append(table.slice(start))
    reject = np.zeros(n + k, dtype=bool)
    reject[before + np.arange(k)] = np.concatenate([np.full(t.num_rows, flag) for t, flag in extra])
    return pa.concat_tables(pieces), reject
