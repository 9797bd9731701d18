"""Which people a detection of one rule looks at: the whole city; one part (the recipients of one or more
counties, and/or the people who are not recipients); or, once a detection has run, only the people whose
alerts the facts loaded since can change.

The loader records what it wrote (risk.detection.touched). Once a night, for the whole city, `translate` turns those
touches into people per rule (sql/touched/<rule>.sql says whom the night's new and removed facts can concern;
an alert also names the person's village, so a recipients row that moves a person with alerts touches them
too) and keeps them in `touched_person`. A part then decides the alerts of its own touched people.

The rules read facts only: no rule compares a fact with today's date (a period is judged against a death
date, a custody window, a birthday in the ID, the certifications before its last day), so the passing of
time alone changes no rule's result, and a night with no new or removed facts changes no alert.

A rule's SQL runs unchanged on a scope: temporary views named like the fact tables shadow them (SQLite and
PostgreSQL both look in the session's temporary schema first) and show only the scope's people
(`scope_person`); for shared_account, which compares people with each other, every payment into the
accounts those people were paid into (`scope_account`), and only the scope's people's alerts are kept.
Temporary tables and views are dropped afterwards; on an error the transaction's rollback drops them.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Connection, delete, func, insert, or_, select, text
from sqlalchemy.sql.elements import ColumnElement

from risk import domain
from risk.db.dialect import Dialect
from risk.db.tables import alert, detection_mark, recipient
from risk.detection import touched
from risk.detection.registry import Rule
from risk.domain import Level

NO_COUNTY = "-"  # the part of people who are not recipients
TRANSLATED = "*"  # detection_mark's (part, rule) for how far touched_person is complete
PERSON_FACTS = ("payment", "card_event", "death", "incarceration", "certification")  # tables keyed by person

# the night's facts, found again by the provenance of the files recorded in `touch`: (table, source, columns)
NEW_FACTS = (
    ("payment", "payments", "person_id, payment_id, benefit_type, period, bank_account"),
    ("card_event", "card_events", "person_id, event_type, occurred_on"),
    ("death", "deaths", "person_id"),
    ("incarceration", "incarcerations", "person_id"),
    ("certification", "certification", "person_id, delivery_day, source_line, certified_on"),
    ("recipient", "recipients", "person_id, village_code"),
)
NIGHT_TABLES = {  # temporary: the night's facts while they are translated into people
    "removed": "source VARCHAR NOT NULL, person_id VARCHAR NOT NULL, bank_account VARCHAR, period DATE",
    "new_payment": "person_id VARCHAR, payment_id VARCHAR, benefit_type VARCHAR, period DATE, bank_account VARCHAR",
    "new_card_event": "person_id VARCHAR, event_type VARCHAR, occurred_on DATE",
    "new_death": "person_id VARCHAR",
    "new_incarceration": "person_id VARCHAR",
    "new_certification": "person_id VARCHAR, delivery_day VARCHAR, source_line INTEGER, certified_on DATE",
    "new_recipient": "person_id VARCHAR, village_code VARCHAR",
}
SCOPE_TABLES = {  # temporary: the people (and accounts) one rule's run looks at
    "scope_person": "person_id VARCHAR PRIMARY KEY",
    "scope_account": "bank_account VARCHAR PRIMARY KEY",
}

# an alert names the person's village: a recipients row that moves the person (or makes them a recipient)
# changes every alert of theirs that names another
MOVED = """SELECT a.person_id FROM alert a JOIN new_recipient r ON r.person_id = a.person_id
WHERE a.rule = :rule AND (a.village_code IS NULL OR a.village_code <> r.village_code)"""


Part = tuple[str, ...]  # one or more counties (6-digit codes), and/or NO_COUNTY: what one detection decides
Params = tuple[tuple[str, str | int], ...]


def check_part(part: Sequence[str]) -> Part:
    """A part as detection and scoring take it: its counties (and NO_COUNTY), each once, in order."""
    if isinstance(part, str):
        raise TypeError(f"a part is a list of counties, not {part!r}")
    found = tuple(sorted(set(part)))
    if not found:
        raise ValueError("an empty part")
    for county in found:
        if not (county == NO_COUNTY or (county.isdigit() and len(county) == domain.DIGITS[Level.COUNTY])):
            raise ValueError(f"not a county part: {county!r}")
    return found


def parts(conn: Connection) -> list[str]:
    """The counties of the recipients, and NO_COUNTY: the smallest parts detection and scoring can be split
    into (`groups` puts them together)."""
    counties = conn.execute(select(domain.prefix_sql(recipient.c.village_code, Level.COUNTY)).distinct()).scalars()
    return sorted(c for c in counties if c) + [NO_COUNTY]


def groups(conn: Connection, n: int) -> list[Part]:
    """The parts put into at most `n` groups of about as many recipients each: the largest county first, each
    into the group that holds the fewest so far; NO_COUNTY (few people: the dead who drew nothing) last.
    A worker that takes a group scores its counties with one model load and decides them in one query per
    rule. Groups are in order of their first county; the same recipients give the same groups."""
    if n < 1:
        raise ValueError(f"at least one group, not {n}")
    county = domain.prefix_sql(recipient.c.village_code, Level.COUNTY)
    sizes = {c: int(k) for c, k in conn.execute(select(county, func.count()).group_by(county)) if c}
    found: list[list[str]] = [[] for _ in range(min(n, len(sizes) + 1))]
    held = [0] * len(found)
    for c in sorted(sizes, key=lambda c: (-sizes[c], c)) + [NO_COUNTY]:
        lightest = min(range(len(found)), key=lambda i: (held[i], len(found[i]), i))
        found[lightest].append(c)
        held[lightest] += sizes.get(c, 0)
    return sorted(check_part(g) for g in found if g)


def part_of_alert(part: Sequence[str]) -> ColumnElement[bool]:
    """The condition 'the alert's person is in this part'."""
    member = select(recipient.c.person_id).where(recipient.c.person_id == alert.c.person_id)
    found = check_part(part)
    villages = [recipient.c.village_code.between(*domain.first_and_last(c)) for c in found if c != NO_COUNTY]
    conditions: list[ColumnElement[bool]] = [member.where(or_(*villages)).exists()] if villages else []
    if NO_COUNTY in found:
        conditions.append(~member.exists())
    return or_(*conditions)


