-- dual_benefit: whose alert the night's facts can change.
-- A new resident_pension, employee_pension or unemployment payment in a period in which its person was also
-- paid another of the three (a period with one of them only is no evidence); a removed payment.
SELECT p.person_id
FROM new_payment p
WHERE p.benefit_type IN ('resident_pension', 'employee_pension', 'unemployment')
  AND EXISTS (SELECT 1 FROM payment o
              WHERE o.person_id = p.person_id AND o.period = p.period
                AND o.benefit_type IN ('resident_pension', 'employee_pension', 'unemployment')
                AND o.benefit_type <> p.benefit_type)
UNION
SELECT person_id FROM removed WHERE source = 'payments'
