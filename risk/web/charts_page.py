"""The dashboard's numbers and pictures for one user, their area only (risk.web.dashboard reads, risk.web.charts
draws): alerts and amount at risk by county and month, recovered against at risk, escalations."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection

from risk.alerts.export import yuan
from risk.alerts.lifecycle import User
from risk.web import charts, dashboard
from risk.web.i18n import LEVELS, pick, translate


def _yuan(cents: int) -> Decimal:
    return Decimal(yuan(cents))


def build(conn: Connection, u: User, lang: str) -> dict:
    def t(key: str) -> str:
        return translate(key, lang)

    s = dashboard.summary(conn, u)
    stats = [(t("open_alerts"), f"{s['open_alerts']:,}"), (t("open_amount"), f"¥{yuan(s['open_at_risk_cents'])}"),
             (t("confirmed"), f"{s['confirmed_alerts']:,}"), (t("recovered"), f"¥{yuan(s['recovered_cents'])}"),
             (t("escalated"), f"{s['escalated_alerts']:,}")]

    rows = dashboard.by_county_month(conn, u)
    months = sorted({r["month"] for r in rows})
    counties = sorted({(r["county_code"], r["county_name"]) for r in rows})
    cell = {(r["county_code"], r["month"]): r for r in rows}
    count_unit = "件" if lang != "en" else "alerts"
    money_unit = "元" if lang != "en" else "yuan"
    alerts_by_county = {name: [cell[(code, m)]["alerts"] if (code, m) in cell else 0 for m in months]
                        for code, name in counties}
    amount_by_county = {name: [_yuan(cell[(code, m)]["amount_at_risk_cents"]) if (code, m) in cell else Decimal(0)
                               for m in months] for code, name in counties}

    recovery = dashboard.recovered_vs_at_risk(conn, u)
    at_risk = "已确认涉及金额" if lang != "en" else "confirmed at risk"
    recovered = t("recovered")

    esc = dashboard.escalations(conn, u)
    esc_months = sorted({r["month"] for r in esc})
    levels = [lv for lv in LEVELS if any(r["level"] == lv for r in esc)]
    by_level = {pick(LEVELS[lv], lang): [sum(r["escalations"] for r in esc if r["month"] == m and r["level"] == lv)
                                         for m in esc_months] for lv in levels}

    title = t("by_county_month")
    charts_ = [
        (f"{title}（{count_unit}）" if lang != "en" else f"{title} ({count_unit})",
         charts.stacked_bar_chart(title, months, alerts_by_county, count_unit) if months else charts.empty_chart(title)),
        (f"{t('amount_at_risk')}（{money_unit}）" if lang != "en" else f"{t('amount_at_risk')} ({money_unit})",
         charts.stacked_bar_chart(t("amount_at_risk"), months, amount_by_county, money_unit) if months
         else charts.empty_chart(t("amount_at_risk"))),
        (t("recovered_vs_risk"),
         charts.grouped_bar_chart(t("recovered_vs_risk"), [r["county_name"] for r in recovery],
                                  {at_risk: [_yuan(r["confirmed_at_risk_cents"]) for r in recovery],
                                   recovered: [_yuan(r["recovered_cents"]) for r in recovery]}, money_unit)
         if recovery else charts.empty_chart(t("recovered_vs_risk"))),
        (t("escalations"),
         charts.stacked_bar_chart(t("escalations"), esc_months, by_level, count_unit) if esc_months
         else charts.empty_chart(t("escalations"))),
    ]
    return {"stats": stats, "charts": charts_}
