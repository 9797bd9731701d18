-- card_after_death: a medical, pharmacy, certification or transit card event on a (Beijing) day after death.
-- Never: withdrawals (heirs may withdraw); an inpatient medical settlement admitted on or before the death
-- date; events on the day of death.
WITH death_of AS (
    SELECT person_id, MIN(death_date) AS death_date FROM death GROUP BY person_id
),
flagged AS (
    SELECT e.person_id, e.event_id, e.amount_cents, e.event_type, e.occurred_at,
           e.delivery_day, e.source_file, e.source_line
    FROM card_event e
    JOIN death_of d ON d.person_id = e.person_id
    WHERE e.event_type IN ('medical', 'pharmacy', 'certification', 'transit')
      AND e.occurred_on > d.death_date
      AND NOT (e.event_type = 'medical' AND e.admitted_on IS NOT NULL AND e.admitted_on <= d.death_date)
)
SELECT person_id, 'card_event' AS fact, event_id AS fact_id, 1 AS flagged, amount_cents AS at_risk_cents,
       delivery_day, source_file, source_line, event_type || ' ' || occurred_at AS detail
FROM flagged
UNION ALL
SELECT x.person_id, 'death', x.record_id, 0, 0, x.delivery_day, x.source_file, x.source_line,
       x.source || ' ' || {{ date_text('x.death_date') }}
FROM death x
WHERE x.person_id IN (SELECT person_id FROM flagged)