def _ranges(part: Part, column: str) -> tuple[str, Params]:
    """SQL 'column is a village of one of the part's counties', and its parameters."""
    counties = [c for c in part if c != NO_COUNTY]
    sql = " OR ".join(f"{column} BETWEEN :first{i} AND :last{i}" for i in range(len(counties)))
    params: Params = tuple(p for i, c in enumerate(counties)
                           for p in zip((f"first{i}", f"last{i}"), domain.first_and_last(c), strict=True))
    return f"({sql})", params


def _part_condition(part: Sequence[str], person: str) -> tuple[str, Params]:
    """SQL on the column `person`: in the part (a recipient of one of its counties, or, with NO_COUNTY, not
    a recipient), and its parameters. Looks each person up in the recipients: the people it is asked about
    are few."""
    found = check_part(part)
    conditions: list[str] = []
    params: Params = ()
    if found != (NO_COUNTY,):
        ranges, params = _ranges(found, "r.village_code")
        conditions.append(f"EXISTS (SELECT 1 FROM recipient r WHERE r.person_id = {person} AND {ranges})")
    if NO_COUNTY in found:
        conditions.append(f"NOT EXISTS (SELECT 1 FROM recipient r WHERE r.person_id = {person})")
    return "(" + " OR ".join(conditions) + ")", params


# ---------------------------------------------------------------- marks


@dataclass
class Marks:
    """What the detections so far have seen: per (part, rule) its version and touch, and how far
    touched_person is complete."""
    seen: dict[tuple[str, str], tuple[int, int]]
    translated: int

    @classmethod
    def read(cls, conn: Connection) -> Marks:
        seen, translated = {}, 0
        for m in conn.execute(select(detection_mark)):
            if m.part == TRANSLATED:
                translated = m.touch_seq
            else:
                seen[(m.part, m.rule)] = (m.rule_version, m.touch_seq)
        return cls(seen, translated)

    def of(self, part: str, rule: Rule) -> int | None:
        """The touch a part's alerts of this rule reflect; None when it never ran there in this version."""
        found = self.seen.get((part, rule.code))
        return found[1] if found is not None and found[0] == rule.version else None

    def never_detected(self, rules: tuple[Rule, ...], current: list[str] | None = None) -> list[Rule]:
        """Rules that no current part (None: no part at all) has run in their version: the next detection
        runs them city-wide."""
        known = current if current is not None else {part for part, _ in self.seen}
        return [r for r in rules if all(self.of(p, r) is None for p in known)]


