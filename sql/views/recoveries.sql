-- 追回记录 / recoveries
-- 每笔已登记的追回（可多笔、部分追回）一行，附预警的规则、村和县。
-- One row per recorded recovery (an alert may have several, partial ones), with the alert's rule,
-- village and county.
--
-- 列 / columns
--   recovery_id    追回记录序号 / the recovery's id
--   alert_id       预警编号 / the alert it was recovered on
--   rule           预警的规则 / the alert's rule
--   village_code   村（社区）代码 / the alert's village
--   village_name   村（社区）名称 / the village's name
--   county_code    县（区）代码 = 村代码前6位 + 000000 / the county
--   county_name    县（区）名称 / the county's name
--   amount_yuan    追回金额（元，两位小数）/ the amount recovered in yuan
--   amount_fen     追回金额（分，整数，精确）/ the amount recovered in fen: exact
--   recovered_on   追回日期 / the day the money came back
--   method         追回方式 bank_return | deduction | repayment | court | other / how
--   recorded_by    登记人 / who recorded it
--   recorded_at    登记时间 / when it was recorded
CREATE VIEW recoveries AS
SELECT r.id AS recovery_id,
       r.alert_id,
       a.rule,
       a.village_code,
       v.name AS village_name,
       substr(a.village_code, 1, 6) || '000000' AS county_code,
       c.name AS county_name,
       ROUND(r.amount_cents / 100.0, 2) AS amount_yuan,
       r.amount_cents AS amount_fen,
       r.recovered_on,
       r.method,
       r.recorded_by,
       r.recorded_at
FROM recovery r
JOIN alert a ON a.alert_id = r.alert_id
LEFT JOIN region v ON v.code = a.village_code
LEFT JOIN region c ON c.code = substr(a.village_code, 1, 6) || '000000'
