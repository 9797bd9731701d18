"""Small helpers for the ingest/validation/warehouse tests: hand-written landing folders that follow the
data contract (docs/data-contract.md §1-2), valid resident IDs, and reading the warehouse back the
way a person would (the quality export, the ledger, whole tables)."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from sqlalchemy import MetaData, create_engine, select
from warehouses import BOOKKEEPING, pg_database, warehouse  # noqa: F401 - re-exported for the tests

from risk import pipeline
from risk.db import gateway
from risk.identity import numbers as identity
from risk.ingest import quality
from risk.settings import Settings

# ---------------------------------------------------------------- identities

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def check_char(first17: str) -> str:
    """MOD 11-2, written out again from the contract (§3) rather than taken from risk.identity.numbers."""
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def make_id(born: str = "1960-01-15", area: str = "431102", seq: int = 12, male: bool = True) -> str:
    """A valid 18-character ID: address code, birth date, a 2-digit sequence, a gender digit, the check."""
    gender_digit = (1 if male else 2) + 2 * (seq % 4)
    first17 = area + born.replace("-", "") + f"{seq % 100:02d}" + str(gender_digit)
    return first17 + check_char(first17)


# ---------------------------------------------------------------- the landing

CITY, COUNTY, TOWNSHIP = "431100000000", "431102000000", "431102001000"
VILLAGE, VILLAGE2 = "431102001001", "431102001002"

REGIONS = [
    {"code": CITY, "name": "永州市", "level": "city", "parent_code": ""},
    {"code": COUNTY, "name": "零陵区", "level": "county", "parent_code": CITY},
    {"code": TOWNSHIP, "name": "七里店街道", "level": "township", "parent_code": COUNTY},
    {"code": VILLAGE, "name": "甲村", "level": "village", "parent_code": TOWNSHIP},
    {"code": VILLAGE2, "name": "乙村", "level": "village", "parent_code": TOWNSHIP},
]

COLUMNS = {
    "regions": ["code", "name", "level", "parent_code"],
    "recipients": [
        "person_id",
        "name",
        "gender",
        "birth_date",
        "village_code",
        "bank_account",
        "card_no",
        "last_certified_on",
        "phone",
    ],
    "supervisors": ["user_id", "name", "role", "region_code", "email", "notify_url"],
    "payments": ["payment_id", "person_id", "benefit_type", "period", "amount", "paid_on", "bank_account"],
    "card_events": [
        "event_id",
        "person_id",
        "card_no",
        "occurred_at",
        "event_type",
        "county_code",
        "institution_id",
        "amount",
        "admitted_on",
    ],
    "deaths": ["record_id", "person_id", "name", "death_date", "source", "reported_on"],
    "incarcerations": ["record_id", "person_id", "name", "sentence_type", "start_date", "end_date"],
}


def recipient(person_id: str | None = None, **over) -> dict:
    pid = make_id() if person_id is None else person_id
    full = pid if len(pid) == 18 else pid[:6] + "19" + pid[6:] + "0"
    row = {
        "person_id": pid,
        "name": "张三",
        "gender": "M" if int(full[16]) % 2 else "F",
        "birth_date": f"{full[6:10]}-{full[10:12]}-{full[12:14]}",
        "village_code": VILLAGE,
        "bank_account": "6217000000000001",
        "card_no": "A12345678",
        "last_certified_on": "2024-06-01",
        "phone": "13800000000",
    }
    return {**row, **over}


def payment(payment_id: str, person_id: str | None = None, **over) -> dict:
    row = {
        "payment_id": payment_id,
        "person_id": make_id() if person_id is None else person_id,
        "benefit_type": "resident_pension",
        "period": "2025-03",
        "amount": "300.00",
        "paid_on": "2025-03-10",
        "bank_account": "6217000000000001",
    }
    return {**row, **over}


def card_event(event_id: str, person_id: str | None = None, **over) -> dict:
    row = {
        "event_id": event_id,
        "person_id": make_id() if person_id is None else person_id,
        "card_no": "A12345678",
        "occurred_at": "2025-03-20T09:13:05+08:00",
        "event_type": "pharmacy",
        "county_code": COUNTY,
        "institution_id": "I100001",
        "amount": "35.50",
        "admitted_on": "",
    }
    return {**row, **over}


def death(record_id: str, person_id: str | None = None, **over) -> dict:
    row = {
        "record_id": record_id,
        "person_id": make_id() if person_id is None else person_id,
        "name": "张三",
        "death_date": "2025-03-01",
        "source": "health",
        "reported_on": "2025-03-05",
    }
    return {**row, **over}


def incarceration(record_id: str, person_id: str | None = None, **over) -> dict:
    row = {
        "record_id": record_id,
        "person_id": make_id() if person_id is None else person_id,
        "name": "张三",
        "sentence_type": "custodial",
        "start_date": "2025-01-10",
        "end_date": "2025-09-30",
    }
    return {**row, **over}


def supervisor(user_id: str, **over) -> dict:
    row = {
        "user_id": user_id,
        "name": "李四",
        "role": "village",
        "region_code": VILLAGE,
        "email": f"{user_id}@example.org",
        "notify_url": "",
    }
    return {**row, **over}


def csv_text(rows: Sequence[dict], columns: Sequence[str], newline: str = "\n") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=newline)
    w.writerow(columns)
    for r in rows:
        w.writerow([r.get(c, "") for c in columns])
    return buf.getvalue()


def write(
    landing: Path,
    day: str,
    source: str,
    rows: Sequence[dict],
    columns: Sequence[str] | None = None,
    *,
    gz: bool = False,
    bom: bool = False,
    crlf: bool = False,
) -> Path:
    """Write `<landing>/<day>/<source>.csv[.gz]` with a header and `rows` (dicts by column name)."""
    cols = list(columns) if columns is not None else COLUMNS[source]
    text = csv_text(rows, cols, "\r\n" if crlf else "\n")
    return write_raw(landing, day, source, (("\ufeff" if bom else "") + text).encode("utf-8"), gz=gz)


def write_raw(landing: Path, day: str, source: str, data: bytes | str, *, gz: bool = False) -> Path:
    folder = landing / day
    folder.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    path = folder / f"{source}.csv{'.gz' if gz else ''}"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def base_day(landing: Path, day: str = "2025-03-01", people: Iterable[dict] = ()) -> None:
    """A master-data day: the regions above and the given recipients."""
    write(landing, day, "regions", REGIONS)
    people = list(people)
    if people:
        write(landing, day, "recipients", people)


# ---------------------------------------------------------------- running and reading back


def settings(url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=url, var_dir=tmp_path / "var")


def load(s: Settings, landing: Path, *days: str) -> list[dict]:
    pipeline.prepare(s)
    return [pipeline.load_day(s, landing, d) for d in days]


def rejects(url: str) -> list[dict]:
    """The rows of `risk quality export`, as dicts."""
    with gateway.transaction(url) as conn:
        text = quality.export_csv(conn)
    return list(csv.DictReader(io.StringIO(text)))


def ledger(url: str) -> list[dict]:
    with gateway.transaction(url) as conn:
        return quality.ledger(conn).to_dict("records")


def assert_balanced(url: str) -> list[dict]:
    rows = ledger(url)
    assert rows, "the ledger is empty"
    bad = [r for r in rows if not r["balanced"]]
    assert not bad, f"files whose rows read != loaded + rejected + re-delivered: {bad}"
    return rows


def ledger_of(url: str, day: str, source: str) -> dict:
    found = [r for r in ledger(url) if r["delivery_day"] == day and r["source"] == source]
    assert len(found) == 1, f"no ledger row for {day}/{source}"
    return found[0]


def table_names(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            md = MetaData()
            md.reflect(conn)
            return sorted(md.tables)
    finally:
        engine.dispose()


def rows_of(url: str, table: str, order_by: str | None = None) -> list[dict]:
    md = MetaData()
    with gateway.transaction(url) as conn:
        md.reflect(conn, only=[table])
        t = md.tables[table]
        q = select(t)
        if order_by:
            q = q.order_by(t.c[order_by])
        return [dict(r) for r in conn.execute(q).mappings()]




CORE_TABLES = (
    "region",
    "recipient",
    "supervisor",
    "payment",
    "card_event",
    "death",
    "incarceration",
    "delivery",
    "delivery_file",
    "quality_issue",
    "sighting",
)
# and, where it exists, what loading writes besides
INGEST_TABLES = (
    "region",
    "recipient",
    "supervisor",
    "payment",
    "card_event",
    "death",
    "incarceration",
    "certification",
    "delivery",
    "delivery_file",
    "quality_issue",
    "sighting",
)


def snapshot(url: str, tables: Sequence[str] | None = INGEST_TABLES) -> dict[str, list[tuple]]:
    """The warehouse tables that loading writes (`tables=None`: every table) as sorted rows, without
    bookkeeping times and quality_issue.id."""
    engine = create_engine(url)
    md = MetaData()
    out: dict[str, list[tuple]] = {}
    try:
        with engine.connect() as conn:
            md.reflect(conn)
            for name, t in sorted(md.tables.items()):
                if name == "alembic_version" or (tables is not None and name not in tables):
                    continue
                cols = [
                    c
                    for c in t.columns
                    if not BOOKKEEPING.match(c.name) and not (name == "quality_issue" and c.name == "id")
                ]
                rows = [tuple(r) for r in conn.execute(select(*cols)).all()]
                out[name] = sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r))
        if tables is not None:
            missing = set(CORE_TABLES) - set(out)
            assert not missing, f"warehouse tables missing: {missing}"
    finally:
        engine.dispose()
    return out


def diff_snapshots(a: dict, b: dict) -> str:
    """A short description of how two snapshots differ (for assertion messages)."""
    lines = []
    for name in sorted(set(a) | set(b)):
        ra, rb = set(a.get(name, [])), set(b.get(name, []))
        if ra != rb:
            lines.append(
                f"{name}: only in first {sorted(ra - rb, key=str)[:5]}; "
                f"only in second {sorted(rb - ra, key=str)[:5]}"
            )
    return "\n".join(lines)


def masked(person_id: str) -> str:
    return identity.mask_id(person_id)


# ---------------------------------------------------------------- PostgreSQL for module-scoped fixtures



def database(kind: str, folder: Path):
    """A warehouse URL of `kind` ("sqlite" or "postgres")."""
    return warehouse(kind, folder)
