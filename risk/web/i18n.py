"""The web app's words, Chinese first and English by choice. Templates call `t("key")`."""
from __future__ import annotations

from risk.domain import Action, Level, Method, Severity, Status

WORDS: dict[str, tuple[str, str]] = {
    "app": ("社保基金风险监测", "Fund risk monitoring"),
    "queue": ("我的预警", "My alerts"),
    "dashboard": ("概览", "Overview"),
    "quality": ("数据质量", "Data quality"),
    "search": ("全市查询", "City-wide search"),
    "audit": ("审计日志", "Audit log"),
    "logout": ("退出", "Log out"),
    "login": ("登录", "Log in"),
    "user_id": ("登录名", "Login name"),
    "password": ("密码", "Password"),
    "language": ("English", "中文"),
    "filter": ("筛选", "Filter"),
    "clear": ("清除", "Clear"),
    "rule": ("规则", "Rule"),
    "severity": ("严重程度", "Severity"),
    "status": ("状态", "Status"),
    "village": ("村（社区）", "Village"),
    "county": ("区县", "County"),
    "month": ("月份", "Month"),
    "period_from": ("从（月）", "From (month)"),
    "period_to": ("到（月）", "To (month)"),
    "sort": ("排序", "Sort"),
    "sort_amount": ("按金额", "by amount"),
    "sort_age": ("按时间（最早在前）", "by age (oldest first)"),
    "any": ("全部", "any"),
    "amount_at_risk": ("涉及金额", "Amount at risk"),
    "person": ("人员", "Person"),
    "age_days": ("已过天数", "Days open"),
    "first_seen": ("首次发现", "First seen"),
    "level": ("当前负责层级", "Level responsible"),
    "nothing": ("没有符合条件的预警", "No alerts match"),
    "page": ("第 {page} / {pages} 页，共 {total} 条", "Page {page} of {pages}, {total} in all"),
    "prev": ("上一页", "Previous"),
    "next": ("下一页", "Next"),
    "what_to_check": ("请核实", "What to check"),
    "why_unusual": ("为什么异常", "Why it is unusual"),
    "evidence": ("证据", "Evidence"),
    "fact": ("事实", "Fact"),
    "detail": ("内容", "Detail"),
    "source": ("来源文件", "Source file"),
    "line": ("行", "Line"),
    "delivery_day": ("交付日", "Delivery day"),
    "timeline": ("处理记录", "Timeline"),
    "show_identity": ("显示完整身份信息（将被记录）", "Show full identity (this is recorded)"),
    "identity_shown": ("完整身份信息已显示，此次查看已记入审计日志。", "Full identity shown; this view is in the audit log."),
    "actions": ("处理", "Act on it"),
    "comment": ("说明", "Comment"),
    "reason": ("原因", "Reason"),
    "choose_reason": ("请选择原因", "Choose a reason"),
    "snoozed_until": ("已暂缓至 {until}", "Snoozed until {until}"),
    "until": ("至 {until}", "until {until}"),
    "ignored": ("已忽略无效的筛选条件", "Ignored invalid filters"),
    "acknowledge": ("接收", "Acknowledge"),
    "investigate": ("开始核查", "Start checking"),
    "confirm": ("确认属实", "Confirm"),
    "dismiss": ("排除", "Dismiss"),
    "close": ("结案", "Close"),
    "recover": ("登记追回", "Record a recovery"),
    "amount": ("金额（元）", "Amount (yuan)"),
    "date": ("日期", "Date"),
    "method": ("方式", "Method"),
    "snooze": ("暂缓", "Snooze"),
    "days": ("天数", "Days"),
    "recovered": ("已追回", "Recovered"),
    "read_only": ("审计人员只能查看，不能修改。", "Auditors can look but not change anything."),
    "back": ("返回", "Back"),
    "when": ("时间", "When"),
    "who": ("人员", "Who"),
    "action": ("操作", "Action"),
    "alert": ("预警", "Alert"),
    "export_csv": ("导出 CSV", "Export CSV"),
    "export_xlsx": ("导出 Excel", "Export Excel"),
    "person_id_exact": ("身份证号（完整）", "ID number (whole)"),
    "min_amount": ("最低金额（元）", "Minimum amount (yuan)"),
    "rejected": ("拒收行", "Rejected rows"),
    "rows": ("行数", "Rows"),
    "top_reasons": ("主要原因", "Main reasons"),
    "field": ("字段", "Field"),
    "key": ("键", "Key"),
    "not_found": ("找不到页面或无权查看", "Not found, or not yours to see"),
    "error": ("出错了", "Something went wrong"),
    "error_hint": ("请返回重试；如仍有问题，请联系系统管理员。", "Go back and try again; if it persists, tell the administrator."),
    "open_alerts": ("待处理预警", "Open alerts"),
    "open_amount": ("待处理涉及金额", "Open amount at risk"),
    "confirmed": ("已确认", "Confirmed"),
    "escalated": ("已升级", "Escalated"),
    "by_county_month": ("各区县每月预警", "Alerts by county and month"),
    "recovered_vs_risk": ("追回与涉及金额", "Recovered against at risk"),
    "escalations": ("升级次数", "Escalations"),
    "search_hint": ("按身份证号、规则、状态、区县、时间和金额查询全市预警。", "Search every alert in the city by ID number, rule, status, county, period and amount."),
    "user": ("用户", "User"),
    "all_actions": ("全部操作", "every action"),
}

