-- shared_account: whose alert the night's facts can change.
-- Everyone paid into an account in a period in which it received a new payment and is now shared by 3 or
-- more people (adding a payment never ends a sharing; an account and period shared by fewer is no evidence);
-- everyone paid into an account in a period in which it lost a payment, and the person who lost it.
WITH arrived AS (
    SELECT DISTINCT bank_account, period FROM new_payment
),
shared_now AS (
    SELECT a.bank_account, a.period
    FROM arrived a
    JOIN payment p ON p.bank_account = a.bank_account AND p.period = a.period
    GROUP BY a.bank_account, a.period
    HAVING COUNT(DISTINCT p.person_id) >= 3
),
changed AS (
    SELECT bank_account, period FROM shared_now
    UNION
    SELECT bank_account, period FROM removed WHERE source = 'payments'
)
SELECT p.person_id
FROM changed c
JOIN payment p ON p.bank_account = c.bank_account AND p.period = c.period
UNION
SELECT person_id FROM removed WHERE source = 'payments'
