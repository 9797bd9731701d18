"""What each load touches, for the next detection: a night's detection works on the people (and, for
shared accounts, the accounts and periods) that the facts stored or removed since the last detection touch.

The loader calls `record` after every write to a fact table; detection reads what was recorded and clears it.
"""
from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection


def record(conn: Connection, source: str, stored: pd.DataFrame, removed: pd.DataFrame) -> None:
    """Remember what the rows just written to `source`'s table touch.

    `source` is a contract source name (payments, card_events, deaths, incarcerations, recipients,
    regions, supervisors) or "certification" (the dates of last certification a recipients row named).
    `stored`: the rows inserted, in the table's columns. `removed`: the rows deleted because an earlier
    delivery displaced them (append-only sources) or a later one replaced them (upsert sources), with at
    least the key and, where the table has them, person_id, bank_account, period and event_type.
    """
