"""Validated rows into the warehouse, by the contract's keys (§1).

Append-only sources: of all deliveries of a key, the earliest (delivery day, line) stands; a later one with
the same content is an exact re-delivery, with other content a conflict that goes to the quality queue.
Upsert sources: the latest delivery day stands (within one file the first line does; a later line with other
content is a conflict). Every non-standing row is kept in `sighting`, so that loading days in any order, or
twice, ends in the same tables.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Connection, and_, delete, select, update

from risk import touched
from risk.contract import Kind, Source, Type
from risk.db.gateway import insert_frame, keys_present
from risk.db.tables import FACT_TABLES, certification, quality_issue, sighting
from risk.identity import mask_id

PROVENANCE = ["delivery_day", "source_file", "source_line", "row_hash"]


def _canonical_text(values: pd.Series) -> pd.Series:
    return values.astype("str").fillna("")


def typed_rows(source: Source, checked: pd.DataFrame, day: str, source_file: str) -> pd.DataFrame:
    """Table rows for the accepted rows of `checked` (the validated frame, with `_line`)."""
    out = pd.DataFrame(index=checked.index)
    for c in source.columns:
        col = checked[c.name]
        if c.type is Type.PERSON_ID:
            out[c.name] = checked[f"{c.name}__norm"]
            if source.name in ("deaths", "incarcerations"):
                out[f"{c.name}_delivered"] = col
        elif c.type is Type.DATE:
            out[c.name] = pd.to_datetime(col, format="%Y-%m-%d", errors="coerce").dt.date
            out[c.name] = out[c.name].astype(object).where(col.notna(), None)
        elif c.type is Type.MONTH:
            out[c.name] = pd.to_datetime(col + "-01", format="%Y-%m-%d").dt.date
        elif c.type is Type.MONEY:
            out[f"{c.name}_cents"] = (checked[f"{c.name}__yuan"] * 100).round().astype("int64")
        elif c.type is Type.TIMESTAMP:
            utc = pd.to_datetime(col, format="ISO8601", utc=True)
            beijing = utc.dt.tz_convert("Asia/Shanghai")
            out[c.name] = col
            out["occurred_utc"] = utc.dt.tz_localize(None).astype("datetime64[us]").astype(object)
            out["occurred_on"] = beijing.dt.date
            out["occurred_hour"] = beijing.dt.hour.astype("int64")
        else:
            out[c.name] = col
    canonical = [_canonical_text(out[n]) for n in out.columns if n not in ("occurred_utc", "occurred_on", "occurred_hour")]
    joined = canonical[0].str.cat(canonical[1:], sep="\x1f") if len(canonical) > 1 else canonical[0]
    # 64 bits suffice: a hash is only ever compared with the other deliveries of the same key
    out["row_hash"] = [f"{h:016x}" for h in pd.util.hash_pandas_object(joined, index=False).to_numpy()]
    out["delivery_day"] = day
    out["source_file"] = source_file
    out["source_line"] = checked["_line"].astype("int64")
    return out.reset_index(drop=True)


def among(values: pd.Series, pool) -> pd.Series:
    """`values.isin(pool)` through a hash table: pandas' isin on Arrow-backed text loops in Python."""
    found = pd.Index(pd.Series(pool).to_numpy(dtype=object)).get_indexer(values.to_numpy(dtype=object)) >= 0
    return pd.Series(found, index=values.index)


@dataclass
class Stored:
    loaded: int = 0
    redelivered: int = 0
    conflicts: int = 0
    superseded: int = 0


