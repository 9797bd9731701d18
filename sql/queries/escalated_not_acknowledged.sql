-- 已升级到某一层级、至今无人接收的预警 / Alerts escalated to a level and still not acknowledged
-- 例如 level = county：村、乡镇两级均超时未接收，已升到县级。
-- E.g. level = county: missed by the village and the township, now with the county.
-- 参数 / parameters:
--   :level  township | county
SELECT alert_id, rule, village_code, village_name, township_name, county_code, county_name, severity,
       level, amount_at_risk_yuan, amount_at_risk_fen, first_seen, escalated_at
FROM flagged_cases
WHERE level = :level
  AND status = 'new'
ORDER BY amount_at_risk_fen DESC, alert_id
