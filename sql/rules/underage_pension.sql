-- underage_pension: resident_pension for a period whose first day comes before the 60th birthday, or
-- employee_pension before the 45th (women) / 50th (men). Birth date and gender come from the ID number
-- (digits 7-14 and 17), which validation holds equal to the recipient's. Never: pensioners aged 100 or more.
-- Birthdays are compared as YYYY-MM-DD text, so 29 February needs no calendar arithmetic.
WITH judged AS (
    SELECT p.person_id, p.payment_id, p.amount_cents, p.benefit_type, p.period,
           p.delivery_day, p.source_file, p.source_line,
           {{ date_text('p.period') }} AS first_day,
           CASE WHEN p.benefit_type = 'resident_pension' THEN 60
                WHEN CAST(substr(p.person_id, 17, 1) AS INTEGER) % 2 = 1 THEN 50
                ELSE 45 END AS pension_age
    FROM payment p
    WHERE p.benefit_type IN ('resident_pension', 'employee_pension')
)
SELECT person_id, 'payment' AS fact, payment_id AS fact_id, 1 AS flagged, amount_cents AS at_risk_cents,
       delivery_day, source_file, source_line,
       benefit_type || ' ' || {{ month_text('period') }} || ' before age ' || CAST(pension_age AS TEXT) AS detail
FROM judged
WHERE first_day < {{ id_birthday_text('person_id', 'pension_age') }}
  AND first_day < {{ id_birthday_text('person_id', 100) }}
