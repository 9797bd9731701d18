-- deceased_payment: a recurring benefit paid for a period after the month of death.
-- Never: the month of death itself; lump sums; arrears for periods up to the death month posted later.
-- The earliest death date of all death records of the person counts.
WITH death_of AS (
    SELECT person_id, MIN(death_date) AS death_date FROM death GROUP BY person_id
),
flagged AS (
    SELECT p.person_id, p.payment_id, p.amount_cents, p.benefit_type, p.period,
           p.delivery_day, p.source_file, p.source_line
    FROM payment p
    JOIN death_of d ON d.person_id = p.person_id
    WHERE p.benefit_type IN {{ recurring }}
      AND p.period > {{ month_start('d.death_date') }}
)
SELECT person_id, 'payment' AS fact, payment_id AS fact_id, 1 AS flagged, amount_cents AS at_risk_cents,
       delivery_day, source_file, source_line, benefit_type || ' ' || {{ month_text('period') }} AS detail
FROM flagged
UNION ALL
SELECT x.person_id, 'death', x.record_id, 0, 0, x.delivery_day, x.source_file, x.source_line,
       x.source || ' ' || {{ date_text('x.death_date') }}
FROM death x
WHERE x.person_id IN (SELECT person_id FROM flagged)