def mark(conn: Connection, covered: list[str], rules: tuple[Rule, ...] | list[Rule], upto: int) -> None:
    """The parts' alerts of these rules now reflect every touch up to `upto`."""
    if not rules:
        return
    conn.execute(delete(detection_mark).where(
        detection_mark.c.part.in_(covered) & detection_mark.c.rule.in_([r.code for r in rules])))
    conn.execute(insert(detection_mark), [
        {"part": p, "rule": r.code, "rule_version": r.version, "touch_seq": upto} for p in covered for r in rules])


def _mark_translated(conn: Connection, upto: int) -> None:
    conn.execute(delete(detection_mark).where(detection_mark.c.part == TRANSLATED))
    conn.execute(insert(detection_mark).values(part=TRANSLATED, rule=TRANSLATED, rule_version=0, touch_seq=upto))


# ---------------------------------------------------------------- the night's touches, turned into people


def untranslated(conn: Connection) -> bool:
    return touched.latest(conn) > Marks.read(conn).translated


def translate(conn: Connection, rules: tuple[Rule, ...]) -> int:
    """Turn the touches not translated yet into touched_person rows (touch_seq: the newest touch), for the
    rules that some part has already run (the others will run whole); returns how many rows."""
    if not untranslated(conn):
        return 0
    dialect = Dialect.of(conn)
    dialect.one_at_a_time(conn, "detection")  # parts of a night may run at once
    marks, latest = Marks.read(conn), touched.latest(conn)
    if latest <= marks.translated:
        return 0
    current = parts(conn)
    running = [r for r in rules if any(marks.of(p, r) is not None for p in current)]
    seen = [s for r in running for p in current if (s := marks.of(p, r)) is not None]
    since = max(marks.translated, min(seen, default=latest))
    added = 0
    if running and since < latest:
        _create(conn, NIGHT_TABLES)
        window = {"since": since, "upto": latest}
        for table, source, columns in NEW_FACTS:
            picked = ", ".join(f"f.{c.strip()}" for c in columns.split(","))
            conn.execute(text(
                f"INSERT INTO new_{table} ({columns}) SELECT {picked} "
                f"FROM (SELECT DISTINCT delivery_day, source_file FROM touch WHERE source = :source "
                f"AND seq > :since AND seq <= :upto AND delivery_day IS NOT NULL) t "
                f"JOIN {table} f ON f.delivery_day = t.delivery_day AND f.source_file = t.source_file"),
                {**window, "source": source})
        conn.execute(text(
            "INSERT INTO removed (source, person_id, bank_account, period) "
            "SELECT DISTINCT source, person_id, bank_account, period FROM touch "
            "WHERE person_id IS NOT NULL AND seq > :since AND seq <= :upto"), window)
        for table in NIGHT_TABLES:
            dialect.count_rows(conn, table)
        for rule in running:
            added += conn.execute(text(
                f"INSERT INTO touched_person (touch_seq, rule, person_id) SELECT DISTINCT :upto, :rule, person_id "
                f"FROM ({rule.touched_sql(dialect).strip().rstrip(';')}\nUNION\n{MOVED}) c"),
                {"rule": rule.code, "upto": latest}).rowcount or 0
        _drop(conn, NIGHT_TABLES)
    _mark_translated(conn, latest)
    return added


# ---------------------------------------------------------------- one detection's scopes


@dataclass(frozen=True)
class Scope:
    """The people one rule's detection looks at. `whole_city`: everyone, no views. Otherwise `people` is a
    SELECT of person_id, binding `params`."""
    whole_city: bool
    people: str = ""
    params: Params = ()
    touched_only: bool = False  # the people the facts loaded since its last detection can concern


CITY = Scope(whole_city=True)


