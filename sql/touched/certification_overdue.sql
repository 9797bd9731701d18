-- certification_overdue: whose alert the night's facts can change.
-- * A new recurring payment, unless it cannot be flagged and leaves the person's first paid period as it was:
--   it cannot be flagged when a certification card event, or the latest-delivered recipients row's date
--   (the one the rule reads for any period ending on or after that date), lies within the 12 months before
--   the period's last day.
-- * A new certification card event, when the person has an alert of the rule (an event only lifts flags and
--   is evidence for flagged people), or when it comes before the person's first paid period (people with no
--   certification count from that period).
-- * A new recipients row's last_certified_on, unless the person has no alert of the rule and the row repeats
--   the date of the person's latest-delivered row before it, and no row was delivered after it.
-- * A removed payment, card event or certification.
SELECT p.person_id
FROM new_payment p
WHERE p.benefit_type IN {{ recurring }}
  AND (NOT EXISTS (SELECT 1 FROM payment o
                   WHERE o.person_id = p.person_id AND o.benefit_type IN {{ recurring }} AND o.period < p.period)
       OR (NOT EXISTS (SELECT 1 FROM card_event e
                       WHERE e.person_id = p.person_id AND e.event_type = 'certification'
                         AND e.occurred_on <= {{ month_end('p.period') }}
                         AND NOT {{ over_a_year_after(month_end('p.period'), 'e.occurred_on') }})
           AND NOT EXISTS (SELECT 1 FROM certification l
                           WHERE l.person_id = p.person_id
                             AND l.certified_on <= {{ month_end('p.period') }}
                             AND NOT {{ over_a_year_after(month_end('p.period'), 'l.certified_on') }}
                             AND NOT EXISTS (SELECT 1 FROM certification n
                                             WHERE n.person_id = l.person_id
                                               AND (n.delivery_day > l.delivery_day
                                                    OR (n.delivery_day = l.delivery_day
                                                        AND n.source_line > l.source_line))))))
UNION
SELECT e.person_id
FROM new_card_event e
WHERE e.event_type = 'certification'
  AND (EXISTS (SELECT 1 FROM alert a WHERE a.rule = 'certification_overdue' AND a.person_id = e.person_id)
       OR NOT EXISTS (SELECT 1 FROM payment o
                      WHERE o.person_id = e.person_id AND o.benefit_type IN {{ recurring }}
                        AND o.period <= e.occurred_on))
UNION
SELECT c.person_id
FROM new_certification c
WHERE EXISTS (SELECT 1 FROM alert a WHERE a.rule = 'certification_overdue' AND a.person_id = c.person_id)
   OR EXISTS (SELECT 1 FROM certification n
              WHERE n.person_id = c.person_id
                AND (n.delivery_day > c.delivery_day
                     OR (n.delivery_day = c.delivery_day AND n.source_line > c.source_line)))
   OR NOT EXISTS (SELECT 1 FROM certification b
                  WHERE b.person_id = c.person_id AND b.certified_on = c.certified_on
                    AND (b.delivery_day < c.delivery_day
                         OR (b.delivery_day = c.delivery_day AND b.source_line < c.source_line))
                    AND NOT EXISTS (SELECT 1 FROM certification m
                                    WHERE m.person_id = c.person_id
                                      AND (m.delivery_day > b.delivery_day
                                           OR (m.delivery_day = b.delivery_day AND m.source_line > b.source_line))
                                      AND (m.delivery_day < c.delivery_day
                                           OR (m.delivery_day = c.delivery_day AND m.source_line < c.source_line))))
UNION
SELECT person_id FROM removed WHERE source IN ('payments', 'card_events', 'certification')
