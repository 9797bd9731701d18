"""The dialect layer (risk.db.dialect): the one place that knows how SQLite and PostgreSQL differ. No module
outside risk/db/ tests which database it is on; and the pieces of the dialect that the rules, loading and
detection tests do not already cover, on both databases."""
from __future__ import annotations

import io
import json
import threading
import time
import tokenize
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, literal, select, text, union_all
from sqlalchemy.types import String

from risk.db import gateway, sql_access
from risk.db.dialect import POSTGRES, SQLITE, Dialect
from risk.db.tables import payment
from risk.detection.registry import RULES
from risk.detection.scope import Night, check_part
from risk.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
NAMES = {"sqlite", "postgresql", "postgres"}
# (file, why) where a database's name may appear outside risk/db/: none of them branches on the warehouse
ALLOWED: dict[str, str] = {}  # none (testbed/, which reads Airflow's own metadata URL, is not the product)


def _branches_on_the_database(source: str, where: str) -> list[str]:
    """Lines that test a database's name: `.dialect.name`, `get_backend_name()`, is_postgres/is_sqlite, or
    a string that is exactly a database's name (compared, or a prefix tested with startswith)."""
    found = []
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for i, tok in enumerate(tokens):
        words = [t.string for t in tokens[i:i + 3]]
        if (tok.type == tokenize.NAME and (words == ["dialect", ".", "name"]
                                           or tok.string in ("get_backend_name", "is_postgres", "is_sqlite"))) \
                or (tok.type == tokenize.STRING and tok.string.strip("'\"").lower() in NAMES):
            found.append(f"{where}:{tok.start[0]}: {tok.line.strip()}")
    return found


def test_no_module_outside_risk_db_branches_on_the_database() -> None:
    sources = [p.relative_to(ROOT).as_posix() for folder in ("risk", "dags") for p in sorted((ROOT / folder).rglob("*.py"))]
    checked = [p for p in sources if not p.startswith("risk/db/") and p not in ALLOWED]
    assert len(checked) > 50
    offending = [line for p in checked for line in _branches_on_the_database((ROOT / p).read_text(encoding="utf-8"), p)]
    assert offending == [], "ask risk.db.dialect.Dialect instead:\n" + "\n".join(offending)


def test_the_check_finds_what_it_looks_for() -> None:
    probe = ('if conn.dialect.name == "postgresql" or url.startswith(\'sqlite\') or is_postgres(conn):\n'
             '    u.get_backend_name()\n'
             'x = "sqlite:///a.db"  # a URL is no test; nor "sqlite" in a comment\n')
    found = _branches_on_the_database(probe, "probe")
    assert [line.split(":")[1] for line in found] == ["1", "1", "1", "1", "2"]


def test_allowed_files_still_exist() -> None:
    for name in ALLOWED:
        assert (ROOT / name).is_file(), name


# ---------------------------------------------------------------- which dialect


def test_a_dialect_per_database_found_by_connection_or_url(db_url: str) -> None:
    want = SQLITE if db_url.startswith("sqlite") else POSTGRES
    assert Dialect.for_url(db_url) is want
    engine = gateway.engine_for(db_url)
    assert Dialect.of(engine) is want
    with engine.connect() as conn:
        assert Dialect.of(conn) is want
    assert want.has_roles is (want is POSTGRES) and want.alters_in_batches is (want is SQLITE)


def test_another_database_is_refused_plainly() -> None:
    with pytest.raises(ConfigError, match="SQLite or PostgreSQL"):
        Dialect.for_url("mysql://someone@localhost/risk")
    with pytest.raises(ConfigError):
        Dialect.of(_Named("oracle"))  # type: ignore[arg-type]


class _Named:
    def __init__(self, name: str) -> None:
        self.dialect = type("D", (), {"name": name})()


# ---------------------------------------------------------------- rule macros: the same values on both