@dataclass
class Night:
    """One detection's plan: the part it decides (None: the whole city) and the counties that covers, up to
    which touch, and per rule whether it runs on the people touched since (from which touch on) or whole."""
    part: Part | None
    parts: list[str]
    upto: int
    since: dict[str, int | None] = field(default_factory=dict)  # rule code -> seen up to; None: run whole

    @classmethod
    def plan(cls, conn: Connection, rules: tuple[Rule, ...], part: Sequence[str] | None) -> Night:
        marks = Marks.read(conn)
        found = None if part is None else check_part(part)
        covered = parts(conn) if found is None else list(found)
        night = cls(part=found, parts=covered, upto=marks.translated)
        for rule in rules:
            seen = [marks.of(p, rule) for p in covered]
            night.since[rule.code] = None if None in seen else min(s for s in seen if s is not None)
        return night

    def scope_of(self, rule: Rule) -> Scope:
        part, since = self.part, self.since[rule.code]
        if since is not None:
            people = "SELECT t.person_id FROM touched_person t WHERE t.rule = :rule AND t.touch_seq > :since"
            params: Params = (("rule", rule.code), ("since", since))
            if part is not None:
                condition, more = _part_condition(part, "t.person_id")
                people, params = f"{people} AND {condition}", params + more
            return Scope(False, people, params, touched_only=True)
        if part is None:
            return CITY
        selects, params = [], ()
        if part != (NO_COUNTY,):
            ranges, params = _ranges(part, "village_code")
            selects.append(f"SELECT person_id FROM recipient WHERE {ranges}")
        if NO_COUNTY in part:  # every flagged fact is a payment or comes with a death record
            anyone = " UNION ".join(f"SELECT person_id FROM {t}" for t in ("payment", "death", "incarceration", "alert"))
            condition, _ = _part_condition((NO_COUNTY,), "p.person_id")
            selects.append(f"SELECT p.person_id FROM ({anyone}) p WHERE {condition}")
        return Scope(False, " UNION ALL ".join(selects), params)

    def begin(self, conn: Connection) -> None:
        _create(conn, SCOPE_TABLES)
        conn.info.pop("scope_person", None)  # what scope_person holds, per connection (see _fill)

    def end(self, conn: Connection) -> None:
        conn.info.pop("scope_person", None)
        _drop(conn, SCOPE_TABLES)


def _create(conn: Connection, tables: dict[str, str]) -> None:
    dialect = Dialect.of(conn)
    for name, columns in tables.items():
        conn.exec_driver_sql(dialect.create_temp_table(name, columns))


def _drop(conn: Connection, tables: dict[str, str]) -> None:
    dialect = Dialect.of(conn)
    for name in tables:
        conn.exec_driver_sql(dialect.drop_temp_table(name))


def _fill(conn: Connection, scope: Scope) -> int:
    """Fill scope_person with the scope's people, unless it holds them already (a part's rules share one)."""
    held = conn.info.get("scope_person")
    if held is not None and held[0] == scope:
        return held[1]
    conn.execute(text("DELETE FROM scope_person"))
    conn.execute(text(f"INSERT INTO scope_person (person_id) SELECT DISTINCT person_id FROM ({scope.people}) s"),
                 dict(scope.params))
    people = int(conn.execute(text("SELECT COUNT(*) FROM scope_person")).scalar() or 0)
    Dialect.of(conn).count_rows(conn, "scope_person")
    conn.info["scope_person"] = (scope, people)
    return people


@contextmanager
def shadowed(conn: Connection, rule: Rule, scope: Scope) -> Iterator[int]:
    """For the statements run inside: the fact tables show the scope's people only (for shared_account: the
    payments into the accounts they were paid into). Yields how many people the scope holds (-1: all)."""
    if scope.whole_city:
        yield -1
        return
    people = _fill(conn, scope)
    if people == 0:
        yield 0
        return
    dialect = Dialect.of(conn)
    views: list[str] = []
    if rule.per_person:
        for table in PERSON_FACTS:
            conn.exec_driver_sql(f"CREATE TEMP VIEW {table} AS "
                                 f"{dialect.rows_with_keys(conn, table, 'person_id', 'scope_person')}")
            views.append(table)
    else:
        conn.execute(text("DELETE FROM scope_account"))
        paid = dialect.rows_with_keys(conn, "payment", "person_id", "scope_person")
        conn.exec_driver_sql(f"INSERT INTO scope_account (bank_account) SELECT DISTINCT bank_account FROM ({paid}) p")
        dialect.count_rows(conn, "scope_account")
        conn.exec_driver_sql(f"CREATE TEMP VIEW payment AS "
                             f"{dialect.rows_with_keys(conn, 'payment', 'bank_account', 'scope_account')}")
        views.append("payment")
    yield people
    for view in views:
        conn.exec_driver_sql(dialect.drop_temp_view(view))


def in_scope(scope: Scope) -> ColumnElement[bool] | None:
    """The condition on alert.person_id for the alerts a scoped run decides (None: every alert)."""
    if scope.whole_city:
        return None
    return alert.c.person_id.in_(select(text("person_id")).select_from(text("scope_person")))


def bind(scope: Scope, sql: str):
    """The rule's evidence query for a scope: a scoped run keeps the scope's people's rows only."""
    if scope.whole_city:
        return text(sql)
    return text(f"SELECT e.* FROM ({sql}\n) e WHERE e.person_id IN (SELECT person_id FROM scope_person)")
