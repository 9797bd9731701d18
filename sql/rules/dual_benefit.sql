-- dual_benefit: in one period both resident_pension and employee_pension, or unemployment together with
-- either pension. At risk: the resident_pension amounts in periods with both pensions, plus the
-- unemployment amounts in periods with a pension. Never: switching schemes with no overlapping month.
WITH per_period AS (
    SELECT person_id, period,
           SUM(CASE WHEN benefit_type = 'resident_pension' THEN 1 ELSE 0 END) AS resident,
           SUM(CASE WHEN benefit_type = 'employee_pension' THEN 1 ELSE 0 END) AS employee,
           SUM(CASE WHEN benefit_type = 'unemployment' THEN 1 ELSE 0 END) AS unemployed
    FROM payment
    WHERE benefit_type IN ('resident_pension', 'employee_pension', 'unemployment')
    GROUP BY person_id, period
),
overlap AS (
    SELECT * FROM per_period
    WHERE (resident > 0 AND employee > 0) OR (unemployed > 0 AND (resident > 0 OR employee > 0))
)
SELECT p.person_id, 'payment' AS fact, p.payment_id AS fact_id, 1 AS flagged,
       CASE WHEN p.benefit_type = 'resident_pension' AND o.employee > 0 THEN p.amount_cents
            WHEN p.benefit_type = 'unemployment' THEN p.amount_cents
            ELSE 0 END AS at_risk_cents,
       p.delivery_day, p.source_file, p.source_line,
       p.benefit_type || ' ' || {{ month_text('p.period') }} AS detail
FROM payment p
JOIN overlap o ON o.person_id = p.person_id AND o.period = p.period
WHERE p.benefit_type IN ('resident_pension', 'employee_pension', 'unemployment')
