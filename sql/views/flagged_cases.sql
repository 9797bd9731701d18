-- 预警案件 / flagged_cases
-- 每条未撤销的预警一行：在哪里、什么规则、多少钱、处理到哪一步、已追回多少。
-- One row per alert that is not withdrawn (withdrawn = later data replaced the facts it stood on):
-- where it is, which rule, how much, how far it has been worked, how much is back.
--
-- 列 / columns
--   alert_id             预警编号（由规则和人员得出，重跑不变）/ the alert's id (from rule and person, stable)
--   rule                 规则代码（sql/rules/ 或 anomaly）/ the rule's code (sql/rules/<rule>.sql, or anomaly)
--   person_id            身份证号（未遮蔽：属个人信息）/ the person's ID number (unmasked: personal information)
--   village_code         村（社区）12位代码 / the village's 12-digit code
--   village_name         村（社区）名称 / the village's name
--   township_code        乡镇（街道）代码 = 村代码前9位 + 000 / the township: first 9 digits + 000
--   township_name        乡镇（街道）名称 / the township's name
--   county_code          县（区）代码 = 村代码前6位 + 000000 / the county: first 6 digits + 000000
--   county_name          县（区）名称 / the county's name
--   severity             严重程度 high | medium | low / severity
--   status               状态 new | acknowledged | investigating | confirmed | dismissed | closed
--   level                当前应处理的层级 village | township | county（超时逐级上移）/ who must act now
--   amount_at_risk_yuan  涉及金额（元，两位小数；PostgreSQL 为 NUMERIC，SQLite 为 REAL）/ amount at risk in yuan
--   amount_at_risk_fen   涉及金额（分，整数，精确；求和请用此列）/ amount at risk in fen: exact, sum this one
--   first_seen           首次发现的交付日 YYYY-MM-DD / the delivery day it was first raised on
--   escalated_at         最近一次升级时间（未升级为空）/ when it last moved up a level (empty if never)
--   recovered_yuan       已追回金额（元）/ recovered so far in yuan (0 if nothing)
--   recovered_fen        已追回金额（分，整数）/ recovered so far in fen
CREATE VIEW flagged_cases AS
SELECT a.alert_id,
       a.rule,
       a.person_id,
       a.village_code,
       v.name AS village_name,
       substr(a.village_code, 1, 9) || '000' AS township_code,
       t.name AS township_name,
       substr(a.village_code, 1, 6) || '000000' AS county_code,
       c.name AS county_name,
       a.severity,
       a.status,
       a.level,
       ROUND(a.amount_at_risk_cents / 100.0, 2) AS amount_at_risk_yuan,
       a.amount_at_risk_cents AS amount_at_risk_fen,
       a.first_seen,
       a.escalated_at,
       ROUND(COALESCE(r.fen, 0) / 100.0, 2) AS recovered_yuan,
       CAST(COALESCE(r.fen, 0) AS BIGINT) AS recovered_fen
FROM alert a
LEFT JOIN region v ON v.code = a.village_code
LEFT JOIN region t ON t.code = substr(a.village_code, 1, 9) || '000'
LEFT JOIN region c ON c.code = substr(a.village_code, 1, 6) || '000000'
LEFT JOIN (SELECT alert_id, SUM(amount_cents) AS fen FROM recovery GROUP BY alert_id) r
       ON r.alert_id = a.alert_id
WHERE a.status <> 'withdrawn'
