-- duplicate_payment: whose alert the night's facts can change.
-- A new recurring payment whose person, benefit type and period were paid another time; a new funeral grant
-- of a person paid another one; a removed payment.
SELECT p.person_id
FROM new_payment p
WHERE p.benefit_type IN {{ recurring }}
  AND EXISTS (SELECT 1 FROM payment o
              WHERE o.person_id = p.person_id AND o.benefit_type = p.benefit_type AND o.period = p.period
                AND o.payment_id <> p.payment_id)
UNION
SELECT p.person_id
FROM new_payment p
WHERE p.benefit_type = 'funeral_grant'
  AND EXISTS (SELECT 1 FROM payment o
              WHERE o.person_id = p.person_id AND o.benefit_type = 'funeral_grant' AND o.payment_id <> p.payment_id)
UNION
SELECT person_id FROM removed WHERE source = 'payments'
