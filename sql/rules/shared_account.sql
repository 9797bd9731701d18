-- shared_account: one bank account receives benefit payments for 3 or more distinct people in one period.
-- At risk: the person's payments into that account in the periods where it is shared by 3 or more.
-- Never: two people (spouses) sharing one account.
WITH shared AS (
    SELECT bank_account, period
    FROM payment
    GROUP BY bank_account, period
    HAVING COUNT(DISTINCT person_id) >= 3
)
SELECT p.person_id, 'payment' AS fact, p.payment_id AS fact_id, 1 AS flagged, p.amount_cents AS at_risk_cents,
       p.delivery_day, p.source_file, p.source_line,
       p.benefit_type || ' ' || {{ month_text('p.period') }} || ' → account ending '
       || substr(p.bank_account, length(p.bank_account) - 3, 4) AS detail
FROM payment p
JOIN shared s ON s.bank_account = p.bank_account AND s.period = p.period
