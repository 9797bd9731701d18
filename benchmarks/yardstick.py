"""The yardstick: a plain DuckDB script that reads a landing folder and applies contract §4.

    .venv/bin/python -m benchmarks.yardstick LANDING [--threads 1] [--until DAY] [--alerts OUT.csv]

What a competent analyst would write in an afternoon, with no quality queue, no provenance, no
workflow and no incremental nights: one `read_csv` per source over every day's files (text columns,
union by name), keys deduplicated (the earliest delivery of a fact stands, the latest of a recipient),
IDs upper-cased and legacy 15-digit IDs made 18, then the eight rules of §4 as SQL. It prints the
rows read and the alerts per rule. The benchmarks time `risk run` against it in the same command;
it runs on one thread unless told otherwise, as the issue measured it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb

SOURCES = {
    "regions": "code", "recipients": "person_id", "supervisors": "user_id", "payments": "payment_id",
    "card_events": "event_id", "deaths": "record_id", "incarcerations": "record_id",
}
RECURRING = "('resident_pension', 'employee_pension', 'unemployment', 'work_injury')"

# a 15-digit legacy ID gets '19' after digit 6 and the MOD 11-2 check character
NORMALISE = """
CREATE MACRO id17(v) AS CASE WHEN length(v) = 15 THEN substr(v, 1, 6) || '19' || substr(v, 7) ELSE v END;
CREATE MACRO with_check(v) AS CASE WHEN length(v) = 17 THEN v || substr('10X98765432', CAST(1 + (
        list_sum(list_transform(range(17), lambda i: CAST(substr(v, i + 1, 1) AS INTEGER)
                 * [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2][i + 1])) % 11) AS BIGINT), 1)
    ELSE v END;
