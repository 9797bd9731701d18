-- certification_overdue: a recurring benefit paid for a period whose last day is more than 12 calendar
-- months after the person's latest certification on or before that day: the recipient's last_certified_on
-- (recipients are upsert: the latest delivery's value stands, a correction replaces the earlier value) or a
-- certification card event. With no certification on or before that day, the 12 months count from the
-- first day of the person's first paid recurring period.
WITH recurring AS (
    SELECT p.person_id, p.payment_id, p.amount_cents, p.benefit_type, p.period,
           p.delivery_day, p.source_file, p.source_line, {{ month_end('p.period') }} AS period_end
    FROM payment p
    WHERE p.benefit_type IN {{ recurring }}
),
certified AS (
    SELECT person_id, last_certified_on AS on_day FROM recipient WHERE last_certified_on IS NOT NULL
    UNION ALL
    SELECT person_id, occurred_on FROM card_event WHERE event_type = 'certification'
),
first_paid AS (
    SELECT person_id, MIN(period) AS first_period FROM recurring GROUP BY person_id
),
latest AS (
    SELECT r.payment_id, MAX(c.on_day) AS last_certified
    FROM recurring r
    JOIN certified c ON c.person_id = r.person_id AND c.on_day <= r.period_end
    GROUP BY r.payment_id
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
       'last_certified_on ' || {{ date_text('c.last_certified_on') }}
FROM recipient c
WHERE c.last_certified_on IS NOT NULL AND c.person_id IN (SELECT person_id FROM flagged)
UNION ALL
SELECT e.person_id, 'card_event', e.event_id, 0, 0, e.delivery_day, e.source_file, e.source_line,
       'certification ' || e.occurred_at
FROM card_event e
WHERE e.event_type = 'certification' AND e.person_id IN (SELECT person_id FROM flagged)
