"""Write the landing one file at a time (contract §1-2 file shapes, with the quirks real deliveries
have: shuffled column order, a BOM, CRLF line ends, gzip) and the truth files beside it."""
from __future__ import annotations

import csv
import gzip
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from risk.contract import BY_NAME
from risk.synth.lawful import LAWFUL_RULE
from risk.synth.render import TEXT, Delivery
from risk.synth.timeline import Calendar
from risk.synth.world import World

Reject = tuple[str, str, int, str]  # source, delivery_day, line, key
BATCH = 250_000  # rows encoded at a time


class Sink(Protocol):
    def write(self, data: bytes | memoryview, /) -> int: ...


class Landing:
    """Writes delivery files one at a time, with the quirks real files have (shuffled column order,
    a BOM on the first regions file, CRLF on some death and custody files, gzip on two card event
    files in three), and keeps the rows per source and the rejects' file lines for the truth."""

    def __init__(self, root: Path, cal: Calendar, rng: np.random.Generator):
        self.root, self.cal, self.rng = root / "landing", cal, rng
        self.rejects: list[Reject] = []
        self.rows: Counter = Counter()
        self.seen: Counter = Counter()  # files written per source

    def write(self, day: str, source: str, delivery: Delivery) -> str:
        """Write one file; returns its name and row count for progress."""
        crlf = ((source == "deaths" and self.seen[source] % 3 == 1)
                or (source == "incarcerations" and self.seen[source] == 1))
        self.seen[source] += 1
        gz = source == "card_events" and int(self.cal.month_of(np.datetime64(day))) % 3 != 0
        bom = day == str(self.cal.first_day) and source == "regions"
        table = delivery.table
        table = table.select([table.column_names[k] for k in self.rng.permutation(table.num_columns)])
        name = f"{source}.csv.gz" if gz else f"{source}.csv"
        path = self.root / day / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as raw:
            out = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=3, mtime=0) if gz else raw
            write_csv(out, table, "\r\n" if crlf else "\n", bom)
            if gz:
                out.close()
        lines = np.flatnonzero(delivery.reject)
        keys = delivery.table.column(BY_NAME[source].key).take(pa.array(lines)).to_pylist()
        self.rejects += [(source, day, int(line) + 2, str(key)) for line, key in zip(lines, keys, strict=True)]
        self.rows[source] += table.num_rows
        return f"{name} {table.num_rows}"


def write_csv(out: Sink, table: pa.Table, eol: str, bom: bool = False) -> None:
    """RFC 4180 text of `table` (all text columns), quoting only the fields that need it."""
    header = ",".join(_quote_one(c) for c in table.column_names) + eol
    out.write(("\ufeff" if bom else "").encode("utf-8") + header.encode("utf-8"))
    for batch in table.to_batches(max_chunksize=BATCH):
        if batch.num_rows:
            out.write(_lines(batch, eol))


def _lines(batch: pa.RecordBatch, eol: str) -> memoryview:
    sep, nothing, end = (pa.scalar(x, TEXT) for x in (",", "", eol))
    fields = [_quoted(c.cast(TEXT)) for c in batch.columns]
    line = fields[0] if len(fields) == 1 else pc.binary_join_element_wise(*fields, sep)
    line = pc.binary_join_element_wise(line, nothing, end)
    assert line.null_count == 0, "a null field would drop its row"
    return _data(line)


def _data(col: pa.Array) -> memoryview:
    """The bytes of a large_string array's values, back to back."""
    _validity, offsets, data = col.buffers()
    at = np.frombuffer(offsets, dtype=np.int64, count=len(col) + 1, offset=col.offset * 8)
    return memoryview(data)[at[0]: at[-1]] if data is not None else memoryview(b"")


def _quoted(col: pa.Array) -> pa.Array:
    data = np.frombuffer(_data(col), dtype=np.uint8)
    if not ((data == ord(",")) | (data == ord('"')) | (data < 14)).any():  # no comma, quote, CR or LF
        return col
    quote = pa.scalar('"', TEXT)
    need = pc.match_substring_regex(col, '[,"\r\n]')
    return pc.if_else(need, pc.binary_join_element_wise(quote, pc.replace_substring(col, '"', '""'), quote,
                                                         pa.scalar("", TEXT)), col)


