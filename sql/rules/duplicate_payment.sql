-- duplicate_payment: the same person, recurring benefit type and period paid more than once; or a deceased
-- person's funeral_grant paid more than once across all schemes. At risk: all but the earliest payment
-- (by paid_on, then payment_id) of each repeated group.
WITH grouped AS (
    SELECT person_id, payment_id, amount_cents, benefit_type, period, paid_on,
           delivery_day, source_file, source_line,
           ROW_NUMBER() OVER (PARTITION BY person_id, benefit_type, period ORDER BY paid_on, payment_id) AS n,
           COUNT(*) OVER (PARTITION BY person_id, benefit_type, period) AS copies
    FROM payment
    WHERE benefit_type IN {{ recurring }}
    UNION ALL
    SELECT person_id, payment_id, amount_cents, benefit_type, period, paid_on,
           delivery_day, source_file, source_line,
           ROW_NUMBER() OVER (PARTITION BY person_id ORDER BY paid_on, payment_id) AS n,
           COUNT(*) OVER (PARTITION BY person_id) AS copies
    FROM payment
    WHERE benefit_type = 'funeral_grant'
)
SELECT person_id, 'payment' AS fact, payment_id AS fact_id, 1 AS flagged,
       CASE WHEN n > 1 THEN amount_cents ELSE 0 END AS at_risk_cents,
       delivery_day, source_file, source_line,
       benefit_type || ' ' || {{ month_text('period') }} || ' paid ' || {{ date_text('paid_on') }}
       || CASE WHEN n = 1 THEN ' (first)' ELSE ' (repeat)' END AS detail
FROM grouped
WHERE copies > 1
