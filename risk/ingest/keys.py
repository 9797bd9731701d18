"""Validated rows into the warehouse, by the contract's keys (§1).

Append-only sources: of all deliveries of a key, the earliest (delivery day, line) stands; a later one with
the same content is an exact re-delivery, with other content a conflict that goes to the quality queue.
Upsert sources: the latest delivery day stands (within one file the first line does; a later line with other
content is a conflict). Every non-standing row is kept in `sighting`, so that loading days in any order, or
twice, ends in the same tables.

Set-based: the keys of a whole file meet the table's in one join (a temporary table of the incoming keys);
only rows whose key is delivered more than once get a content hash, since a hash is only ever compared with
the other deliveries of the same key. A re-delivered or conflicting row is rare, so a night stores its
rows without hashing them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, and_, delete, select, update

from risk.contract import Kind, Source, Type
from risk.db.gateway import delete_keys, insert_frame, insert_new, keys_present
from risk.db.tables import FACT_TABLES, certification, quality_issue, sighting
from risk.detection import touched
from risk.identity.numbers import masked_key

PROVENANCE = ["delivery_day", "source_file", "source_line"]
BEIJING = np.timedelta64(8, "h")  # China keeps UTC+8 all year


def typed_rows(source: Source, checked: pd.DataFrame, day: str, source_file: str) -> pd.DataFrame:
    """Table rows for the accepted rows of `checked` (the validated frame, with `_line`), every value in the
    form the warehouse keeps: text as delivered (trimmed, empty as missing), IDs normalised, dates as
    `YYYY-MM-DD`, months as their first day, money in whole fen, a timestamp as delivered plus its Beijing
    day and hour; then the provenance (delivery day, file, line)."""
    out: dict[str, object] = {}
    for c in source.columns:
        col = checked[c.name]
        if c.type is Type.PERSON_ID:
            out[c.name] = checked[f"{c.name}__norm"]
            if source.name in ("deaths", "incarcerations"):
                out[f"{c.name}_delivered"] = col
        elif c.type is Type.MONTH:
            out[c.name] = col + "-01"
        elif c.type is Type.MONEY:
            out[f"{c.name}_cents"] = (checked[f"{c.name}__yuan"] * 100).round().astype("int64")
        elif c.type is Type.TIMESTAMP:
            out[c.name] = col
            local = checked[f"{c.name}__utc"].dt.tz_localize(None).to_numpy(dtype="datetime64[s]") + BEIJING
            out["occurred_on"] = pd.Series(local.astype("datetime64[D]").astype("U10"), index=col.index, dtype="str")
            out["occurred_hour"] = pd.Series((local.astype(np.int64) // 3600) % 24, index=col.index, dtype="int64")
        else:
            out[c.name] = col
    frame = pd.DataFrame(out, index=checked.index)
    frame["delivery_day"] = day
    frame["source_file"] = source_file
    frame["source_line"] = checked["_line"].astype("int64")
    return frame.reset_index(drop=True)


DERIVED = frozenset({"occurred_on", "occurred_hour"})  # computed from a delivered value: not content


def content_columns(source: Source) -> list[str]:
    """The columns whose values make a row's content (what a re-delivery must repeat exactly)."""
    names: list[str] = []
    for c in source.columns:
        if c.type is Type.MONEY:
            names.append(f"{c.name}_cents")
        else:
            names.append(c.name)
            if c.type is Type.PERSON_ID and source.name in ("deaths", "incarcerations"):
                names.append(f"{c.name}_delivered")
    return names


def content_hash(source: Source, rows: pd.DataFrame) -> pd.Series:
    """A 64-bit hash of each row's content (16 hex digits): the typed values as text, joined by U+001F.
    The same values give the same hash whether they come from a delivered file or back from either database
    (dates as `YYYY-MM-DD`, fen as whole numbers, missing as empty); 64 bits suffice, since a hash is only
    compared with the other deliveries of the same key."""
    if rows.empty:
        return pd.Series([], index=rows.index, dtype="str")
    texts = [pa.array(_canonical_text(rows[n]), type=pa.large_string()) for n in content_columns(source)]
    joined = pc.binary_join_element_wise(*texts, pa.scalar("\x1f", pa.large_string()))
    hashes = pd.util.hash_pandas_object(pd.Series(joined.to_pylist(), dtype="str"), index=False).to_numpy()
    return pd.Series([f"{h:016x}" for h in hashes], index=rows.index, dtype="str")


