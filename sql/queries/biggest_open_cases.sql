-- 某县涉及金额最大的未办结预警 / The biggest open cases of a county
-- 未办结 = new、acknowledged 或 investigating / open = new, acknowledged or investigating.
-- 参数 / parameters:
--   :county  县（区）的12位区划代码，如 431102000000 / the county's 12-digit region code
--   :top     最多返回几条（整数）/ at most this many cases (a whole number)
SELECT alert_id, rule, person_id, village_code, village_name, township_name, severity, status, level,
       amount_at_risk_yuan, amount_at_risk_fen, recovered_yuan, first_seen
FROM flagged_cases
WHERE county_code = :county
  AND status IN ('new', 'acknowledged', 'investigating')
ORDER BY amount_at_risk_fen DESC, alert_id
LIMIT :top