STATUS = {Status.NEW: ("新预警", "new"), Status.ACKNOWLEDGED: ("已接收", "acknowledged"),
          Status.INVESTIGATING: ("核查中", "investigating"), Status.CONFIRMED: ("已确认", "confirmed"),
          Status.DISMISSED: ("已排除", "dismissed"), Status.CLOSED: ("已结案", "closed"),
          Status.WITHDRAWN: ("已撤销", "withdrawn")}
NEXT_STEP = {
    Status.NEW: ("下一步：点击「接收」，表示您已看到此预警并负责核实。",
            "Next: press Acknowledge to say you have seen this alert and will check it."),
    Status.ACKNOWLEDGED: ("下一步：按上面「请核实」的提示去核实（如上门查看），开始时点击「开始核查」。",
                     "Next: check as described under What to check (a visit, a call); press Start checking."),
    Status.INVESTIGATING: ("下一步：核实后，情况属实请「确认属实」，不属实请「排除」并选择原因；都要写明核实情况。",
                      "Next: when checked, Confirm it if it is true, or Dismiss it with a reason; write what you found."),
    Status.CONFIRMED: ("下一步：每追回一笔资金就「登记追回」（可多次），全部处理完后点击「结案」。",
                  "Next: record each recovered amount (as many times as needed), then Close the case."),
    Status.DISMISSED: ("此预警已排除。若出现新的事实，系统会重新打开它。", "Dismissed. New facts will reopen it."),
    Status.CLOSED: ("此预警已结案。", "This case is closed."),
    Status.WITHDRAWN: ("此预警已撤销：数据更正后不再成立。", "Withdrawn: corrected data no longer supports it."),
}
SNOOZED_NEXT_STEP = ("此预警已暂缓至 {until}，到期后回到队列；如有新情况，也可以现在处理。",
                     "Snoozed until {until}: it comes back to the queue then. If something new turns up, act on it now.")
# why an alert was dismissed (risk.alerts.lifecycle.DISMISS_REASONS holds the codes), in each language
DISMISS_REASONS = {
    "lawful": ("情形合法（属于法定例外）", "Lawful: a legal exception applies"),
    "data_error": ("数据有误（源数据错误）", "Wrong data: the source data is wrong"),
    "already_handled": ("已另行处理", "Already handled elsewhere"),
    "not_found": ("核实无此情况", "Checked: nothing wrong found"),
    "other": ("其他（见说明）", "Other (see the comment)"),
}
SEVERITY = {Severity.HIGH: ("高", "high"), Severity.MEDIUM: ("中", "medium"), Severity.LOW: ("低", "low")}
ACTIONS = {Action.ACKNOWLEDGE: ("接收", "acknowledged"), Action.INVESTIGATE: ("开始核查", "started checking"),
           Action.CONFIRM: ("确认属实", "confirmed"), Action.DISMISS: ("排除", "dismissed"),
           Action.CLOSE: ("结案", "closed"), Action.RECOVER: ("登记追回", "recorded a recovery"),
           Action.SNOOZE: ("暂缓", "snoozed"), Action.ESCALATE: ("升级", "escalated"),
           Action.VIEW_UNMASKED: ("查看完整身份", "viewed the full identity"),
           Action.REOPEN: ("因新事实重新打开", "reopened on new facts"), Action.RAISE: ("生成预警", "raised")}
METHODS = {Method.BANK_RETURN: ("银行退回", "returned by the bank"),
           Method.DEDUCTION: ("从待遇中扣回", "deducted from benefits"),
           Method.REPAYMENT: ("本人或家属退还", "repaid by the person or family"),
           Method.COURT: ("司法追缴", "recovered by a court"), Method.OTHER: ("其他", "other")}
FACTS = {"payment": ("待遇发放", "payment"), "card_event": ("社保卡使用", "card use"),
         "recipient": ("参保人登记", "recipient record"), "death": ("死亡登记", "death record"),
         "incarceration": ("羁押登记", "custody record"), "feature": ("行为特征", "behaviour feature")}
LEVELS = {Level.VILLAGE: ("村（社区）", "village"), Level.TOWNSHIP: ("乡镇（街道）", "township"),
          Level.COUNTY: ("区县", "county")}


def pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


def translate(key: str, lang: str, **values: object) -> str:
    pair = WORDS.get(key)
    text = pick(pair, lang) if pair else key
    return text.format(**values) if values else text