def _canonical_text(values: pd.Series) -> list[str]:
    if pd.api.types.is_float_dtype(values.dtype):  # fen that met a missing value on the way (concat)
        values = values.astype("Int64")
    return values.astype("str").fillna("").tolist()


def among(values: pd.Series, pool) -> pd.Series:
    """`values.isin(pool)` by Arrow's hash kernel: pandas' isin on Arrow-backed text loops in Python."""
    members = pa.array(pd.Series(list(pool) if isinstance(pool, set | frozenset) else pool, dtype="str"),
                       from_pandas=True)
    found = pc.is_in(pa.array(values.astype("str"), from_pandas=True), value_set=members)
    return pd.Series(found.to_numpy(zero_copy_only=False), index=values.index)


@dataclass
class Stored:
    loaded: int = 0
    redelivered: int = 0
    conflicts: int = 0
    superseded: int = 0


TOUCH_COLUMNS = ("person_id", "bank_account", "period", "event_type")  # what `touched.record` reads


def store(conn: Connection, source: Source, rows: pd.DataFrame, seen_before: bool = True) -> Stored:
    """Bring the rows of one delivered file into the warehouse; return what became of them.

    `seen_before` False promises that no row of this file is in the warehouse yet (the file was never
    loaded), which spares a search of the whole fact table for rows of its day."""
    table = FACT_TABLES[source.name]
    key = source.key
    append = source.kind is Kind.APPEND
    result = Stored()
    rows = _drop_already_recorded(conn, source, rows) if seen_before and not rows.empty else rows
    if rows.empty:
        return result
    if not rows["source_line"].is_monotonic_increasing:
        rows = rows.sort_values("source_line", kind="stable")
    rows = rows.reset_index(drop=True)
    repeat = rows.duplicated(key, keep="first")
    versions, repeats = (rows[~repeat], rows[repeat]) if repeat.any() else (rows, rows.iloc[0:0])

    touch = [c for c in TOUCH_COLUMNS if c in table.c and c != key]
    if append:
        # nearly every key of a fact file is new: the rows go in at once, the table's key turns away those
        # it holds already, and only these are then looked up and decided
        went_in = insert_new(conn, table, key, versions)
        existing = keys_present(conn, table, key, versions.loc[~went_in, key], [*PROVENANCE, *touch])
    else:
        went_in = pd.Series(False, index=versions.index)
        existing = keys_present(conn, table, key, versions[key], [*PROVENANCE, *touch])
    # a key delivered once and never before simply stands; the others (contested) are decided by comparing
    # every delivery of the key: append-only, the earliest stands; upsert, the latest day; in a file the first
    # line. `standing` holds the contested keys only, which is all that is ever looked up in it.
    contested = among(versions[key], set(existing[key]) | set(repeats[key]))
    compete = pd.concat([existing[[key, *PROVENANCE]].assign(_new=False),
                         versions.loc[contested, [key, *PROVENANCE]].assign(_new=True)], ignore_index=True)
    compete = compete.sort_values(["delivery_day", "source_line"], ascending=[append, True], kind="stable")
    standing = compete.drop_duplicates(key, keep="first").set_index(key)
    is_new_fact = ~contested | among(versions[key], standing.index[standing["_new"].astype(bool)])
    new_facts = versions if is_new_fact.all() else versions[is_new_fact]
    displaced = existing[among(existing[key], new_facts[key])]
    # a displaced row that will be judged by its content (any, for append-only sources; for upsert sources
    # one of the standing row's own day) is read whole before it goes
    judged = displaced if append else \
        displaced[displaced["delivery_day"].to_numpy() == displaced[key].map(standing["delivery_day"]).to_numpy()]
    if not judged.empty:
        displaced = pd.concat([displaced.drop(index=judged.index), _with_content(conn, source, judged)],
                              ignore_index=True)
    delete_keys(conn, table, key, displaced[key])
    insert_frame(conn, table, new_facts if not went_in.any() else versions[is_new_fact & ~went_in])
    touched.record(conn, source.name, new_facts, displaced)
    result.loaded = len(new_facts)

    lost = pd.concat([versions[~is_new_fact], displaced], ignore_index=True)
    firsts = versions.iloc[0:0].set_index(key)  # upsert: the first line of each repeated key in the file
    if not append:
        # a row of the standing row's own day lost to an earlier line of its file (a row admitted late):
        # it is a repeat inside that file, not an older version
        same_day = lost["delivery_day"].to_numpy() == lost[key].map(standing["delivery_day"]).to_numpy()
        repeats = pd.concat([repeats, lost[same_day]], ignore_index=True)
        lost = lost[~same_day]
        # judged against the first line of their key in this file, whatever stands from other days; an older
        # version from another day is simply superseded and needs no comparison
        if not repeats.empty:
            repeats = repeats.assign(row_hash=content_hash(source, repeats))
            mine = versions[among(versions[key], set(repeats[key]))]
            firsts = mine.assign(row_hash=content_hash(source, mine)).set_index(key)
        repeat_kind = _judge(source, repeats, firsts, within_file=True)
    elif not lost.empty or not repeats.empty:
        # every row that meets another delivery of its key is compared with the standing row of that key
        lost = lost.assign(row_hash=content_hash(source, lost))
        repeats = repeats.assign(row_hash=content_hash(source, repeats))
        met = set(lost[key]) | set(repeats[key])
        standing = standing.join(_standing_hashes(conn, source, standing[standing.index.isin(met)], versions))
        repeat_kind = _judge(source, repeats, standing, within_file=True)
    else:
        repeat_kind = []
    lost_kind = _judge(source, lost, standing, within_file=False)
    sightings = pd.concat([_sightings(source, lost, lost_kind, False), _sightings(source, repeats, repeat_kind, True)],
                          ignore_index=True)
    insert_frame(conn, sighting, sightings)
    day = rows["delivery_day"].iloc[0]
    mine_today = sightings[sightings["delivery_day"] == day]
    result.redelivered = int((mine_today["kind"] == "redelivery").sum())
    result.conflicts = int((mine_today["kind"] == "conflict").sum())
    result.superseded = int((mine_today["kind"] == "superseded").sum())
    conflicts = sightings[sightings["kind"] == "conflict"]
    if append and not displaced.empty:
        # an earlier delivery displaced the standing row: the key's other deliveries are judged again
        _reclassify(conn, source, displaced[key].astype(str).tolist(), standing)
        conflicts = conflicts[~among(conflicts["record_key"], displaced[key].astype(str))]
    # upsert: only a repeat inside one file can conflict, with that file's first line of the key
    _record_conflicts(conn, source, conflicts, standing if append else firsts)
    return result


