-- underage_pension: whose alert the night's facts can change.
-- A new pension payment the rule flags (any other is no evidence: the rule judges each payment alone); a
-- removed payment.
WITH pensions AS (
    SELECT person_id, {{ date_text('period') }} AS first_day,
           CASE WHEN benefit_type = 'resident_pension' THEN 60
                WHEN CAST(substr(person_id, 17, 1) AS INTEGER) % 2 = 1 THEN 50
                ELSE 45 END AS pension_age
    FROM new_payment
    WHERE benefit_type IN ('resident_pension', 'employee_pension')
)
SELECT person_id FROM pensions
WHERE first_day < {{ id_birthday_text('person_id', 'pension_age') }}
  AND first_day < {{ id_birthday_text('person_id', 100) }}
UNION
SELECT person_id FROM removed WHERE source = 'payments'
