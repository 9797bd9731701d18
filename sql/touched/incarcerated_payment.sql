-- incarcerated_payment: whose alert the night's facts can change.
-- A new custody record (of any sentence type); a new pension payment for a month inside a custodial sentence's
-- window (any other is never flagged and is no evidence); a removed payment or custody record.
SELECT person_id FROM new_incarceration
UNION
SELECT p.person_id
FROM new_payment p
WHERE p.benefit_type IN ('resident_pension', 'employee_pension')
  AND EXISTS (SELECT 1 FROM incarceration x
              WHERE x.person_id = p.person_id AND x.sentence_type = 'custodial'
                AND p.period >= {{ next_month('x.start_date') }}
                AND (x.end_date IS NULL OR p.period <= {{ month_start('x.end_date') }}))
UNION
SELECT person_id FROM removed WHERE source IN ('payments', 'incarcerations')
