-- card_after_death: whose alert the night's facts can change.
-- A new death record; a new medical, pharmacy, certification or transit card event on a day after a death of
-- its person (withdrawals, other events and events up to the death are never flagged and are no evidence);
-- a removed card event or death record.
SELECT person_id FROM new_death
UNION
SELECT e.person_id
FROM new_card_event e
WHERE e.event_type IN ('medical', 'pharmacy', 'certification', 'transit')
  AND EXISTS (SELECT 1 FROM death d WHERE d.person_id = e.person_id AND e.occurred_on > d.death_date)
UNION
SELECT person_id FROM removed WHERE source IN ('card_events', 'deaths')