def _with_content(conn: Connection, source: Source, stored: pd.DataFrame) -> pd.DataFrame:
    """Rows read back with their key and provenance, completed with their content from the table."""
    key = source.key
    content = [c for c in content_columns(source) if c != key and c not in stored.columns]
    found = keys_present(conn, FACT_TABLES[source.name], key, stored[key], content)
    return stored.merge(found, on=key, how="left")


def _standing_hashes(conn: Connection, source: Source, standing: pd.DataFrame, versions: pd.DataFrame) -> pd.Series:
    """The content hash of each standing row given (indexed by key): from the file when the row is new, else
    read back from the table (one join)."""
    key = source.key
    new = standing[standing["_new"].astype(bool)]
    old = standing[~standing["_new"].astype(bool)]
    parts = [pd.Series([], dtype="str")]
    if not new.empty:
        rows = versions[among(versions[key], new.index)]
        parts.append(pd.Series(content_hash(source, rows).to_numpy(), index=rows[key].to_numpy()))
    if not old.empty:
        found = _with_content(conn, source, pd.DataFrame({key: old.index}))
        parts.append(pd.Series(content_hash(source, found).to_numpy(), index=found[key].to_numpy()))
    return pd.concat(parts).rename("row_hash")


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
        "row_hash": rows["row_hash"] if "row_hash" in rows else pd.Series(dtype="str"), "kind": kinds,
        "within_file": within_file,
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
    for r in conflicts.itertuples(index=False):
        st = standing.loc[r.record_key] if r.record_key in standing.index else None
        where = f"{st['delivery_day']} 第{st['source_line']}行 / line {st['source_line']} of {st['source_file']}" \
            if st is not None else "?"
        recs.append({
            "source": source.name, "delivery_day": r.delivery_day, "file_name": r.source_file,
            "line": int(r.source_line), "record_key": r.record_key, "kind": "conflict", "field": source.key,
            "reason": f"主键{source.key}={masked_key(source, r.record_key)}已以不同内容交付（{where}），以该行为准 / "
                      f"{source.key} {masked_key(source, r.record_key)} was already delivered with other content ({where}); "
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