def _macro_values(url: str) -> dict[str, list]:
    """Every date macro of the rules over a few hard dates (month ends, leap days), as text."""
    days = ["2024-01-31", "2024-02-29", "2025-02-28", "2024-12-31", "2025-03-01", "2023-02-28"]
    dialect = Dialect.for_url(url)
    m = dialect.rule_macros
    d = "d" if dialect is SQLITE else "CAST(d AS DATE)"
    later = "l" if dialect is SQLITE else "CAST(l AS DATE)"
    exprs = {name: m[name](d) for name in ("month_start", "next_month", "month_end", "date_text", "month_text")}
    exprs["over_a_year_after"] = f"CASE WHEN {m['over_a_year_after'](later, d)} THEN 1 ELSE 0 END"
    pairs = [(x, y) for x in days for y in ("2025-02-28", "2025-03-01", "2026-01-31", "2025-01-31")]
    rows = union_all(*(select(literal(x, String).label("d"), literal(y, String).label("l")) for x, y in pairs))
    out: dict[str, list] = {}
    with gateway.transaction(url) as conn:
        for name, expr in exprs.items():
            got = conn.execute(select(text(f"{expr} AS x")).select_from(rows.subquery("v"))).scalars()
            out[name] = [str(x) for x in got]
    return out


@pytest.mark.postgres
def test_the_rule_macros_give_the_same_dates_on_both(tmp_path: Path) -> None:
    from warehouses import warehouse

    with warehouse("postgres", tmp_path) as pg:
        assert _macro_values(f"sqlite:///{tmp_path / 'm.db'}") == _macro_values(pg)


def test_every_rule_renders_for_each_dialect_with_no_macro_left() -> None:
    for dialect in (SQLITE, POSTGRES):
        for rule in RULES:
            for sql in (rule.sql(dialect), rule.touched_sql(dialect)):
                assert "{{" not in sql and "{%" not in sql
    assert RULES[0].sql(SQLITE) != RULES[0].sql(POSTGRES)


# ---------------------------------------------------------------- temporary tables, keyed reads, planner hints


def test_temporary_tables_shadow_and_read_only_the_keys_rows(db_url: str) -> None:
    gateway.migrate(db_url)
    rows = pd.DataFrame({
        "payment_id": [f"P{i}" for i in range(6)], "person_id": [f"43110219600115013{i % 3}" for i in range(6)],
        "benefit_type": "resident_pension", "period": "2025-03-01", "amount_cents": 100, "paid_on": "2025-03-10",
        "bank_account": "6217000000000001", "delivery_day": "2025-03-10", "source_file": "2025-03-10/payments.csv",
        "source_line": list(range(2, 8))})
    with gateway.transaction(db_url) as conn:
        dialect = Dialect.of(conn)
        gateway.insert_frame(conn, payment, rows)
        conn.exec_driver_sql(dialect.create_temp_table("keys_probe", "person_id VARCHAR PRIMARY KEY"))
        conn.exec_driver_sql("INSERT INTO keys_probe (person_id) VALUES ('431102196001150131')")
        dialect.count_rows(conn, "keys_probe")
        dialect.prefer_index_reads(conn)
        keyed = dialect.rows_with_keys(conn, "payment", "person_id", "keys_probe")
        conn.exec_driver_sql(f"CREATE TEMP VIEW payment AS {keyed}")
        shadowed = conn.execute(text("SELECT payment_id FROM payment ORDER BY payment_id")).scalars().all()
        conn.exec_driver_sql(dialect.drop_temp_view("payment"))
        conn.exec_driver_sql(dialect.drop_temp_table("keys_probe"))
        conn.exec_driver_sql(dialect.drop_temp_table("keys_probe"))  # IF EXISTS
        whole = conn.execute(text("SELECT count(*) FROM payment")).scalar()
    assert shadowed == ["P1", "P4"] and whole == 6


def test_text_orders_by_code_point_as_python_does(db_url: str) -> None:
    words = ["b", "B", "a", "Z", "é", "e", "_", "10", "9"]
    rows = union_all(*(select(literal(w, String).label("w")) for w in words)).subquery("v")
    with gateway.transaction(db_url) as conn:
        got = conn.execute(select(rows.c.w).order_by(gateway.in_code_point_order(conn, rows.c.w))).scalars().all()
    assert got == sorted(words)


def test_statistics_are_refreshed_on_postgresql_only_when_a_load_changed_enough(db_url: str) -> None:
    gateway.migrate(db_url)
    rows = pd.DataFrame({
        "payment_id": [f"P{i:05d}" for i in range(1000)], "person_id": "431102196001150139",
        "benefit_type": "resident_pension", "period": "2025-03-01", "amount_cents": 100, "paid_on": "2025-03-10",
        "bank_account": "6217000000000001", "delivery_day": "2025-03-10", "source_file": "2025-03-10/payments.csv",
        "source_line": list(range(2, 1002))})
    with gateway.transaction(db_url) as conn:
        gateway.insert_frame(conn, payment, rows)
    first = gateway.refresh_statistics(db_url, {"payment": 1000})
    again = gateway.refresh_statistics(db_url, {"payment": 10})  # under a tenth: autovacuum would wait too
    if Dialect.for_url(db_url) is SQLITE:
        assert first == again == []
    else:
        assert first == ["payment"] and again == []
        with gateway.transaction(db_url) as conn:
            assert gateway.estimated_rows(conn, payment) == 1000


