-- duplicate_payment: the same person, recurring benefit type and period paid more than once; or a deceased
-- person's funeral_grant paid more than once across all schemes. At risk: all but the earliest payment
-- (by paid_on, then payment_id) of each repeated group.
WITH repeated AS (
    SELECT person_id, benefit_type, period
    FROM payment
    WHERE benefit_type IN {{ recurring }}
    GROUP BY person_id, period, benefit_type
    HAVING COUNT(*) > 1
),
funerals AS (
    SELECT person_id FROM payment WHERE benefit_type = 'funeral_grant' GROUP BY person_id HAVING COUNT(*) > 1
),
grouped AS (
    SELECT p.person_id, p.payment_id, p.amount_cents, p.benefit_type, p.period, p.paid_on,
           p.delivery_day, p.source_file, p.source_line,
           ROW_NUMBER() OVER (PARTITION BY p.person_id, p.benefit_type, p.period
                              ORDER BY p.paid_on, p.payment_id) AS n
    FROM payment p
    JOIN repeated r ON r.person_id = p.person_id AND r.benefit_type = p.benefit_type AND r.period = p.period
    UNION ALL
    SELECT p.person_id, p.payment_id, p.amount_cents, p.benefit_type, p.period, p.paid_on,
           p.delivery_day, p.source_file, p.source_line,
           ROW_NUMBER() OVER (PARTITION BY p.person_id ORDER BY p.paid_on, p.payment_id) AS n
    FROM payment p
    JOIN funerals f ON f.person_id = p.person_id
    WHERE p.benefit_type = 'funeral_grant'
)
SELECT person_id, 'payment' AS fact, payment_id AS fact_id, 1 AS flagged,
       CASE WHEN n > 1 THEN amount_cents ELSE 0 END AS at_risk_cents,
       delivery_day, source_file, source_line,
       benefit_type || ' ' || {{ month_text('period') }} || ' paid ' || {{ date_text('paid_on') }}
       || CASE WHEN n = 1 THEN ' (first)' ELSE ' (repeat)' END AS detail
FROM grouped
