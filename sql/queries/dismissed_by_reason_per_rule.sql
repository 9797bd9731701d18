-- 按规则统计以某一原因排除的预警（如"情形合法"） / Alerts dismissed for a reason (e.g. lawful), per rule
-- 只计当前仍为已排除、且最近一次排除用的是该原因的预警。
-- Counts alerts that are dismissed now and whose latest dismissal gave that reason.
-- 参数 / parameters:
--   :reason  排除原因代码 lawful | data_error | already_handled | not_found | other / the reason code
SELECT f.rule,
       COUNT(*) AS alerts,
       ROUND(SUM(f.amount_at_risk_fen) / 100.0, 2) AS amount_at_risk_yuan,
       CAST(SUM(f.amount_at_risk_fen) AS BIGINT) AS amount_at_risk_fen
FROM flagged_cases f
JOIN decisions d ON d.alert_id = f.alert_id
WHERE f.status = 'dismissed'
  AND d.action = 'dismiss'
  AND d.reason = :reason
  AND d.event_id = (SELECT MAX(d2.event_id) FROM decisions d2
                    WHERE d2.alert_id = f.alert_id AND d2.action = 'dismiss')
GROUP BY f.rule
ORDER BY f.rule
