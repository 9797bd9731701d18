"""What each behavioural feature means, in words a village supervisor can act on.

`CATALOGUE` names every column `risk.scoring.features.compute_features` returns (same order): its
meaning in Chinese and English, its unit, which direction is unusual, and the neutral value a person
gets when the feature has nothing to measure (no card use, no payment in the window, ...).
`describe` turns one value and what similar people show into a plain sentence for an anomaly alert:

    >>> describe("night_share", 0.62, 0.03, "zh")
    '夜间（0–5点）用卡占比 62%，同类人员通常为 3%'
    >>> describe("night_share", 0.62, 0.03, "en")
    '62% of card use at night (0–5 h); people like them: 3%'
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Unit(StrEnum):
    SHARE = "share"  # 0-1, shown as a percentage
    PER_30_DAYS = "per_30_days"  # count of card events per 30 days
    COUNT = "count"  # a count of events
    COUNTIES = "counties"
    YUAN = "yuan"  # CNY (the warehouse holds fen; features are in yuan)
    YUAN_PER_30_DAYS = "yuan_per_30_days"
    RATIO = "ratio"  # a multiple of what peers get
    DAYS = "days"
    YEARS = "years"
    PEOPLE = "people"


class Unusual(StrEnum):
    HIGH = "high"  # the larger, the more unusual
    LOW = "low"
    BOTH = "both"  # far from peers either way


@dataclass(frozen=True)
class Feature:
    name: str
    zh: str  # what it measures, as a label
    en: str
    unit: Unit
    unusual: Unusual
    neutral: float  # the value given when there is nothing to measure (never NaN)
    note_en: str = ""  # how it is computed, for the model's readers and auditors


_FEATURES: tuple[Feature, ...] = (
    Feature("medical_per_30d", "就医刷卡次数（每30天）", "medical visits paid by card per 30 days",
            Unit.PER_30_DAYS, Unusual.HIGH, 0.0, "medical card events in the window × 30 / window days"),
    Feature("pharmacy_per_30d", "药店购药次数（每30天）", "pharmacy purchases per 30 days",
            Unit.PER_30_DAYS, Unusual.HIGH, 0.0, "pharmacy card events in the window × 30 / window days"),
    Feature("withdrawal_per_30d", "取款次数（每30天）", "cash withdrawals per 30 days",
            Unit.PER_30_DAYS, Unusual.HIGH, 0.0, "withdrawal card events in the window × 30 / window days"),
    Feature("transit_per_30d", "乘车刷卡次数（每30天）", "transit rides paid by card per 30 days",
            Unit.PER_30_DAYS, Unusual.HIGH, 0.0, "transit card events in the window × 30 / window days"),
    Feature("other_per_30d", "其他刷卡次数（每30天）", "other card uses per 30 days",
            Unit.PER_30_DAYS, Unusual.HIGH, 0.0, "card events of type `other` in the window × 30 / window days"),
    Feature("night_share", "夜间（0–5点）用卡占比", "share of card use at night (0–5 h)",
            Unit.SHARE, Unusual.HIGH, 0.0,
            "card events at Beijing hour 0-5 / all card events in the window (certifications included); "
            "0 without card use"),
    Feature("away_share", "在户籍所在县以外用卡占比", "share of card use outside the home county",
            Unit.SHARE, Unusual.HIGH, 0.0,
            "card events whose county is not the county of the person's village (its first 6 digits) / all "
            "card events in the window; 0 without card use"),
    Feature("distinct_counties", "用卡涉及的县（区）数", "counties the card was used in",
            Unit.COUNTIES, Unusual.HIGH, 0.0, "distinct county_code of the window's card events"),
    Feature("pharmacy_busiest_day", "同一药店单日最多购药次数", "most purchases at one pharmacy on one day",
            Unit.COUNT, Unusual.HIGH, 0.0, "max over (pharmacy, Beijing day) of the pharmacy events there"),
    Feature("pharmacy_busiest_month", "同一药店单月最多购药次数", "most purchases at one pharmacy in one month",
            Unit.COUNT, Unusual.HIGH, 0.0,
            "max over (pharmacy, calendar month) of the window's pharmacy events there (the window's first "
            "and last months count only their days inside the window)"),
    Feature("card_amount_per_30d", "刷卡金额（每30天）", "amount spent or withdrawn by card per 30 days",
            Unit.YUAN_PER_30_DAYS, Unusual.HIGH, 0.0, "sum of card event amounts in the window × 30 / window days"),
    Feature("card_max_amount", "单笔最大刷卡金额", "largest single card amount",
            Unit.YUAN, Unusual.HIGH, 0.0, "max card event amount in the window"),
    Feature("withdrawal_amount_share", "取款金额占刷卡总金额的比例", "share of the card amount that was cash withdrawn",
            Unit.SHARE, Unusual.HIGH, 0.0, "withdrawal amounts / all card amounts in the window; 0 without any"),
    Feature("payment_peer_ratio", "月待遇金额与同县同类待遇中位数之比",
            "monthly benefit compared with the median of the same benefit in the same county",
            Unit.RATIO, Unusual.BOTH, 1.0,
            "per recurring benefit type paid in the window (by paid_on): the person's amount per paid period, "
            "divided by the median of that over everyone with the same benefit type and home county; the "
            "largest of the person's types; 1 when nothing recurring was paid in the window"),
    Feature("days_since_certification", "距最近一次资格认证的天数", "days since the last eligibility certification",
            Unit.DAYS, Unusual.HIGH, 0.0,
            "as_of minus the latest certification on or before as_of (last_certified_on of the recipients "
            "row, any delivered certification date, or a certification card event); with none on record, "
            "counted from the first day of the first paid recurring period as contract §4 does; 0 when there "
            "is neither"),
    Feature("age", "年龄", "age", Unit.YEARS, Unusual.BOTH, 0.0, "completed years at as_of from birth_date"),
    Feature("account_people", "同一收款账户上领取待遇的人数", "people whose benefits go to the same bank account",
            Unit.PEOPLE, Unusual.HIGH, 1.0,
            "distinct people paid in the window into any account the person was paid into (the person "
            "included); 1 when the person was paid nothing in the window"),
    Feature("other_account_share", "打入非本人登记账户的待遇占比",
            "share of benefits paid into an account other than the person's registered one",
            Unit.SHARE, Unusual.HIGH, 0.0,
            "payment amount in the window into an account other than recipient.bank_account / all payment "
            "amount in the window; 0 when nothing was paid"),
    Feature("days_since_card_use", "距最近一次用卡的天数", "days since the card was last used",
            Unit.DAYS, Unusual.HIGH, 0.0,
            "as_of minus the latest card event on or before as_of (any type, any time); a person paid while "
            "the card lies unused may have died unreported. Never used: the days from the warehouse's first "
            "card event to as_of (as long as the records can tell)"),
)

CATALOGUE: dict[str, Feature] = {f.name: f for f in _FEATURES}
FEATURE_NAMES: tuple[str, ...] = tuple(CATALOGUE)

# Sentences: {v} is the formatted value with its unit.
_ZH_SENTENCE = {
    "medical_per_30d": "每30天就医刷卡 {v}",
    "pharmacy_per_30d": "每30天药店购药 {v}",
    "withdrawal_per_30d": "每30天取款 {v}",
    "transit_per_30d": "每30天乘车刷卡 {v}",
    "other_per_30d": "每30天其他刷卡 {v}",
    "night_share": "夜间（0–5点）用卡占比 {v}",
    "away_share": "在户籍所在县以外用卡占比 {v}",
    "distinct_counties": "在 {v}县（区）用过卡",
    "pharmacy_busiest_day": "同一药店一天内最多购药 {v}",
    "pharmacy_busiest_month": "同一药店一个月内最多购药 {v}",
    "card_amount_per_30d": "每30天刷卡金额 {v}",
    "card_max_amount": "单笔最大刷卡金额 {v}",
    "withdrawal_amount_share": "刷卡金额中取现占 {v}",
    "payment_peer_ratio": "月待遇为同县同类待遇中位数的 {v}",
    "days_since_certification": "距最近一次资格认证已 {v}",
    "age": "年龄 {v}",
    "account_people": "同一收款账户上领取待遇的有 {v}",
    "other_account_share": "打入非本人登记账户的待遇占 {v}",
    "days_since_card_use": "距最近一次用卡已 {v}",
}

# English sentences: {v} is the formatted value.
_EN_SENTENCE = {
    "medical_per_30d": "{v} medical visits paid by card per 30 days",
    "pharmacy_per_30d": "{v} pharmacy purchases per 30 days",
    "withdrawal_per_30d": "{v} cash withdrawals per 30 days",
    "transit_per_30d": "{v} transit rides per 30 days",
    "other_per_30d": "{v} other card uses per 30 days",
    "night_share": "{v} of card use at night (0–5 h)",
    "away_share": "{v} of card use outside the home county",
    "distinct_counties": "card used in {v}",
    "pharmacy_busiest_day": "up to {v} purchases at one pharmacy on one day",
    "pharmacy_busiest_month": "up to {v} purchases at one pharmacy in one month",
    "card_amount_per_30d": "{v} spent or withdrawn by card per 30 days",
    "card_max_amount": "largest single card amount {v}",
    "withdrawal_amount_share": "{v} of the card amount withdrawn as cash",
    "payment_peer_ratio": "monthly benefit {v} the median of the same benefit in the same county",
    "days_since_certification": "last certified {v} ago",
    "age": "aged {v}",
    "account_people": "{v} paid into the same bank account",
    "other_account_share": "{v} of benefits paid into an account not registered as theirs",
    "days_since_card_use": "card last used {v} ago",
}


def _number(x: float) -> str:
    """1 decimal below 10 (but no trailing .0), whole numbers with thousands separators above."""
    if abs(x) < 10 and round(x, 1) != round(x):
        return f"{x:.1f}"
    return f"{round(x):,}"


def format_value(name: str, value: float, lang: str = "zh") -> str:
    """The value with its unit, as a person reads it ("62%", "3.5 次", "¥1,200", "400 days"); English
    counts are bare numbers (their sentence names what is counted)."""
    _check_lang(lang)
    unit = CATALOGUE[name].unit
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    zh = lang == "zh"
    if unit is Unit.SHARE:
        pct = 100 * value
        return f"{pct:.1f}%" if 0 < pct < 1 else f"{round(pct)}%"
    if unit is Unit.PER_30_DAYS or unit is Unit.COUNT:  # the English sentence names what is counted
        n = _number(value)
        return f"{n} 次" if zh else n
    if unit is Unit.COUNTIES:
        n = _number(value)
        return f"{n} 个" if zh else f"{n} count{'y' if n == '1' else 'ies'}"
    if unit is Unit.YUAN or unit is Unit.YUAN_PER_30_DAYS:
        return f"{round(value):,} 元" if zh else f"¥{round(value):,}"
    if unit is Unit.RATIO:
        return f"{value:.1f} 倍" if zh else f"{value:.1f}×"
    if unit is Unit.DAYS:
        n = f"{round(value):,}"
        return f"{n} 天" if zh else f"{n} day{'' if n == '1' else 's'}"
    if unit is Unit.YEARS:
        return f"{int(value)} 岁" if zh else f"{int(value)}"
    if unit is Unit.PEOPLE:
        n = _number(value)
        return f"{n} 人" if zh else f"{n} {'person' if n == '1' else 'people'}"
    raise AssertionError(unit)  # pragma: no cover - every unit is handled above


def describe(name: str, value: float, peer_value: float | None = None, lang: str = "zh") -> str:
    """A plain sentence: the person's value and, when given, what people like them show.

    `peer_value` is whatever the caller compares with (typically the median over the person's peers);
    None leaves the comparison out."""
    _check_lang(lang)
    if name not in CATALOGUE:
        raise KeyError(f"no feature {name!r} in the catalogue")
    if lang == "zh":
        text = _ZH_SENTENCE[name].format(v=format_value(name, value, "zh"))
        if peer_value is not None:
            text += f"，同类人员通常为 {format_value(name, peer_value, 'zh')}"
        return text
    text = _EN_SENTENCE[name].format(v=format_value(name, value, "en"))
    if peer_value is not None:
        text += f"; people like them: {format_value(name, peer_value, 'en')}"
    return text


def _check_lang(lang: str) -> None:
    if lang not in ("zh", "en"):
        raise ValueError(f"lang must be 'zh' or 'en', not {lang!r}")
