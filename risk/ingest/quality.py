"""The quality queue: every rejected row with its reason, the per-file ledger that proves nothing was lost,
the CSV export of contract §5 and the data-quality report a person can open."""
from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, and_, case, delete, func, select

from risk import spreadsheet
from risk.contract import BY_NAME, Kind
from risk.db.tables import FACT_TABLES, delivery_file, quality_issue, recipient, region, sighting
from risk.identity.numbers import masked_key

ROW_KINDS = ("row", "invalid", "reference", "conflict")  # a rejected row; "file" is a whole file


@dataclass
class Rejection:
    line: int | None
    key: str | None
    kind: str
    field: str
    reason: str
    raw: dict | None = None


def record(conn: Connection, source: str, day: str, file_name: str, rejections: Iterable[Rejection]) -> int:
    """Put rejections in the queue; a rejection already recorded for that line is replaced (reloading a day)."""
    recs = [{"source": source, "delivery_day": day, "file_name": file_name, "line": r.line, "record_key": r.key,
             "kind": r.kind, "field": r.field, "reason": r.reason,
             "raw": json.dumps(r.raw, ensure_ascii=False) if r.raw is not None else None} for r in rejections]
    if not recs:
        return 0
    lines = [r["line"] for r in recs if r["line"] is not None]
    for start in range(0, len(lines), 500):
        conn.execute(delete(quality_issue).where(and_(
            quality_issue.c.source == source, quality_issue.c.delivery_day == day,
            quality_issue.c.line.in_(lines[start:start + 500]))))
    if any(r["line"] is None for r in recs):
        conn.execute(delete(quality_issue).where(and_(
            quality_issue.c.source == source, quality_issue.c.delivery_day == day, quality_issue.c.line.is_(None))))
    conn.execute(quality_issue.insert(), recs)
    return len(recs)


# ---------------------------------------------------------------- the area of a rejected row

PLACED_BY_PERSON = ("payments", "card_events", "deaths", "incarcerations")


def villages_of(conn: Connection, issues: list[tuple[str, str | None, str | None]]) -> list[str | None]:
    """The village each rejected row (source, record_key, raw) belongs to, or None where it cannot be placed
    (city-wide): a recipients row by its village_code, if that is a known village; a payment, card event,
    death or custody row by its person's village (the person as delivered, or for a conflict the standing
    row's), if that person is a known recipient. A whole file, a region, a supervisor, and a row whose
    village or person is unknown or not valid are city-wide."""
    wanted: list[tuple[str, str | None]] = []  # (how to place it, what with): village code or person id
    standing: dict[str, set[str]] = {}  # source -> keys of conflicts to read the standing row's person from
    for source, key, raw in issues:
        try:
            row = json.loads(raw) if raw else None
        except ValueError:
            row = None
        row = row if isinstance(row, dict) else None
        if source == "recipients":
            village = row.get("village_code") if row else None
            if row is None and key:  # a conflict: the standing row's village
                wanted.append(("person", key))
            else:
                wanted.append(("village", village if isinstance(village, str) else None))
        elif source in PLACED_BY_PERSON:
            person = row.get("person_id") if row else None
            if row is None and key:
                standing.setdefault(source, set()).add(key)
                wanted.append((source, key))
            else:
                wanted.append(("person", person.strip().upper() if isinstance(person, str) else None))
        else:
            wanted.append(("none", None))
    person_of: dict[tuple[str, str], str] = {}
    for source, keys in standing.items():
        table = FACT_TABLES[source]
        key_column = table.c[BY_NAME[source].key]
        for part in _chunks(sorted(keys)):
            person_of.update({(source, k): p for k, p in conn.execute(
                select(key_column, table.c.person_id).where(key_column.in_(part)))})
    wanted = [("person", person_of.get((how, what))) if how in standing and what else (how, what)
              for how, what in wanted]
    villages = {v for how, v in wanted if how == "village" and v}
    known = set()
    for part in _chunks(sorted(villages)):
        known |= set(conn.execute(select(region.c.code).where(region.c.code.in_(part),
                                                               region.c.level == "village")).scalars())
    people = {v for how, v in wanted if how == "person" and v}
    village_of: dict[str, str] = {}
    for part in _chunks(sorted(people)):
        village_of.update(dict(conn.execute(select(recipient.c.person_id, recipient.c.village_code)
                                            .where(recipient.c.person_id.in_(part))).all()))
    return [(what if what in known else None) if how == "village" else
            village_of.get(what) if how == "person" and what else None for how, what in wanted]


