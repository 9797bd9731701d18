-- underage_pension: resident_pension for a period whose first day comes before the 60th birthday, or
-- employee_pension before the 45th (women) / 50th (men). Birth date and gender come from the ID number
-- (digits 7-14 and 17), which validation holds equal to the recipient's. Never: pensioners aged 100 or more.
-- Birthdays are compared as YYYY-MM-DD text, so 29 February needs no calendar arithmetic.
-- The pension periods are judged on the person, period and benefit type alone (an index holds them), then
-- the payments of the periods found underage are looked up.
WITH pensions AS (
    SELECT person_id, period, benefit_type, {{ date_text('period') }} AS first_day,
           CASE WHEN benefit_type = 'resident_pension' THEN 60
                WHEN CAST(substr(person_id, 17, 1) AS INTEGER) % 2 = 1 THEN 50
                ELSE 45 END AS pension_age
    FROM payment
    WHERE benefit_type IN ('resident_pension', 'employee_pension')
),
underage AS (
    SELECT DISTINCT person_id, period, benefit_type, pension_age
    FROM pensions
    WHERE CAST(substr(first_day, 1, 4) AS INTEGER) - CAST(substr(person_id, 7, 4) AS INTEGER) <= pension_age  -- years first
      AND first_day < {{ id_birthday_text('person_id', 'pension_age') }}
      AND first_day < {{ id_birthday_text('person_id', 100) }}
)
SELECT p.person_id, 'payment' AS fact, p.payment_id AS fact_id, 1 AS flagged, p.amount_cents AS at_risk_cents,
       p.delivery_day, p.source_file, p.source_line,
       p.benefit_type || ' ' || {{ month_text('p.period') }} || ' before age ' || CAST(u.pension_age AS TEXT) AS detail
FROM underage u
JOIN payment p ON p.person_id = u.person_id AND p.period = u.period AND p.benefit_type = u.benefit_type
