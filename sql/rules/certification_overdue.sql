-- certification_overdue: a recurring benefit paid for a period whose last day is more than 12 calendar
-- months after the person's latest certification on or before that day: a certification card event, or the
-- last_certified_on of the LATEST recipients delivery whose date is on or before that day (recipients are
-- upsert: a later delivery correcting the date replaces the older value, but a newer certification does not
-- erase what was overdue before it). With no certification on or before that day, the 12 months count from
-- the first day of the person's first paid recurring period.
WITH recurring AS (
    SELECT p.person_id, p.payment_id, p.amount_cents, p.benefit_type, p.period,
           p.delivery_day, p.source_file, p.source_line, {{ month_end('p.period') }} AS period_end
    FROM payment p
    WHERE p.benefit_type IN {{ recurring }}
),
delivered AS (
    SELECT r.payment_id, c.person_id, c.certified_on,
           ROW_NUMBER() OVER (PARTITION BY r.payment_id ORDER BY c.delivery_day DESC, c.source_line DESC) AS n
    FROM recurring r
    JOIN certification c ON c.person_id = r.person_id AND c.certified_on <= r.period_end
),
certified AS (
    SELECT payment_id, certified_on AS on_day FROM delivered WHERE n = 1
    UNION ALL
    SELECT r.payment_id, e.occurred_on
    FROM recurring r
    JOIN card_event e ON e.person_id = r.person_id AND e.event_type = 'certification'
                     AND e.occurred_on <= r.period_end
),
first_paid AS (
    SELECT person_id, MIN(period) AS first_period FROM recurring GROUP BY person_id
),
latest AS (
    SELECT payment_id, MAX(on_day) AS last_certified FROM certified GROUP BY payment_id
),
judged AS (
    SELECT r.*, COALESCE(l.last_certified, f.first_period) AS since
    FROM recurring r
    JOIN first_paid f ON f.person_id = r.person_id
    LEFT JOIN latest l ON l.payment_id = r.payment_id
),
flagged AS (
    SELECT * FROM judged
    WHERE {{ date_text('period_end') }} > {{ years_after_text('since', 1) }}
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
