"""Every kind of alert (contract §4), one entry each: the rules of law, each `sql/rules/<code>.sql` plus its
entry here, and `anomaly`, raised by behaviour scoring (risk.scoring.nightly), not by SQL. An entry gives the
code, version, severity, score, titles and the plain explanation of what to check; a new kind of alert is
added here (its code in risk.domain.RuleCode, which must match these entries exactly, and a migration that
lets `alert.rule` hold it). Detection runs `RULES`, the entries with SQL.

A rule's SQL returns one row per fact behind an alert: person_id, fact (table), fact_id, flagged (1 for a
fact the rule flags, 0 for context such as the death record), at_risk_cents, delivery_day, source_file,
source_line, detail. The SQL is the same for SQLite and PostgreSQL; the few date expressions that differ
are macros from a fixed list (the dialect's `rule_macros`, risk.db.dialect), rendered here (values are never
pasted into SQL).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jinja2 import Environment, StrictUndefined

from risk.contract import RECURRING
from risk.db.dialect import Dialect
from risk.domain import RuleCode, Severity
from risk.settings import ROOT

RULES_DIR = ROOT / "sql" / "rules"
TOUCHED_DIR = ROOT / "sql" / "touched"  # per rule: whose alert the facts a night brings can change
EVIDENCE_COLUMNS = ("person_id", "fact", "fact_id", "flagged", "at_risk_cents", "delivery_day", "source_file",
                    "source_line", "detail")


@dataclass(frozen=True)
class Rule:
    code: RuleCode
    version: int
    severity: Severity
    score: float  # rule confidence, higher is riskier (a scoring entry's alerts carry the person's own score)
    title_zh: str
    title_en: str
    explain_zh: str
    explain_en: str
    # whether a person's alert depends on that person's facts only (detection split by county then reads
    # only the county's facts); shared_account compares people with each other
    per_person: bool = True
    # raised by behaviour scoring (risk.scoring.nightly), not by a SQL file: detection never runs it
    by_scoring: bool = False

    def title(self, lang: str) -> str:
        return self.title_en if lang == "en" else self.title_zh

    @property
    def path(self):
        self._needs_sql()
        return RULES_DIR / f"{self.code}.sql"

    def sql(self, dialect: Dialect) -> str:
        self._needs_sql()
        return _render(RULES_DIR, self.code, dialect)

    def _needs_sql(self) -> None:
        if self.by_scoring:
            raise ValueError(f"{self.code} is raised by behaviour scoring: it has no SQL")

    def touched_sql(self, dialect: Dialect) -> str:
        """The people whose alert of this rule the night's new and removed facts can change (a superset):
        sql/touched/<code>.sql, reading the night's facts from new_payment, new_card_event, new_death,
        new_incarceration, new_certification and removed (see risk.detection.scope)."""
        self._needs_sql()
        return _render(TOUCHED_DIR, self.code, dialect)


ENTRIES: tuple[Rule, ...] = (
    Rule(RuleCode.DECEASED_PAYMENT, 1, Severity.HIGH, 1.0, "死亡后仍发放待遇", "Benefit paid after death",
         "此人有死亡登记，但死亡当月之后的月份仍有按月待遇发放。请核实此人是否确已死亡、由谁在领取，并停发、追回。",
         "A death is registered, yet a monthly benefit was paid for months after the month of death. Check that "
         "the person has died and who receives the money; stop the payments and recover them."),
    Rule(RuleCode.CARD_AFTER_DEATH, 1, Severity.HIGH, 0.95, "死亡后社保卡仍在使用", "Card used after death",
         "此人死亡之后，其社保卡仍有就医、购药、认证或乘车记录（取款和死亡前入院的住院结算除外）。请核实卡在谁手中。",
         "After the person's death the social-security card was used for medical care, pharmacy, certification "
         "or transit (withdrawals and inpatient stays admitted before death excepted). Find out who holds the card."),
    Rule(RuleCode.INCARCERATED_PAYMENT, 1, Severity.HIGH, 1.0, "服刑期间领取养老金", "Pension paid while in prison",
         "此人被判处实刑（拘役、有期徒刑及以上），服刑期间（入狱次月至释放当月）仍领取养老金。请核实服刑情况并暂停发放。",
         "The person serves a custodial sentence, yet a pension was paid for months from the month after the "
         "sentence started to the month of release. Check the custody record and suspend the pension."),
    Rule(RuleCode.DUAL_BENEFIT, 1, Severity.MEDIUM, 0.9, "重复享受待遇", "Two benefits for one month",
         "同一月份既领城乡居民养老金又领职工养老金，或领失业金的同时领养老金。请核实并停发其中不应领取的一项。",
         "In one month the person received both the resident and the employee pension, or unemployment benefit "
         "together with a pension. Check which one is due and stop the other."),
    Rule(RuleCode.DUPLICATE_PAYMENT, 1, Severity.MEDIUM, 0.9, "重复发放", "Paid twice",
         "同一人同一待遇同一月份发放了不止一次，或丧葬补助金发放了不止一次。除最早一笔外均为多发。",
         "The same benefit for the same month was paid more than once (or a funeral grant more than once). All "
         "but the earliest payment are overpaid."),
    Rule(RuleCode.SHARED_ACCOUNT, 1, Severity.MEDIUM, 0.7, "多人共用一个账户", "One account, many people",
         "同一月份有三人或以上的待遇打入同一个银行账户（夫妻两人共用不算）。请核实账户户主及各人是否本人领取。",
         "In one month the benefits of three or more people went into the same bank account (a couple sharing "
         "one is fine). Check who owns the account and whether each person receives their own money.",
         per_person=False),
    Rule(RuleCode.UNDERAGE_PENSION, 1, Severity.HIGH, 1.0, "未到年龄领取养老金", "Pension before pension age",
         "按身份证出生日期，此人领取养老金的月份早于法定最低年龄（城乡居民60岁；职工女45岁、男50岁）。请核实身份与资格。",
         "By the birth date in the ID number the pension was paid for months before the lowest legal age "
         "(resident pension 60; employee pension 45 for women, 50 for men). Check identity and eligibility."),
    Rule(RuleCode.CERTIFICATION_OVERDUE, 1, Severity.LOW, 0.6, "超期未认证仍发放", "Paid without certification",
         "此人最近一次待遇资格认证已超过12个月，仍在发放待遇。请上门或通知本人完成认证。",
         "The person's last eligibility certification is more than 12 months old, yet benefits are still paid. "
         "Visit the person or ask them to certify."),
    Rule(RuleCode.ANOMALY, 1, Severity.MEDIUM, 0.0, "行为异常", "Unusual behaviour",
         "此人近期的社保卡使用和待遇领取情况与全市其他人相比非常少见（行为评分排在全市前列）。请按预警所列的原因逐条核实，"
         "看是否有他人冒用社保卡或代领待遇。",
         "The person's recent card use and benefit payments are among the most unusual in the city (the "
         "behaviour score ranks them near the top). Check each reason the alert lists: is someone else using the "
         "card or collecting the benefits?", by_scoring=True),
)
RULES = tuple(e for e in ENTRIES if not e.by_scoring)  # the rules of law: what detection runs
BY_CODE: dict[str, Rule] = {r.code: r for r in RULES}
ENTRY: dict[str, Rule] = {e.code: e for e in ENTRIES}  # every kind of alert, anomaly too
ANOMALY = ENTRY[RuleCode.ANOMALY]
if set(ENTRY) != set(RuleCode) or len(ENTRY) != len(ENTRIES):
    raise RuntimeError(f"risk.domain.RuleCode and the registry's entries must name the same codes once each: "
                       f"{sorted(set(RuleCode) ^ set(ENTRY))}")


def title(code: str, lang: str) -> str:
    """The title of an alert of `code` in `lang` (zh unless en); an unknown code is its own title."""
    entry = ENTRY.get(code)
    return entry.title(lang) if entry else code


def listed() -> list[str]:
    """Every code in the order lists of alert kinds show them: the rules of law alphabetically, then the
    scoring entries."""
    return sorted(BY_CODE) + [e.code for e in ENTRIES if e.by_scoring]


# ---------------------------------------------------------------- rendering

def _id_birthday_text(pid: str, years: str | int) -> str:
    """The birthday at `years` of age of the person with ID `pid`, as YYYY-MM-DD text (same on both)."""
    age = years if isinstance(years, str) else str(int(years))
    return (f"(CAST(CAST(substr({pid}, 7, 4) AS INTEGER) + {age} AS TEXT) || '-' || substr({pid}, 11, 2)"
            f" || '-' || substr({pid}, 13, 2))")


@cache
def _render(folder: Path, code: str, dialect: Dialect) -> str:
    env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    template = env.from_string((folder / f"{code}.sql").read_text(encoding="utf-8"))
    recurring = "(" + ", ".join(f"'{b}'" for b in RECURRING) + ")"
    return template.render(**dialect.rule_macros, id_birthday_text=_id_birthday_text, recurring=recurring)