CREATE MACRO norm_id(raw) AS with_check(id17(upper(trim(raw))));
"""

RULES = {
    "deceased_payment": f"""
        WITH d AS (SELECT person_id, min(death_date) AS death_date FROM death GROUP BY person_id)
        SELECT p.person_id, sum(p.cents) FROM payment p JOIN d USING (person_id)
        WHERE p.benefit_type IN {RECURRING} AND p.period > date_trunc('month', d.death_date)
        GROUP BY p.person_id""",
    "card_after_death": """
        WITH d AS (SELECT person_id, min(death_date) AS death_date FROM death GROUP BY person_id)
        SELECT e.person_id, sum(e.cents) FROM card_event e JOIN d USING (person_id)
        WHERE e.event_type IN ('medical', 'pharmacy', 'certification', 'transit')
          AND CAST(timezone('Asia/Shanghai', e.occurred_at) AS DATE) > d.death_date
          AND NOT (e.event_type = 'medical' AND e.admitted_on IS NOT NULL AND e.admitted_on <= d.death_date)
        GROUP BY e.person_id""",
    "incarcerated_payment": """
        WITH c AS (SELECT person_id, date_trunc('month', start_date) + INTERVAL 1 MONTH AS first_month,
                          date_trunc('month', end_date) AS last_month
                   FROM incarceration WHERE sentence_type = 'custodial'),
             f AS (SELECT DISTINCT p.person_id, p.payment_id, p.cents FROM payment p JOIN c USING (person_id)
                   WHERE p.benefit_type IN ('resident_pension', 'employee_pension') AND p.period >= c.first_month
                     AND (c.last_month IS NULL OR p.period <= c.last_month))
        SELECT person_id, sum(cents) FROM f GROUP BY person_id""",
    "dual_benefit": """
        WITH pp AS (SELECT person_id, period,
                           count(*) FILTER (benefit_type = 'resident_pension') AS r,
                           count(*) FILTER (benefit_type = 'employee_pension') AS e,
                           count(*) FILTER (benefit_type = 'unemployment') AS u
                    FROM payment GROUP BY person_id, period),
             o AS (SELECT * FROM pp WHERE (r > 0 AND e > 0) OR (u > 0 AND (r > 0 OR e > 0)))
        SELECT p.person_id, sum(CASE WHEN p.benefit_type = 'resident_pension' AND o.e > 0 THEN p.cents
                                     WHEN p.benefit_type = 'unemployment' THEN p.cents ELSE 0 END)
        FROM payment p JOIN o USING (person_id, period)
        WHERE p.benefit_type IN ('resident_pension', 'employee_pension', 'unemployment')
        GROUP BY p.person_id""",
    "duplicate_payment": f"""
        WITH g AS (SELECT person_id, cents, row_number() OVER (PARTITION BY person_id, benefit_type, period
                                                              ORDER BY paid_on, payment_id) AS n,
                          count(*) OVER (PARTITION BY person_id, benefit_type, period) AS k
                   FROM payment WHERE benefit_type IN {RECURRING}
                   UNION ALL
                   SELECT person_id, cents, row_number() OVER (PARTITION BY person_id ORDER BY paid_on, payment_id),
                          count(*) OVER (PARTITION BY person_id)
                   FROM payment WHERE benefit_type = 'funeral_grant')
        SELECT person_id, sum(CASE WHEN n > 1 THEN cents ELSE 0 END) FROM g WHERE k > 1 GROUP BY person_id""",
    "shared_account": """
        WITH s AS (SELECT bank_account, period FROM payment GROUP BY bank_account, period
                   HAVING count(DISTINCT person_id) >= 3)
        SELECT p.person_id, sum(p.cents) FROM payment p JOIN s USING (bank_account, period) GROUP BY p.person_id""",
    "underage_pension": """
        WITH j AS (SELECT person_id, cents, period,
                          CAST(strptime(substr(person_id, 7, 8), '%Y%m%d') AS DATE) AS birth,
                          CASE WHEN benefit_type = 'resident_pension' THEN 60
                               WHEN CAST(substr(person_id, 17, 1) AS INTEGER) % 2 = 1 THEN 50 ELSE 45 END AS age
                   FROM payment
                   WHERE benefit_type IN ('resident_pension', 'employee_pension'))
        SELECT person_id, sum(cents) FROM j
        WHERE period < birth + to_years(age) AND period < birth + INTERVAL 100 YEAR
        GROUP BY person_id""",
    "certification_overdue": f"""
        WITH r AS (SELECT person_id, payment_id, cents, period,
                          last_day(period) AS period_end FROM payment WHERE benefit_type IN {RECURRING}),
             certs AS (SELECT person_id, day, certified_on FROM certification
                       UNION ALL
                       SELECT person_id, NULL, CAST(timezone('Asia/Shanghai', occurred_at) AS DATE) FROM card_event
                       WHERE event_type = 'certification'),
             delivered AS (SELECT r.payment_id, c.certified_on,
                                  row_number() OVER (PARTITION BY r.payment_id ORDER BY c.day DESC, c.line DESC) AS n
                           FROM r JOIN certification c ON c.person_id = r.person_id
                                                      AND c.certified_on <= r.period_end),
             latest AS (SELECT payment_id, max(on_day) AS last_certified FROM (
                            SELECT payment_id, certified_on AS on_day FROM delivered WHERE n = 1
                            UNION ALL
                            SELECT r.payment_id, CAST(timezone('Asia/Shanghai', e.occurred_at) AS DATE)
                            FROM r JOIN card_event e ON e.person_id = r.person_id AND e.event_type = 'certification'
                                AND CAST(timezone('Asia/Shanghai', e.occurred_at) AS DATE) <= r.period_end)
                        GROUP BY payment_id),
             first_paid AS (SELECT person_id, min(period) AS first_period FROM r GROUP BY person_id)
        SELECT r.person_id, sum(r.cents) FROM r JOIN first_paid f USING (person_id)
        LEFT JOIN latest l USING (payment_id)
        WHERE r.period_end > COALESCE(l.last_certified, f.first_period) + INTERVAL 12 MONTH
        GROUP BY r.person_id""",
}


def run(landing: Path, threads: int = 1, alerts_out: Path | None = None, until: str | None = None) -> dict:
    con = duckdb.connect()
    con.execute(f"SET threads={int(threads)}")
    con.execute("SET memory_limit='4GB'")  # the bound `risk run` keeps to; DuckDB spills to disk beyond it
    con.execute("SET preserve_insertion_order=false")
    con.execute("SET TimeZone='UTC'")
    con.execute(NORMALISE)
    rows = 0
    raw = {}
    for source in SOURCES:
        files = sorted(str(p) for p in landing.glob(f"*/{source}.csv*")
                       if until is None or p.parent.name <= until)
        if not files:
            continue
        con.execute(f"""CREATE TABLE raw_{source} AS SELECT *, substr(regexp_extract(filename, '(\\d{{4}}-\\d{{2}}-\\d{{2}})'), 1, 10) AS day
                        FROM read_csv({files!r}, header=true, all_varchar=true, union_by_name=true,
                                      filename=true, ignore_errors=true)""")
        n = con.execute(f"SELECT count(*) FROM raw_{source}").fetchone()
        rows += n[0] if n else 0
        raw[source] = True

    def earliest(source: str, key: str, select: str, where: str, latest: bool = False) -> str:
        order = "day DESC" if latest else "day"
        return (f"SELECT * FROM (SELECT {select}, row_number() OVER (PARTITION BY {key} ORDER BY {order}) AS n_ "
                f"FROM raw_{source} WHERE {where}) WHERE n_ = 1")

    money = "TRY_CAST(amount AS DECIMAL(14, 2)) * 100"
    con.execute("CREATE TABLE payment AS " + earliest(
        "payments", "payment_id",
        f"payment_id, norm_id(person_id) AS person_id, benefit_type, CAST(period || '-01' AS DATE) AS period, "
        f"CAST({money} AS BIGINT) AS cents, TRY_CAST(paid_on AS DATE) AS paid_on, bank_account, day",
        "TRY_CAST(amount AS DECIMAL(14, 2)) > 0 AND TRY_CAST(period || '-01' AS DATE) IS NOT NULL"))
    con.execute("CREATE TABLE card_event AS " + earliest(
        "card_events", "event_id",
        f"event_id, norm_id(person_id) AS person_id, event_type, TRY_CAST(occurred_at AS TIMESTAMPTZ) AS occurred_at, "
        f"CAST({money} AS BIGINT) AS cents, TRY_CAST(NULLIF(admitted_on, '') AS DATE) AS admitted_on, day",
        "TRY_CAST(occurred_at AS TIMESTAMPTZ) IS NOT NULL AND TRY_CAST(amount AS DECIMAL(14, 2)) >= 0"))
    con.execute("CREATE TABLE death AS " + earliest(
        "deaths", "record_id", "record_id, norm_id(person_id) AS person_id, TRY_CAST(death_date AS DATE) AS death_date",
        "TRY_CAST(death_date AS DATE) IS NOT NULL"))
    if "incarcerations" in raw:
        con.execute("CREATE TABLE incarceration AS " + earliest(
            "incarcerations", "record_id",
            "record_id, norm_id(person_id) AS person_id, sentence_type, TRY_CAST(start_date AS DATE) AS start_date, "
            "TRY_CAST(NULLIF(end_date, '') AS DATE) AS end_date", "TRY_CAST(start_date AS DATE) IS NOT NULL"))
    else:
        con.execute("CREATE TABLE incarceration (person_id VARCHAR, sentence_type VARCHAR, start_date DATE, end_date DATE)")
    con.execute("""CREATE TABLE certification AS
                   SELECT norm_id(person_id) AS person_id, day, row_number() OVER () AS line,
                          TRY_CAST(last_certified_on AS DATE) AS certified_on
                   FROM raw_recipients WHERE TRY_CAST(last_certified_on AS DATE) IS NOT NULL""")
    alerts, seconds = {}, {}
    found = []
    for code, sql in RULES.items():
        started = time.monotonic()
        result = con.execute(sql).fetchall()
        seconds[code] = time.monotonic() - started
        alerts[code] = len(result)
        found += [(code, p, c) for p, c in result]
    if alerts_out:
        with alerts_out.open("w", encoding="utf-8") as f:
            f.write("rule,person_id,amount_at_risk\n")
            for code, p, c in sorted(found):
                f.write(f"{code},{p},{int(c) / 100:.2f}\n")
    return {"rows": rows, "alerts": alerts, "rule_seconds": seconds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("landing", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--alerts", type=Path, help="write the alerts found as rule,person_id,amount_at_risk")
    ap.add_argument("--until", help="only delivery days up to this one (YYYY-MM-DD)")
    a = ap.parse_args()
    t = time.monotonic()
    result = run(a.landing, a.threads, a.alerts, a.until)
    print(f"{result['rows']} rows, {sum(result['alerts'].values())} alerts in {time.monotonic() - t:.1f} s",
          file=sys.stderr)
    print(result["rows"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
