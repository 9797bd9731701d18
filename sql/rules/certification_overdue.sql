-- certification_overdue: a recurring benefit paid for a period whose last day is more than 12 calendar
-- months after the person's latest certification on or before that day: a certification card event, or the
-- last_certified_on of the LATEST recipients delivery whose date is on or before that day (recipients are
-- upsert: a later delivery correcting the date replaces the older value, but a newer certification does not
-- erase what was overdue before it). With no certification on or before that day, the 12 months count from
-- the first day of the person's first paid recurring period.
--
-- How: the judgement depends on the person and the period only. Each person's certifications and paid
-- periods are put on one line in the order of their days (a certification on a period's last day comes
-- first); walking along it, at each period we know the latest-delivered recipients row dated so far, the
-- latest certification event so far and the first paid period (every earlier period ends before this one).
WITH paid AS (
    SELECT DISTINCT person_id, period FROM payment WHERE benefit_type IN {{ recurring }}
),
delivered AS (  -- the recipients rows' dates, numbered in the order they were delivered
    SELECT person_id, certified_on,
           ROW_NUMBER() OVER (PARTITION BY person_id ORDER BY delivery_day, source_line) AS n
    FROM certification
),
timeline AS (
    SELECT person_id, {{ month_end('period') }} AS on_day, 2 AS kind, period, NULL AS delivered_n
    FROM paid
    UNION ALL
    SELECT person_id, certified_on, 0, NULL, n FROM delivered
    UNION ALL
    SELECT person_id, occurred_on, 1, NULL, NULL FROM card_event WHERE event_type = 'certification'
),
walked AS (
    SELECT person_id, period, kind,
           MAX(delivered_n) OVER so_far AS latest_delivered_n,
           MAX(CASE WHEN kind = 1 THEN on_day END) OVER so_far AS last_event,
           MIN(period) OVER so_far AS first_period
    FROM timeline
    WINDOW so_far AS (PARTITION BY person_id ORDER BY on_day, kind ROWS UNBOUNDED PRECEDING)
),
judged AS (
    SELECT w.person_id, w.period,
           CASE WHEN d.certified_on IS NULL AND w.last_event IS NULL THEN w.first_period
                WHEN d.certified_on IS NULL THEN w.last_event
                WHEN w.last_event IS NULL OR d.certified_on >= w.last_event THEN d.certified_on
                ELSE w.last_event END AS since
    FROM walked w
    LEFT JOIN delivered d ON d.person_id = w.person_id AND d.n = w.latest_delivered_n
    WHERE w.kind = 2
),
overdue AS MATERIALIZED (  -- the few periods overdue, before their payments are looked up
    SELECT person_id, period, since FROM judged
    WHERE {{ over_a_year_after(month_end('period'), 'since') }}
),
flagged AS (
    SELECT p.person_id, p.payment_id, p.amount_cents, p.benefit_type, p.period,
           p.delivery_day, p.source_file, p.source_line, o.since
    FROM overdue o
    JOIN payment p ON p.person_id = o.person_id AND p.period = o.period AND p.benefit_type IN {{ recurring }}
)
SELECT person_id, 'payment' AS fact, payment_id AS fact_id, 1 AS flagged, amount_cents AS at_risk_cents,
       delivery_day, source_file, source_line,
       benefit_type || ' ' || {{ month_text('period') }} || ', certified ' || {{ date_text('since') }} AS detail
FROM flagged
UNION ALL
SELECT c.person_id, 'recipient', c.person_id, 0, 0, c.delivery_day, c.source_file, c.source_line,
       'last_certified_on ' || {{ date_text('c.certified_on') }}
FROM certification c
WHERE c.person_id IN (SELECT person_id FROM flagged)
UNION ALL
SELECT e.person_id, 'card_event', e.event_id, 0, 0, e.delivery_day, e.source_file, e.source_line,
       'certification ' || e.occurred_at
FROM card_event e
WHERE e.event_type = 'certification' AND e.person_id IN (SELECT person_id FROM flagged)