def test_the_server_process_is_known_on_postgresql_only(db_url: str) -> None:
    with gateway.transaction(db_url) as conn:
        pid = Dialect.of(conn).server_pid(conn)
    assert (pid is None) if db_url.startswith("sqlite") else (isinstance(pid, int) and pid > 0)


# ---------------------------------------------------------------- locks


@pytest.mark.postgres
def test_one_at_a_time_keeps_a_second_transaction_waiting_on_postgresql(tmp_path: Path) -> None:
    from warehouses import warehouse

    with warehouse("postgres", tmp_path) as url:
        engine = gateway.engine_for(url)
        entered: list[float] = []

        def second() -> None:
            with engine.begin() as conn:
                POSTGRES.one_at_a_time(conn, "probe")
                entered.append(time.monotonic())

        with engine.begin() as conn:
            POSTGRES.one_at_a_time(conn, "probe")
            other = threading.Thread(target=second)
            other.start()
            time.sleep(0.5)
            assert entered == []
            released = time.monotonic()
        other.join(10)
        assert entered and entered[0] >= released


def test_the_run_lock_names_its_holder_to_whoever_finds_it_busy(db_url: str) -> None:
    engine = gateway.engine_for(db_url)
    dialect = Dialect.of(engine)
    me = {"what": "probe", "since": "2026-01-01T00:00:00", "pid": 1, "host": "here"}
    seen: list = []

    def give_up(other) -> None:
        seen.append(other)
        raise TimeoutError

    with dialect.run_lock(engine, False, me, give_up):
        result: list = []

        def second() -> None:
            try:
                with dialect.run_lock(engine, False, {**me, "what": "other"}, give_up):
                    result.append("entered")
            except TimeoutError:
                result.append("busy")

        t = threading.Thread(target=second)  # flock is per open file, an advisory lock per session
        t.start()
        t.join(30)
    assert result == ["busy"]
    assert {k: str(v) for k, v in seen[0].items()} == {k: str(v) for k, v in me.items()}
    with dialect.run_lock(engine, False, me, give_up):  # released
        pass


def test_an_in_memory_sqlite_warehouse_has_no_run_lock() -> None:
    engine = create_engine("sqlite://")
    with SQLITE.run_lock(engine, False, {}, lambda _other: pytest.fail("nobody can hold it")):
        with SQLITE.run_lock(engine, False, {}, lambda _other: pytest.fail("nobody can hold it")):
            pass


# ---------------------------------------------------------------- views


def test_views_run_as_their_reader_on_postgresql_and_as_written_on_sqlite() -> None:
    written = (sql_access.VIEWS_DIR / "decisions.sql").read_text(encoding="utf-8")
    assert sql_access.view_sql("decisions", SQLITE) == written
    pg = sql_access.view_sql("decisions", POSTGRES)
    assert "CREATE VIEW decisions WITH (security_invoker = true) AS" in pg
    assert pg.replace(" WITH (security_invoker = true)", "") == written
    assert SQLITE.view_functions() == () and "json_extract" in POSTGRES.view_functions()[0]


def test_views_can_read_json_the_same_way_on_both(db_url: str) -> None:
    with gateway.transaction(db_url) as conn:
        for statement in Dialect.of(conn).view_functions():
            conn.exec_driver_sql(statement)
        got = conn.execute(text("SELECT json_extract(:doc, '$.a.b')"),
                           {"doc": json.dumps({"a": {"b": "x"}})}).scalar()
    assert got == "x"


# ---------------------------------------------------------------- county codes are bound, never pasted


def test_a_part_binds_its_county_codes_and_takes_only_six_digits() -> None:
    night = Night(part=("431102", "431103"), parts=["431102", "431103"], upto=0, since={RULES[0].code: None})
    scope = night.scope_of(RULES[0])
    assert "431102" not in scope.people and "431103" not in scope.people
    assert dict(scope.params) == {"first0": "431102000000", "last0": "431102999999",
                                  "first1": "431103000000", "last1": "431103999999"}
    for bad in ("43110", "4311020", "43110'", "' OR 1=1 --"):
        with pytest.raises(ValueError):
            check_part([bad])
