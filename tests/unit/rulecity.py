"""A small contract-true city for the rule tests (docs/data-contract.md §1-§5).

`City(tmp_path)` writes a landing folder: one city, county, township and village in regions.csv, recipients
with valid resident IDs (address code + birth date + sequence + gender digit + the MOD 11-2 check character
of risk.identity.numbers.check_char), and payments, card events, deaths and incarcerations on the delivery days the
test names. Every added row returns a `Fact` that knows the file and the 1-based line (header = line 1) it
was written to, so a test can ask whether an alert's evidence names it.

`City.run(url)` loads every delivery day not loaded yet (oldest first, as `risk run` does) and then detects;
`alerts(url)` reads back `risk alerts export` (risk.alerts.export.export_rows) keyed by (rule, person_id).
"""
from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from warehouses import warehouse  # noqa: F401 - the tests take it from here

from risk import pipeline
from risk.alerts.export import export_rows
from risk.db import gateway
from risk.db.tables import delivery
from risk.identity.numbers import check_char
from risk.settings import Settings

CITY, COUNTY, TOWNSHIP, VILLAGE = "431100000000", "431102000000", "431102001000", "431102001001"
OUTSIDE_COUNTY = "110105000000"  # Beijing Chaoyang: card events may happen outside the city
AREA = "431102"
MASTER_DAY = "2025-01-02"

REGIONS = [
    {"code": CITY, "name": "永州市", "level": "city", "parent_code": ""},
    {"code": COUNTY, "name": "零陵区", "level": "county", "parent_code": CITY},
    {"code": TOWNSHIP, "name": "七里店街道", "level": "township", "parent_code": COUNTY},
    {"code": VILLAGE, "name": "甲村", "level": "village", "parent_code": TOWNSHIP},
]

COLUMNS = {
    "regions": ["code", "name", "level", "parent_code"],
    "recipients": ["person_id", "name", "gender", "birth_date", "village_code", "bank_account", "card_no",
                   "last_certified_on", "phone"],
    "payments": ["payment_id", "person_id", "benefit_type", "period", "amount", "paid_on", "bank_account"],
    "card_events": ["event_id", "person_id", "card_no", "occurred_at", "event_type", "county_code",
                    "institution_id", "amount", "admitted_on"],
    "deaths": ["record_id", "person_id", "name", "death_date", "source", "reported_on"],
    "incarcerations": ["record_id", "person_id", "name", "sentence_type", "start_date", "end_date"],
}
# the order a delivery day's files are written in does not matter; this one keeps the output stable
SOURCES = tuple(COLUMNS)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"