def store(conn: Connection, source: Source, rows: pd.DataFrame, seen_before: bool = True) -> Stored:
    """Bring the rows of one delivered file into the warehouse; return what became of them.

    `seen_before` False promises that no row of this file is in the warehouse yet (the file was never
    loaded), which spares a search of the whole fact table for rows of its day."""
    table = FACT_TABLES[source.name]
    key = source.key
    result = Stored()
    rows = _drop_already_recorded(conn, source, rows) if seen_before and not rows.empty else rows
    if rows.empty:
        return result
    rows = rows.sort_values("source_line", kind="stable").reset_index(drop=True)
    repeat = rows.duplicated(key, keep="first")
    versions, repeats = rows[~repeat], rows[repeat]

    existing = keys_present(conn, table, key, versions[key], PROVENANCE)
    compete = pd.concat([existing.assign(_new=False), versions[[key, *PROVENANCE]].assign(_new=True)],
                        ignore_index=True)
    # append-only: the earliest delivery stands; upsert: the latest day; inside one file the first line
    compete = compete.sort_values(["delivery_day", "source_line"], ascending=[source.kind is Kind.APPEND, True],
                                  kind="stable")
    standing = compete.drop_duplicates(key, keep="first").set_index(key)
    new_standing = standing[standing["_new"].astype(bool)]
    new_facts = versions[among(versions[key], new_standing.index)]
    displaced = existing[among(existing[key], new_facts[key])]
    removed = _whole_rows(conn, table, key, displaced) if source.kind is Kind.APPEND else displaced
    for start in range(0, len(displaced), 500):
        conn.execute(delete(table).where(table.c[key].in_(displaced[key].iloc[start:start + 500].tolist())))
    insert_frame(conn, table, new_facts)
    touched.record(conn, source.name, new_facts, removed)
    result.loaded = len(new_facts)

    lost = pd.concat([versions[~among(versions[key], new_standing.index)], displaced], ignore_index=True)
    if source.kind is Kind.UPSERT:
        # a row of the standing row's own day lost to an earlier line of its file (a row admitted late):
        # it is a repeat inside that file, not an older version
        same_day = lost["delivery_day"].to_numpy() == lost[key].map(standing["delivery_day"]).to_numpy()
        repeats = pd.concat([repeats, lost[same_day]], ignore_index=True)
        lost = lost[~same_day]
        # judged against the first line of their key in this file, whatever stands from other days
        repeat_kind = _judge(source, repeats, versions.set_index(key), within_file=True)
    else:
        repeat_kind = _judge(source, repeats, standing, within_file=True)
    lost_kind = _judge(source, lost, standing, within_file=False)
    sightings = pd.concat([_sightings(source, lost, lost_kind, False), _sightings(source, repeats, repeat_kind, True)],
                          ignore_index=True)
    insert_frame(conn, sighting, sightings)
    day = rows["delivery_day"].iloc[0]
    mine = sightings[sightings["delivery_day"] == day]
    result.redelivered = int((mine["kind"] == "redelivery").sum())
    result.conflicts = int((mine["kind"] == "conflict").sum())
    result.superseded = int((mine["kind"] == "superseded").sum())
    conflicts = sightings[sightings["kind"] == "conflict"]
    if not displaced.empty and source.kind is Kind.APPEND:
        # an earlier delivery displaced the standing row: the key's other deliveries are judged again
        _reclassify(conn, source, displaced[key].astype(str).tolist(), standing)
        conflicts = conflicts[~among(conflicts["record_key"], displaced[key].astype(str))]
    if source.kind is Kind.APPEND:
        _record_conflicts(conn, source, conflicts, standing)
    else:  # upsert: only a repeat inside one file can conflict, with that file's first line of the key
        _record_conflicts(conn, source, conflicts, versions.set_index(key))
    return result


def _whole_rows(conn: Connection, table, key: str, rows: pd.DataFrame) -> pd.DataFrame:
    """The standing rows of these keys, every column (what risk.touched.record needs of removed facts)."""
    found = [pd.DataFrame(conn.execute(select(table).where(table.c[key].in_(rows[key].iloc[i:i + 500].tolist())))
                          .mappings().all()) for i in range(0, len(rows), 500)]
    return pd.concat(found, ignore_index=True) if found else rows


def _judge(source: Source, others: pd.DataFrame, reference: pd.DataFrame, within_file: bool) -> list[str]:
    """redelivery (same content as the reference row of its key) or conflict; across days of an upsert
    source an older row is simply superseded (it was loaded, and a later delivery took its place)."""
    if others.empty:
        return []
    if source.kind is Kind.UPSERT and not within_file:
        return ["superseded"] * len(others)
    same = others["row_hash"].to_numpy() == others[source.key].map(reference["row_hash"]).to_numpy()
    return ["redelivery" if s else "conflict" for s in same]


