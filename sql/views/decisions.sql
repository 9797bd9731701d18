-- 处理记录 / decisions
-- 审计日志中的每个决定和处理操作（不含"查看未遮蔽信息"的访问记录）。
-- Every decision and workflow action in the audit log (alert_event), not the records of unmasked views.
--
-- 列 / columns
--   event_id      日志序号 / the audit log entry's id
--   acted_at      操作时间 / when
--   user_id       操作人（system = 系统自动）/ who (system = done by the system itself)
--   action        操作 acknowledge | investigate | confirm | dismiss | close | recover | snooze |
--                 escalate | reopen
--   kind          decision（确认或排除）| action（其他人工操作）| system（系统升级、重新打开）
--                 decision (confirm or dismiss) | action (other things people did) | system
--   alert_id      预警编号 / the alert
--   rule          预警的规则 / the alert's rule
--   village_code  预警所在村 / the alert's village
--   county_code   预警所在县 / the alert's county (first 6 digits + 000000)
--   from_status   操作前状态 / status before
--   to_status     操作后状态 / status after
--   comment       说明 / the comment given
--   reason        排除原因代码（lawful | data_error | already_handled | not_found | other），其余为空
--                 the dismissal reason code, empty for other actions
--   details       其余细节（JSON 文本）/ the rest of the details, as JSON text
--
-- json_extract(text, path) 是 SQLite 内置函数；在 PostgreSQL 上由 risk/db/sql_access.py 提供同名函数。
-- json_extract is built into SQLite; on PostgreSQL risk/db/sql_access.py creates a function of that name.
CREATE VIEW decisions AS
SELECT e.id AS event_id,
       e.at AS acted_at,
       e.user_id,
       e.action,
       CASE WHEN e.action IN ('confirm', 'dismiss') THEN 'decision'
            WHEN e.user_id = 'system' THEN 'system'
            ELSE 'action' END AS kind,
       e.alert_id,
       a.rule,
       a.village_code,
       substr(a.village_code, 1, 6) || '000000' AS county_code,
       e.from_status,
       e.to_status,
       e.comment,
       json_extract(e.details, '$.reason') AS reason,
       e.details
FROM alert_event e
JOIN alert a ON a.alert_id = e.alert_id
WHERE e.action IN ('acknowledge', 'investigate', 'confirm', 'dismiss', 'close', 'recover', 'snooze',
                   'escalate', 'reopen')