def _quote_one(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\r\n') else value


def _write_csv(path: Path, header: list[str], rows: list) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(header)
        out.writerows(rows)


def write_truth(root: Path, w: World, rejects: list[Reject], summary: dict) -> None:
    truth = root / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    alerts = sorted((rule, w.pid(i), str(Decimal(cents) / 100)) for (rule, i), cents in w.alerts.items())
    alerts = [(r, p, f"{Decimal(a):.2f}") for r, p, a in alerts]
    _write_csv(truth / "expected-alerts.csv", ["rule", "person_id", "amount_at_risk"], alerts)
    _write_csv(truth / "expected-rejects.csv", ["source", "delivery_day", "line", "key"],
               sorted(rejects, key=lambda r: (r[1], r[0], r[2])))
    lawful = sorted({(case, w.pid(i), note) for case, i, note in w.lawful})
    _write_csv(truth / "lawful.csv", ["case", "person_id", "note"], lawful)
    _write_csv(truth / "outliers.csv", ["person_id", "kind"], sorted((w.pid(i), k) for i, k in w.outliers))
    (truth / "README.md").write_text(readme(summary), encoding="utf-8")


def readme(s: dict) -> str:
    rules = "\n".join(f"| `{r}` | {n} |" for r, n in sorted(s["planted"].items()))
    variants = "\n".join(f"| `{v}` | {n} |" for v, n in s["variants"].items())
    cases = "\n".join(f"| `{c}` | `{LAWFUL_RULE[c]}` | {n} |" for c, n in sorted(s["lawful"].items()))
    sources = "\n".join(f"| `{k}` | {v} |" for k, v in sorted(s["rows"].items()))
    return f"""# Truth for a generated city

Generated by `risk.synth.generate` with seed {s['seed']}, {s['people']} people, {s['months']} months
from {s['start']} ({s['days']} delivery days under `../landing/`). The same seed and size give the
same files.

## Files

- `expected-alerts.csv` (`rule,person_id,amount_at_risk`): every alert the rules of contract §4 demand
  from the landing, one row per person and rule, with the exact amount (two decimals) per §4's amount
  definitions. No `anomaly` rows: those depend on the model.
- `expected-rejects.csv` (`source,delivery_day,line,key`): every row that breaks the contract and must
  go to the quality queue. `line` is the 1-based line in the (decompressed) file, the header is line 1;
  `key` is the row's key column as delivered. Conflicts (a key re-delivered later with other content)
  are listed on the later day. Exact re-deliveries (a later day, or twice in one file) are skipped,
  not rejected, and are not listed.
- `lawful.csv` (`case,person_id,note`): planted legal exceptions, the "never raise for" column of §4.
  The note starts with the rule the person must not raise; none of these people has any alert.
- `outliers.csv` (`person_id,kind`): behavioural outliers (`night_far_from_home`: many card events
  00:00-05:00 in a Guangzhou district; `pharmacy_burst`: 30-40 pharmacy events a month at one
  pharmacy; `inflated_amount`: a monthly benefit about 5x their peers'). They break no §4 rule, so
  they appear in no expected alert; the anomaly model should rank them high.

## Planted alerts per rule

| rule | alerts |
|---|---|
{rules}

By planted variant (each planted person carries exactly one alert):

| variant | alerts |
|---|---|
{variants}

## Lawful cases

| case | rule it must not raise | people |
|---|---|---|
{cases}

## Rows per source (including re-deliveries and rejected rows)

| source | rows |
|---|---|
{sources}

Rejected rows: {s['rejects']}. Outliers: {s['outliers']}.

## Decisions

- `last_certified_on` comes from the recipients row of the latest delivery day (upsert): a later
  delivery that moves the date backwards (`certification_overdue/corrected_backwards`) replaces the
  earlier value; one that records a new certification (`recertification_redelivered`) covers the
  months after it.
- Lump sums (funeral grant, survivor benefit, account inheritance) carry the month they are paid as
  their period; they never count as recurring.
- Timestamps are written with `+08:00`, except a few written in UTC (`+00:00`) to check that days
  are Beijing days.
"""
