-- deceased_payment: whose alert the night's facts can change.
-- A new death record (the earliest date counts, and every record of a flagged person is evidence); a new
-- recurring payment for a period after the month of a death of its person (any other is never flagged and
-- is no evidence); a removed payment or death record.
SELECT person_id FROM new_death
UNION
SELECT p.person_id
FROM new_payment p
WHERE p.benefit_type IN {{ recurring }}
  AND EXISTS (SELECT 1 FROM death d
              WHERE d.person_id = p.person_id AND p.period > {{ month_start('d.death_date') }})
UNION
SELECT person_id FROM removed WHERE source IN ('payments', 'deaths')
