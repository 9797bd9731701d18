-- 某年各县：涉及金额、已确认金额与已追回金额 / Per county for a year: at risk, confirmed and recovered
-- 按预警首次发现的年份统计（未撤销的预警）/ by the year alerts were first seen (alerts not withdrawn).
-- 参数 / parameters:
--   :year  年份 YYYY（文本，如 '2026'）/ the year, as text (e.g. '2026')
SELECT county_code,
       county_name,
       CAST(SUM(alerts) AS BIGINT) AS alerts,
       ROUND(SUM(amount_at_risk_fen) / 100.0, 2) AS amount_at_risk_yuan,
       CAST(SUM(amount_at_risk_fen) AS BIGINT) AS amount_at_risk_fen,
       ROUND(SUM(confirmed_fen) / 100.0, 2) AS confirmed_yuan,
       CAST(SUM(confirmed_fen) AS BIGINT) AS confirmed_fen,
       ROUND(SUM(recovered_fen) / 100.0, 2) AS recovered_yuan,
       CAST(SUM(recovered_fen) AS BIGINT) AS recovered_fen
FROM amounts_by_county_month
WHERE substr(month, 1, 4) = :year
GROUP BY county_code, county_name
ORDER BY county_code