def make_id(born: str, gender: str, seq: int, area: str = AREA) -> str:
    """A valid 18-character resident ID: area, YYYYMMDD, two sequence digits, a gender digit (odd = M), check."""
    assert gender in ("M", "F")
    digit = (2 * (seq // 100 % 5)) + (1 if gender == "M" else 0)
    first17 = area + born.replace("-", "") + f"{seq % 100:02d}" + str(digit)
    assert len(first17) == 17, first17
    return first17 + check_char(first17)


def legacy15(person_id: str) -> str:
    """The 15-digit legacy form of an 18-digit ID of someone born in the 1900s (contract §3)."""
    assert person_id[6:8] == "19", "only people born 19xx have a legacy ID"
    return person_id[:6] + person_id[8:17]


@dataclass(frozen=True)
class Person:
    person_id: str
    name: str
    gender: str
    birth_date: str
    bank_account: str
    card_no: str

    @property
    def legacy15(self) -> str:
        return legacy15(self.person_id)


@dataclass(frozen=True)
class Fact:
    """One delivered row: where it was written, as the evidence must name it."""
    source: str  # payments, card_events, ...
    key: str  # payment_id, event_id, record_id; the person_id for recipients rows
    day: str
    line: int  # 1-based, header = line 1
    row: dict = field(compare=False, hash=False, repr=False)

    @property
    def file(self) -> str:
        return f"{self.day}/{self.source}.csv"


@dataclass
class Alert:
    """One row of `risk alerts export`, evidence parsed."""
    alert_id: str
    rule: str
    person_id: str
    village_code: str
    severity: str
    amount_at_risk: str
    first_seen: str
    status: str
    evidence: list[dict]
    raw: dict

    @property
    def flagged(self) -> list[dict]:
        return [e for e in self.evidence if e["flagged"]]

    def flagged_ids(self) -> set[str]:
        return {e["id"] for e in self.flagged}

    def entry(self, fact: Fact) -> dict:
        """The evidence entry that names `fact` by its file and line."""
        found = [e for e in self.evidence if e["file"] == fact.file and e["line"] == fact.line]
        assert len(found) == 1, f"{self.rule}: evidence names {fact.file} line {fact.line} {len(found)} times"
        return found[0]

    def names(self, fact: Fact, flagged: bool | None = True) -> bool:
        """Does the evidence name this fact, with its source file and line (and flagged as asked)?"""
        for e in self.evidence:
            if e["file"] == fact.file and e["line"] == fact.line and (flagged is None or e["flagged"] == flagged):
                return True
        return False


class City:
    """Builder of one landing folder; rows are kept in memory and (re)written by `write()`."""

    def __init__(self, root: Path, master_day: str = MASTER_DAY):
        self.landing = Path(root) / "landing"
        self.var = Path(root) / "var"
        self.master_day = master_day
        self.rows: dict[tuple[str, str], list[dict]] = defaultdict(list)
        self.rows[(master_day, "regions")] = [dict(r) for r in REGIONS]
        self._seq: dict[tuple[str, str], int] = defaultdict(int)
        self._n = 0
        self._ids: dict[str, int] = defaultdict(int)
        self.people: list[Person] = []
        self.registered: dict[str, Fact] = {}  # person_id -> the recipients row that first named them

    # ------------------------------------------------------------ rows

    def _add(self, day: str, source: str, row: dict, key: str) -> Fact:
        rows = self.rows[(day, source)]
        rows.append(row)
        return Fact(source, row[key] if key in row else "", day, len(rows) + 1, row)

    def _next(self, prefix: str) -> str:
        self._ids[prefix] += 1
        return f"{prefix}{self._ids[prefix]:06d}"

    def person(self, born: str = "1950-06-15", gender: str = "M", *, certified: str | None = "2025-01-10",
               account: str | None = None, day: str | None = None, name: str | None = None,
               check_x: bool = False) -> Person:
        """A recipient delivered on `day` (the master day unless named) with a unique account and card;
        `check_x`: one whose ID ends in the check character X."""
        while True:
            self._seq[(born, gender)] += 1
            pid = make_id(born, gender, self._seq[(born, gender)])
            if pid[-1] == "X" or not check_x:
                break
        self._n += 1
        n = self._n
        p = Person(person_id=pid, name=name or (SURNAMES[n % len(SURNAMES)] + GIVEN[n % len(GIVEN)]),
                   gender=gender, birth_date=born, bank_account=account or f"62170000{n:08d}",
                   card_no=f"K{n:08d}")
        self.people.append(p)
        self.registered[pid] = self.recipient_row(p, day or self.master_day, certified=certified)
        return p

    def recipient_row(self, p: Person, day: str, *, certified: str | None, **over) -> Fact:
        """A recipients.csv row for `p` on `day` (a later day's row stands: upsert)."""
        row = {"person_id": p.person_id, "name": p.name, "gender": p.gender, "birth_date": p.birth_date,
               "village_code": VILLAGE, "bank_account": p.bank_account, "card_no": p.card_no,
               "last_certified_on": certified or "", "phone": "13800000000", **over}
        return self._add(day, "recipients", row, "person_id")

    def pay(self, day: str, p: Person, benefit_type: str, period: str, amount: str, *, paid_on: str | None = None,
            account: str | None = None, payment_id: str | None = None) -> Fact:
        row = {"payment_id": payment_id or self._next("P"), "person_id": p.person_id, "benefit_type": benefit_type,
               "period": period, "amount": amount, "paid_on": paid_on or day,
               "bank_account": account or p.bank_account}
        return self._add(day, "payments", row, "payment_id")

    def card(self, day: str, p: Person, occurred_at: str, event_type: str, amount: str = "0.00", *,
             admitted_on: str = "", county: str = COUNTY, event_id: str | None = None) -> Fact:
        row = {"event_id": event_id or self._next("E"), "person_id": p.person_id, "card_no": p.card_no,
               "occurred_at": occurred_at, "event_type": event_type, "county_code": county,
               "institution_id": "H430001" if event_type == "medical" else "T430001", "amount": amount,
               "admitted_on": admitted_on}
        return self._add(day, "card_events", row, "event_id")

    def death(self, day: str, p: Person, death_date: str, *, source: str = "public_security",
              person_id: str | None = None, reported_on: str | None = None, record_id: str | None = None) -> Fact:
        """A death record; `person_id` may be a legacy 15-digit ID or end in a lowercase x."""
        row = {"record_id": record_id or self._next("D"), "person_id": person_id or p.person_id, "name": p.name,
               "death_date": death_date, "source": source, "reported_on": reported_on or day}
        return self._add(day, "deaths", row, "record_id")

    def incarceration(self, day: str, p: Person, sentence_type: str, start: str, end: str | None = None, *,
                      person_id: str | None = None, record_id: str | None = None) -> Fact:
        row = {"record_id": record_id or self._next("J"), "person_id": person_id or p.person_id, "name": p.name,
               "sentence_type": sentence_type, "start_date": start, "end_date": end or ""}
        return self._add(day, "incarcerations", row, "record_id")

    # ------------------------------------------------------------ files and runs

    @property
    def days(self) -> list[str]:
        return sorted({d for d, _ in self.rows})

    def write(self) -> Path:
        for (day, source), rows in sorted(self.rows.items()):
            folder = self.landing / day
            folder.mkdir(parents=True, exist_ok=True)
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(COLUMNS[source])
            for r in rows:
                w.writerow([r.get(c, "") for c in COLUMNS[source]])
            (folder / f"{source}.csv").write_text(buf.getvalue(), encoding="utf-8")
        return self.landing

    def settings(self, url: str) -> Settings:
        return Settings(database_url=url, var_dir=self.var)

    def load(self, url: str, days: Iterable[str] | None = None, *, rejects: int = 0) -> list[dict]:
        """Load `days` (default: every day not loaded yet, oldest first) without detecting; the city writes
        contract-true rows, so nothing may be rejected unless the test says how many (conflicts included)."""
        self.write()
        s = self.settings(url)
        pipeline.prepare(s)
        if days is None:
            with gateway.transaction(url) as conn:
                done = set(conn.execute(select(delivery.c.day)).scalars())
            days = [d for d in self.days if d not in done]
        summaries = [pipeline.load_day(s, self.landing, d) for d in days]
        files = [f for summary in summaries for f in summary["files"]]
        assert not [f for f in files if f["rejected_whole"]], f"a whole file was rejected: {files}"
        assert sum(f["rejected"] for f in files) == rejects, f"rows rejected (expected {rejects}): {files}"
        return summaries

    def detect(self, url: str) -> dict:
        return pipeline.detect(self.settings(url))

    def run(self, url: str, days: Iterable[str] | None = None, *, rejects: int = 0) -> dict[tuple[str, str], Alert]:
        self.load(url, days, rejects=rejects)
        self.detect(url)
        return alerts(url)


def alerts(url: str) -> dict[tuple[str, str], Alert]:
    """`risk alerts export`, keyed by (rule, person_id)."""
    with gateway.transaction(url) as conn:
        rows = export_rows(conn)
    out: dict[tuple[str, str], Alert] = {}
    for r in rows:
        key = (r["rule"], r["person_id"])
        assert key not in out, f"two alerts for one (rule, person): {key}"
        out[key] = Alert(alert_id=r["alert_id"], rule=r["rule"], person_id=r["person_id"],
                         village_code=r["village_code"], severity=r["severity"], amount_at_risk=r["amount_at_risk"],
                         first_seen=r["first_seen"], status=r["status"], evidence=json.loads(r["evidence"]), raw=r)
    return out


def rules_of(found: dict[tuple[str, str], Alert], p: Person) -> set[str]:
    return {rule for rule, pid in found if pid == p.person_id}


def total(*amounts: str) -> str:
    """Exact decimal sum, two places, as the export writes it."""
    return str(sum((Decimal(a) for a in amounts), Decimal("0")).quantize(Decimal("0.01")))


def assert_flags(alert: Alert, amount: str, flagged: Iterable[Fact], lawful: Iterable[Fact] = ()) -> None:
    """The alert's amount is exact; its evidence names every flagged fact (file and line) as flagged and
    flags nothing else; the lawful facts are never flagged."""
    flagged = list(flagged)
    assert alert.amount_at_risk == amount, f"{alert.rule} {alert.person_id}: amount {alert.amount_at_risk} != {amount}"
    for f in flagged:
        assert alert.names(f, flagged=True), f"{alert.rule}: evidence does not name {f.file} line {f.line} ({f.key})"
        entry = next(e for e in alert.flagged if e["file"] == f.file and e["line"] == f.line)
        assert entry["id"] == f.key
    assert alert.flagged_ids() == {f.key for f in flagged}, (
        f"{alert.rule}: flagged {sorted(alert.flagged_ids())}, expected {sorted(f.key for f in flagged)}")
    for f in lawful:
        assert not alert.names(f, flagged=True), f"{alert.rule}: lawful {f.file} line {f.line} ({f.key}) is flagged"
    for e in alert.evidence:
        assert e["file"] and e["line"] >= 2, f"{alert.rule}: evidence entry without file and line: {e}"
