"""Alerts: one per (rule, person), exported per contract §5."""
from __future__ import annotations

import io
import json

from sqlalchemy import Connection, select

from risk import spreadsheet
from risk.db.tables import alert

EXPORT_COLUMNS = ["alert_id", "rule", "person_id", "village_code", "severity", "score", "amount_at_risk",
                  "first_seen", "status", "evidence"]


def yuan(cents: int) -> str:
    """Exact: integer fen to a two-place decimal string (`-0.05`, `0.00`, `1234.50`), in integers (an export
    writes two a row)."""
    fen = int(cents)
    whole, part = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}{whole}.{part:02d}"


def as_export(rows) -> list[dict]:
    """Alert rows in the columns of contract §5."""
    return [{"alert_id": r.alert_id, "rule": r.rule, "person_id": r.person_id, "village_code": r.village_code or "",
             "severity": r.severity, "score": r.score, "amount_at_risk": yuan(r.amount_at_risk_cents),
             "first_seen": r.first_seen, "status": r.status, "evidence": r.evidence}
            for r in rows]


def export_rows(conn: Connection, include_withdrawn: bool = False) -> list[dict]:
    """Every alert; alerts withdrawn because their facts were replaced only when asked for."""
    q = select(alert).order_by(alert.c.rule, alert.c.person_id)
    if not include_withdrawn:
        q = q.where(alert.c.status != "withdrawn")
    return as_export(conn.execute(q))


def export(conn: Connection, fmt: str, include_withdrawn: bool = False) -> str:
    return render(export_rows(conn, include_withdrawn), fmt)


def render(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        for r in rows:
            r["evidence"] = json.loads(r["evidence"])
        return json.dumps(rows, ensure_ascii=False, indent=1) + "\n"
    buf = io.StringIO()
    w = spreadsheet.dict_writer(buf, EXPORT_COLUMNS, lineterminator="\n")  # no cell a live formula
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
