"""Alerts: one per (rule, person), exported per contract §5.

The rule engine that raises them is the next piece of work; until it lands the export has its columns and
no rows, so scripts and the conformance check can already read it.
"""
from __future__ import annotations

import csv
import io
import json

from sqlalchemy import Connection

EXPORT_COLUMNS = ["alert_id", "rule", "person_id", "village_code", "severity", "score", "amount_at_risk",
                  "first_seen", "status", "evidence"]


def export_rows(conn: Connection) -> list[dict]:
    return []


def export(conn: Connection, fmt: str) -> str:
    rows = export_rows(conn)
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=1) + "\n"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