def _chunks(values: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


# ---------------------------------------------------------------- ledger


def ledger(conn: Connection) -> pd.DataFrame:
    """Per delivered file: rows read, loaded, rejected, exact re-deliveries, and whether they add up.

    Every number but `rows_read` is counted from the warehouse as it stands, so the ledger proves the
    tables, not what the loader said about itself.
    """
    files = pd.DataFrame(conn.execute(select(delivery_file)).mappings().all())
    if files.empty:
        return pd.DataFrame(columns=["delivery_day", "source", "file_name", "rows_read", "loaded", "rejected",
                                     "redelivered", "balanced"])
    rejected = _counts(conn, select(quality_issue.c.source, quality_issue.c.delivery_day, func.count()).where(
        quality_issue.c.line.is_not(None)).group_by(quality_issue.c.source, quality_issue.c.delivery_day))
    seen = conn.execute(select(
        sighting.c.source, sighting.c.delivery_day,
        func.sum(case((sighting.c.kind == "redelivery", 1), else_=0)),
        func.sum(case((sighting.c.kind == "superseded", 1), else_=0)),
    ).group_by(sighting.c.source, sighting.c.delivery_day)).all()
    redelivered = {(s, d): int(r or 0) for s, d, r, _ in seen}
    superseded = {(s, d): int(x or 0) for s, d, _, x in seen}
    standing: dict[tuple[str, str], int] = {}
    for name, table in FACT_TABLES.items():
        for d, n in conn.execute(select(table.c.delivery_day, func.count()).group_by(table.c.delivery_day)).all():
            standing[(name, d)] = int(n)
    out = files[["delivery_day", "source", "file_name", "rows_read", "rejected_whole"]].copy()
    keys = list(zip(out["source"], out["delivery_day"], strict=True))
    out["loaded"] = [standing.get(k, 0) + (superseded.get(k, 0) if BY_NAME[k[0]].kind is Kind.UPSERT else 0)
                     for k in keys]
    out["rejected"] = [rejected.get(k, 0) for k in keys]
    out["redelivered"] = [redelivered.get(k, 0) for k in keys]
    out["balanced"] = out["rows_read"] == out["loaded"] + out["rejected"] + out["redelivered"]
    return out.sort_values(["delivery_day", "source"]).reset_index(drop=True)


def _counts(conn: Connection, stmt) -> dict[tuple[str, str], int]:
    return {(s, d): int(n) for s, d, n in conn.execute(stmt).all()}


# ---------------------------------------------------------------- export


EXPORT_COLUMNS = ["source", "delivery_day", "line", "key", "reason", "file", "field", "kind"]


def export_rows(conn: Connection) -> list[dict]:
    q = select(quality_issue).order_by(quality_issue.c.delivery_day, quality_issue.c.source,
                                       quality_issue.c.line.is_(None).desc(), quality_issue.c.line)
    return [{"source": r.source, "delivery_day": r.delivery_day, "line": "" if r.line is None else r.line,
             "key": r.record_key or "", "reason": r.reason, "file": r.file_name, "field": r.field or "",
             "kind": r.kind} for r in conn.execute(q)]


def export_csv(conn: Connection) -> str:
    buf = io.StringIO()
    w = spreadsheet.dict_writer(buf, EXPORT_COLUMNS, lineterminator="\n")  # no cell a live formula
    w.writeheader()
    w.writerows(export_rows(conn))
    return buf.getvalue()


# ---------------------------------------------------------------- report


def top_reasons(conn: Connection, limit: int = 3) -> dict[str, list[tuple[str, int]]]:
    """Per source, the most frequent reasons (first sentence, without the offending value)."""
    rows = conn.execute(select(quality_issue.c.source, quality_issue.c.reason)).all()
    counts: dict[str, dict[str, int]] = {}
    for source, reason in rows:
        first = reason.split("; ")[0]
        short = re.sub(r"（[a-z_]+='[^']*'）$", "", first).strip()
        if short.startswith("主键"):  # conflicts: one reason, whatever the key
            short = "主键已以不同内容交付 / key already delivered with other content"
        counts.setdefault(source, {}).setdefault(short, 0)
        counts[source][short] += 1
    return {s: sorted(c.items(), key=lambda kv: -kv[1])[:limit] for s, c in counts.items()}


def write_report(conn: Connection, folder: Path) -> Path:
    """An HTML page: the ledger per file, rejected rows per source and day, and the reasons (no personal data)."""
    folder.mkdir(parents=True, exist_ok=True)
    led = ledger(conn)
    issues = export_rows(conn)
    by_source: dict[str, dict[str, int]] = {}
    for name in FACT_TABLES:
        part = led[led["source"] == name]
        by_source[name] = {"files": len(part), "read": int(part["rows_read"].sum()),
                           "loaded": int(part["loaded"].sum()), "rejected": int(part["rejected"].sum()),
                           "redelivered": int(part["redelivered"].sum())}
    e = html.escape
    parts = [
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>数据质量报告 / Data-quality report</title><style>",
        "body{font-family:system-ui,'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:1rem;max-width:70rem}",
        "table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;"
        "text-align:left}th{background:#f3f3f3}.bad{color:#b00020;font-weight:bold}.ok{color:#1b5e20}",
        ".bar{background:#c62828;height:.8rem;display:inline-block}.barok{background:#2e7d32;height:.8rem;"
        "display:inline-block}</style></head><body>",
        "<h1>数据质量报告 <small>Data-quality report</small></h1>",
        f"<p>生成时间 Generated {e(datetime.now().strftime('%Y-%m-%d %H:%M'))}。"
        "每个文件：读入行数 = 入库 + 拒收 + 重复交付。Every file: rows read = loaded + rejected + re-delivered.</p>",
        "<h2>按来源 By source</h2><table><tr><th>来源 source</th><th>文件 files</th><th>读入 read</th>"
        "<th>入库 loaded</th><th>拒收 rejected</th><th>重复交付 re-delivered</th><th></th></tr>",
    ]
    for name, c in by_source.items():
        share = c["loaded"] / c["read"] if c["read"] else 0
        parts.append(
            f"<tr><td>{e(BY_NAME[name].zh)} {e(name)}</td><td>{c['files']}</td><td>{c['read']:,}</td>"
            f"<td>{c['loaded']:,}</td><td class='{'bad' if c['rejected'] else ''}'>{c['rejected']:,}</td>"
            f"<td>{c['redelivered']:,}</td><td><span class='barok' style='width:{share * 8:.2f}rem'></span>"
            f"<span class='bar' style='width:{(1 - share) * 8 if c['read'] else 0:.2f}rem'></span></td></tr>")
    parts.append("</table><h2>文件台账 Ledger per file</h2><table><tr><th>交付日 day</th><th>来源 source</th>"
                 "<th>文件 file</th><th>读入 read</th><th>入库 loaded</th><th>拒收 rejected</th>"
                 "<th>重复 re-delivered</th><th>平衡 balanced</th></tr>")
    for r in led.itertuples(index=False):
        parts.append(
            f"<tr><td>{e(r.delivery_day)}</td><td>{e(r.source)}</td><td>{e(r.file_name)}"
            f"{' <b class=bad>整文件拒收 rejected whole</b>' if r.rejected_whole else ''}</td><td>{r.rows_read:,}</td>"
            f"<td>{r.loaded:,}</td><td>{r.rejected:,}</td><td>{r.redelivered:,}</td>"
            f"<td class='{'ok' if r.balanced else 'bad'}'>{'✓' if r.balanced else '✗'}</td></tr>")
    parts.append(f"</table><h2>拒收明细 Rejected rows ({len(issues):,})</h2><table><tr><th>来源 source</th>"
                 "<th>交付日 day</th><th>行 line</th><th>主键 key</th><th>原因 reason</th></tr>")
    for r in issues[:5000]:
        key = masked_key(BY_NAME[r["source"]], str(r["key"]))
        parts.append(f"<tr><td>{e(r['source'])}</td><td>{e(r['delivery_day'])}</td><td>{r['line']}</td>"
                     f"<td>{e(key)}</td><td>{e(r['reason'])}</td></tr>")
    if len(issues) > 5000:
        parts.append(f"<tr><td colspan=5>… 另有 {len(issues) - 5000:,} 行，见 `risk quality export` / "
                     f"{len(issues) - 5000:,} more rows: see `risk quality export`</td></tr>")
    parts.append("</table></body></html>")
    path = folder / "quality.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
