"""The dashboard's numbers and pictures for one user, their area only (risk.web.dashboard reads, risk.web.charts
draws): alerts and amount at risk by county and month, recovered against at risk, escalations."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection

from risk import words
from risk.alerts.export import yuan
from risk.alerts.lifecycle import User
from risk.domain import ESCALATION
from risk.web import charts, dashboard


def _yuan(cents: int) -> Decimal:
    return Decimal(yuan(cents))


def build(conn: Connection, u: User, lang: str) -> dict:
    def t(key: str, **values: object) -> str:
        return words.t(key, lang, **values)

    s = dashboard.summary(conn, u)
    stats = [(t("web.open_alerts"), f"{s['open_alerts']:,}"), (t("web.open_amount"), f"¥{yuan(s['open_at_risk_cents'])}"),
             (t("web.confirmed"), f"{s['confirmed_alerts']:,}"), (t("web.recovered"), f"¥{yuan(s['recovered_cents'])}"),
             (t("web.escalated"), f"{s['escalated_alerts']:,}")]

    rows = dashboard.by_county_month(conn, u)
    months = sorted({r["month"] for r in rows})
    counties = sorted({(r["county_code"], r["county_name"]) for r in rows})
    cell = {(r["county_code"], r["month"]): r for r in rows}
    count_unit, money_unit = t("chart.count_unit"), t("chart.money_unit")
    alerts_by_county = {name: [cell[(code, m)]["alerts"] if (code, m) in cell else 0 for m in months]
                        for code, name in counties}
    amount_by_county = {name: [_yuan(cell[(code, m)]["amount_at_risk_cents"]) if (code, m) in cell else Decimal(0)
                               for m in months] for code, name in counties}

    recovery = dashboard.recovered_vs_at_risk(conn, u)
    at_risk = t("chart.confirmed_at_risk")
    recovered = t("web.recovered")

    esc = dashboard.escalations(conn, u)
    esc_months = sorted({r["month"] for r in esc})
    levels = [lv for lv in ESCALATION if any(r["level"] == lv for r in esc)]
    by_level = {words.word("level", lv, lang): [sum(r["escalations"] for r in esc if r["month"] == m and r["level"] == lv)
                                         for m in esc_months] for lv in levels}

    title, amount_at_risk = t("web.by_county_month"), t("web.amount_at_risk")
    charts_ = [
        (t("chart.with_unit", title=title, unit=count_unit),
         charts.stacked_bar_chart(title, months, alerts_by_county, count_unit) if months else charts.empty_chart(title)),
        (t("chart.with_unit", title=amount_at_risk, unit=money_unit),
         charts.stacked_bar_chart(amount_at_risk, months, amount_by_county, money_unit) if months
         else charts.empty_chart(amount_at_risk)),
        (t("web.recovered_vs_risk"),
         charts.grouped_bar_chart(t("web.recovered_vs_risk"), [r["county_name"] for r in recovery],
                                  {at_risk: [_yuan(r["confirmed_at_risk_cents"]) for r in recovery],
                                   recovered: [_yuan(r["recovered_cents"]) for r in recovery]}, money_unit)
         if recovery else charts.empty_chart(t("web.recovered_vs_risk"))),
        (t("web.escalations"),
         charts.stacked_bar_chart(t("web.escalations"), esc_months, by_level, count_unit) if esc_months
         else charts.empty_chart(t("web.escalations"))),
    ]
    return {"stats": stats, "charts": charts_}
