-- incarcerated_payment: a pension paid for a month from the month after a custodial sentence starts through
-- the month of release (or ongoing). Never: probation, surveillance, parole, outside_prison, pretrial;
-- months outside the custody window.
WITH custody AS (
    SELECT person_id, {{ next_month('start_date') }} AS first_month,
           CASE WHEN end_date IS NULL THEN NULL ELSE {{ month_start('end_date') }} END AS last_month
    FROM incarceration
    WHERE sentence_type = 'custodial'
),
flagged AS (
    SELECT DISTINCT p.person_id, p.payment_id, p.amount_cents, p.benefit_type, p.period,
           p.delivery_day, p.source_file, p.source_line
    FROM payment p
    JOIN custody c ON c.person_id = p.person_id
    WHERE p.benefit_type IN ('resident_pension', 'employee_pension')
      AND p.period >= c.first_month
      AND (c.last_month IS NULL OR p.period <= c.last_month)
)
SELECT person_id, 'payment' AS fact, payment_id AS fact_id, 1 AS flagged, amount_cents AS at_risk_cents,
       delivery_day, source_file, source_line, benefit_type || ' ' || {{ month_text('period') }} AS detail
FROM flagged
UNION ALL
SELECT x.person_id, 'incarceration', x.record_id, 0, 0, x.delivery_day, x.source_file, x.source_line,
       x.sentence_type || ' ' || {{ date_text('x.start_date') }} || ' – '
       || COALESCE({{ date_text('x.end_date') }}, '')
FROM incarceration x
WHERE x.sentence_type = 'custodial' AND x.person_id IN (SELECT person_id FROM flagged)
