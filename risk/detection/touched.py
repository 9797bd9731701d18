"""What each load touches, for the next detection: a night's detection works on the people (and, for
shared accounts, the accounts and periods) that the facts stored or removed since the last detection touch.

Tables (risk.db.tables):
- `touch`: one row per `record` of stored rows per file (source, delivery_day, source_file: the rows are
  found again in their table by that provenance, so recording a file of a million rows costs one row), and
  one row per removed fact (source, person_id; bank_account and period for a payment), which is gone from
  its table. `seq` only grows.
- `detection_mark`: per part of detection (a county, "-" for people who are not recipients) and rule, the
  last `touch.seq` its alerts reflect and the rule's version then. No row means: run that part and rule
  whole next time.

The loader calls `record` after every write to a fact table; detection (risk.detection.scope) reads the touches
newer than its marks, works out per rule which people they can concern (sql/touched/<rule>.sql), and moves
its marks; touches every part has seen are deleted (`forget_seen`). Until a first detection has run there
are no marks and `record` writes nothing: that first detection (a backfill) runs whole.
"""
from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, delete, func, select

from risk.db.gateway import insert_frame
from risk.db.tables import detection_mark, touch, touched_person

# the sources the rules read; regions and supervisors change no rule's result (an alert's village comes
# from the recipients table, whose rows are recorded)
READ_BY_RULES = ("payments", "card_events", "deaths", "incarcerations", "recipients", "certification")


def record(conn: Connection, source: str, stored: pd.DataFrame, removed: pd.DataFrame) -> None:
    """Remember what the rows just written to `source`'s table touch.

    `source` is a contract source name (payments, card_events, deaths, incarcerations, recipients,
    regions, supervisors) or "certification" (the dates of last certification a recipients row named).
    `stored`: the rows inserted, in the table's columns. `removed`: the rows deleted because an earlier
    delivery displaced them (append-only sources) or a later one replaced them (upsert sources), with at
    least the key and, where the table has them, person_id, bank_account, period and event_type.

    Of `stored` only the provenance (delivery_day, source_file) is read: detection finds the rows again by
    it. Of `removed`: person_id, and for payments bank_account and period. Replaced recipients rows are not
    recorded (no rule reads them; the standing row's village is compared with the alerts'). Regions and
    supervisors are not recorded.
    """
    if source not in READ_BY_RULES or not ever_detected(conn):
        return
    rows = []
    if not stored.empty:
        files = stored[["delivery_day", "source_file"]].drop_duplicates()
        rows.append(files.assign(source=source))
    if not removed.empty and source != "recipients":
        columns = ["person_id", "bank_account", "period"] if source == "payments" else ["person_id"]
        rows.append(removed[columns].drop_duplicates().assign(source=source))
    if rows:
        insert_frame(conn, touch, pd.concat(rows, ignore_index=True))


def ever_detected(conn: Connection) -> bool:
    return conn.execute(select(detection_mark.c.part).limit(1)).first() is not None


def latest(conn: Connection) -> int:
    """The newest touch's seq (0 when there is none)."""
    return int(conn.execute(select(func.max(touch.c.seq))).scalar() or 0)


def forget_seen(conn: Connection, parts: list[str] | None = None) -> int:
    """Delete the touches every part's detection has seen; returns how many. Given the current `parts`,
    first the marks of parts that are gone (no recipient is left in that county) and of rules no longer
    registered, which would otherwise keep every touch.

    Parts of one night may run at once (on PostgreSQL): each deletes only what every part's committed mark
    has passed, so none deletes a touch another has still to see."""
    if parts is not None:
        from risk.detection.registry import (
            BY_CODE,  # the loader's import of this module stays free of the rules
        )

        conn.execute(delete(detection_mark).where((detection_mark.c.part != "*") & (
            detection_mark.c.part.not_in(parts) | detection_mark.c.rule.not_in(list(BY_CODE)))))
    seen = conn.execute(select(func.min(detection_mark.c.touch_seq)).where(detection_mark.c.part != "*")).scalar()
    if seen is None:
        return 0
    conn.execute(delete(touched_person).where(touched_person.c.touch_seq <= seen))
    return conn.execute(delete(touch).where(touch.c.seq <= seen)).rowcount or 0
