-- 某用户作出的决定和操作 / The decisions and actions made by a user
-- 参数 / parameters:
--   :user_id  用户名（supervisors.csv 的 user_id）/ the user's id in supervisors.csv
--   :since    起始日 YYYY-MM-DD（含）/ from this day on, inclusive (YYYY-MM-DD)
SELECT event_id, acted_at, action, kind, alert_id, rule, village_code, from_status, to_status, reason, comment
FROM decisions
WHERE user_id = :user_id
  AND substr(CAST(acted_at AS VARCHAR(32)), 1, 10) >= :since
ORDER BY event_id
