-- 各县各月金额 / amounts_by_county_month
-- 按县和首次发现月份汇总未撤销的预警（基于 flagged_cases）。
-- Alerts that are not withdrawn, per county and month first seen (built on flagged_cases).
--
-- 列 / columns
--   county_code            县（区）代码 / the county
--   county_name            县（区）名称 / the county's name
--   month                  首次发现月份 YYYY-MM / the month of first_seen
--   alerts                 预警数 / how many alerts
--   amount_at_risk_yuan    涉及金额（元）/ amount at risk in yuan
--   amount_at_risk_fen     涉及金额（分，精确）/ amount at risk in fen: exact
--   confirmed_yuan         已确认（confirmed 或 closed）预警的涉及金额（元）/ at risk on confirmed or closed alerts
--   confirmed_fen          同上（分）/ the same in fen
--   recovered_yuan         这些预警已追回的金额（元）/ recovered on these alerts, in yuan
--   recovered_fen          同上（分）/ the same in fen
CREATE VIEW amounts_by_county_month AS
SELECT county_code,
       county_name,
       month,
       COUNT(*) AS alerts,
       ROUND(SUM(amount_at_risk_fen) / 100.0, 2) AS amount_at_risk_yuan,
       CAST(SUM(amount_at_risk_fen) AS BIGINT) AS amount_at_risk_fen,
       ROUND(SUM(confirmed_fen) / 100.0, 2) AS confirmed_yuan,
       CAST(SUM(confirmed_fen) AS BIGINT) AS confirmed_fen,
       ROUND(SUM(recovered_fen) / 100.0, 2) AS recovered_yuan,
       CAST(SUM(recovered_fen) AS BIGINT) AS recovered_fen
FROM (SELECT county_code,
             county_name,
             substr(first_seen, 1, 7) AS month,
             amount_at_risk_fen,
             CASE WHEN status IN ('confirmed', 'closed') THEN amount_at_risk_fen ELSE 0 END AS confirmed_fen,
             recovered_fen
      FROM flagged_cases) f
GROUP BY county_code, county_name, month