def _sightings(source: Source, rows: pd.DataFrame, kinds: list[str], within_file: bool) -> pd.DataFrame:
    return pd.DataFrame({
        "source": source.name, "delivery_day": rows["delivery_day"], "source_line": rows["source_line"],
        "record_key": rows[source.key].astype(str), "source_file": rows["source_file"],
        "row_hash": rows["row_hash"], "kind": kinds, "within_file": within_file,
    })


def _drop_already_recorded(conn: Connection, source: Source, rows: pd.DataFrame) -> pd.DataFrame:
    """A day loaded again: rows whose (day, line) is already standing or sighted are skipped."""
    table = FACT_TABLES[source.name]
    day = rows["delivery_day"].iloc[0]
    lines = set(conn.execute(select(table.c.source_line).where(table.c.delivery_day == day)).scalars())
    lines |= set(conn.execute(select(sighting.c.source_line).where(
        and_(sighting.c.source == source.name, sighting.c.delivery_day == day))).scalars())
    return rows[~rows["source_line"].isin(lines)] if lines else rows


def _record_conflicts(conn: Connection, source: Source, conflicts: pd.DataFrame, standing: pd.DataFrame) -> None:
    if conflicts.empty:
        return
    recs = []
    shown = mask_id if source.key == "person_id" else str
    for r in conflicts.itertuples(index=False):
        st = standing.loc[r.record_key] if r.record_key in standing.index else None
        where = f"{st['delivery_day']} 第{st['source_line']}行 / line {st['source_line']} of {st['source_file']}" \
            if st is not None else "?"
        recs.append({
            "source": source.name, "delivery_day": r.delivery_day, "file_name": r.source_file,
            "line": int(r.source_line), "record_key": r.record_key, "kind": "conflict", "field": source.key,
            "reason": f"主键{source.key}={shown(r.record_key)}已以不同内容交付（{where}），以该行为准 / "
                      f"{source.key} {shown(r.record_key)} was already delivered with other content ({where}); "
                      "that row stands",
            "raw": None,
        })
    insert_frame(conn, quality_issue, pd.DataFrame(recs))


def _reclassify(conn: Connection, source: Source, keys: list[str], standing: pd.DataFrame) -> None:
    """(Append-only sources) an earlier delivery displaced the standing row: the key's sightings are judged
    again against it, and their conflicts in the quality queue with them."""
    for chunk_start in range(0, len(keys), 500):
        chunk = keys[chunk_start:chunk_start + 500]
        conn.execute(delete(quality_issue).where(and_(
            quality_issue.c.source == source.name, quality_issue.c.kind == "conflict",
            quality_issue.c.record_key.in_(chunk))))
        found = pd.DataFrame(conn.execute(select(sighting).where(and_(
            sighting.c.source == source.name, sighting.c.record_key.in_(chunk)))).mappings().all())
        if found.empty:
            continue
        st = standing.reset_index()
        st[st.columns[0]] = st[st.columns[0]].astype(str)
        st = st.set_index(st.columns[0])
        was = found["kind"].copy()
        found["kind"] = _judge(source, found.rename(columns={"record_key": source.key}), st, within_file=False)
        for r in found[found["kind"] != was].itertuples(index=False):
            conn.execute(update(sighting).where(and_(
                sighting.c.source == r.source, sighting.c.delivery_day == r.delivery_day,
                sighting.c.source_line == r.source_line)).values(kind=r.kind))
        _record_conflicts(conn, source, found[found["kind"] == "conflict"], st)


def record_certifications(conn: Connection, rows: pd.DataFrame) -> int:
    """Keep the last_certified_on of every valid recipients row with its delivery (see `certification`)."""
    if rows.empty:
        return 0
    named = rows[rows["last_certified_on"].notna()]
    certs = pd.DataFrame({"person_id": named["person_id"], "delivery_day": named["delivery_day"],
                          "source_line": named["source_line"], "certified_on": named["last_certified_on"],
                          "source_file": named["source_file"]})
    if certs.empty:
        return 0
    day = certs["delivery_day"].iloc[0]
    known = set(conn.execute(select(certification.c.source_line).where(
        certification.c.delivery_day == day)).scalars())
    if known:  # a day loaded again, or rows readmitted later
        certs = certs[~certs["source_line"].isin(known)]
    inserted = insert_frame(conn, certification, certs)
    touched.record(conn, "certification", certs, certs.iloc[0:0])
    return inserted
