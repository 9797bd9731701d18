"""The data contract's sources (docs/data-contract.md §1-2) as data.

Everything that needs to know a source's columns, key, kind or value domains reads it from here:
the reader, the Great Expectations suites, the loader and the warehouse tables.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from risk.domain import Level, Role, values


class Kind(StrEnum):
    APPEND = "append"  # facts: the earliest delivery of a key stands
    UPSERT = "upsert"  # master data: the latest delivery of a key stands


class Type(StrEnum):
    TEXT = "text"
    DATE = "date"  # YYYY-MM-DD
    MONTH = "month"  # YYYY-MM, stored as the first day of the month
    TIMESTAMP = "timestamp"  # ISO 8601 with offset, stored as UTC and Beijing day
    MONEY = "money"  # CNY, at most two decimals, exact
    PERSON_ID = "person_id"  # resident ID, normalised per §3
    REGION_CODE = "region_code"  # 12 digits
    ENUM = "enum"


class Personal(StrEnum):
    """Personal information (PIPL) a column holds, and so how it is masked wherever it is shown masked
    (risk.identity.numbers.mask): declared here per column, never guessed from a column's name."""
    ID = "id"  # a resident ID number: 430102********1234
    NAME = "name"  # a person's name: 张*
    NUMBER = "number"  # a bank account, card or phone number: ***********1234


@dataclass(frozen=True)
class Column:
    name: str
    type: Type = Type.TEXT
    required: bool = True
    values: tuple[str, ...] = ()  # for ENUM
    min_value: float | None = None  # for MONEY
    strict_min: bool = False  # min_value itself is not allowed
    zh: str = ""
    personal: Personal | None = None  # personal information, masked as its kind says


@dataclass(frozen=True)
class Source:
    name: str
    kind: Kind
    key: str
    columns: tuple[Column, ...]
    zh: str
    en: str
    table: str = ""
    extra_checks: tuple[str, ...] = field(default=())

    @property
    def file_stem(self) -> str:
        return self.name

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def personal(self) -> dict[str, Personal]:
        """The columns that hold personal information, and their kind."""
        return {c.name: c.personal for c in self.columns if c.personal is not None}

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


RECURRING = ("resident_pension", "employee_pension", "unemployment", "work_injury")
LUMP_SUMS = ("funeral_grant", "survivor_benefit", "account_inheritance")
BENEFIT_TYPES = RECURRING + LUMP_SUMS
EVENT_TYPES = ("medical", "pharmacy", "withdrawal", "certification", "transit", "other")
DEATH_SOURCES = ("public_security", "health", "civil_affairs")
SENTENCE_TYPES = ("custodial", "probation", "surveillance", "parole", "outside_prison", "pretrial")
LEVELS = values(Level)  # top down
ROLES = values(Role)

REGIONS = Source(
    "regions", Kind.UPSERT, "code",
    (
        Column("code", Type.REGION_CODE, zh="区划代码"),
        Column("name", zh="名称"),
        Column("level", Type.ENUM, values=LEVELS, zh="层级"),
        Column("parent_code", Type.REGION_CODE, required=False, zh="上级代码"),
    ),
    zh="行政区划", en="regions", table="region",
    extra_checks=("region_code_shape", "parent_present"),
)

RECIPIENTS = Source(
    "recipients", Kind.UPSERT, "person_id",
    (
        Column("person_id", Type.PERSON_ID, zh="身份证号", personal=Personal.ID),
        Column("name", zh="姓名", personal=Personal.NAME),
        Column("gender", Type.ENUM, values=("M", "F"), zh="性别"),
        Column("birth_date", Type.DATE, zh="出生日期"),
        Column("village_code", Type.REGION_CODE, zh="村（社区）代码"),
        Column("bank_account", zh="银行账号", personal=Personal.NUMBER),
        Column("card_no", zh="社保卡号", personal=Personal.NUMBER),
        Column("last_certified_on", Type.DATE, required=False, zh="最近资格认证日期"),
        Column("phone", required=False, zh="电话", personal=Personal.NUMBER),
    ),
    zh="待遇领取人员", en="recipients", table="recipient",
    extra_checks=("id_agrees", "known_village", "card_no_shape"),
)

PAYMENTS = Source(
    "payments", Kind.APPEND, "payment_id",
    (
        Column("payment_id", zh="支付编号"),
        Column("person_id", Type.PERSON_ID, zh="身份证号", personal=Personal.ID),
        Column("benefit_type", Type.ENUM, values=BENEFIT_TYPES, zh="待遇类型"),
        Column("period", Type.MONTH, zh="待遇所属期"),
        Column("amount", Type.MONEY, min_value=0, strict_min=True, zh="金额"),
        Column("paid_on", Type.DATE, zh="发放日期"),
        Column("bank_account", zh="入账账号", personal=Personal.NUMBER),
    ),
    zh="待遇发放", en="payments", table="payment",
)

CARD_EVENTS = Source(
    "card_events", Kind.APPEND, "event_id",
    (
        Column("event_id", zh="用卡记录编号"),
        Column("person_id", Type.PERSON_ID, zh="持卡人身份证号", personal=Personal.ID),
        Column("card_no", zh="社保卡号", personal=Personal.NUMBER),
        Column("occurred_at", Type.TIMESTAMP, zh="发生时间"),
        Column("event_type", Type.ENUM, values=EVENT_TYPES, zh="用卡类型"),
        Column("county_code", Type.REGION_CODE, zh="发生地县区代码"),
        Column("institution_id", zh="机构编号"),
        Column("amount", Type.MONEY, min_value=0, zh="金额"),
        Column("admitted_on", Type.DATE, required=False, zh="入院日期"),
    ),
    zh="社保卡使用", en="card events", table="card_event",
)

DEATHS = Source(
    "deaths", Kind.APPEND, "record_id",
    (
        Column("record_id", zh="记录编号"),
        Column("person_id", Type.PERSON_ID, zh="身份证号", personal=Personal.ID),
        Column("name", zh="姓名", personal=Personal.NAME),
        Column("death_date", Type.DATE, zh="死亡日期"),
        Column("source", Type.ENUM, values=DEATH_SOURCES, zh="来源部门"),
        Column("reported_on", Type.DATE, zh="共享日期"),
    ),
    zh="死亡登记", en="death records", table="death",
)

INCARCERATIONS = Source(
    "incarcerations", Kind.APPEND, "record_id",
    (
        Column("record_id", zh="记录编号"),
        Column("person_id", Type.PERSON_ID, zh="身份证号", personal=Personal.ID),
        Column("name", zh="姓名", personal=Personal.NAME),
        Column("sentence_type", Type.ENUM, values=SENTENCE_TYPES, zh="刑罚类型"),
        Column("start_date", Type.DATE, zh="开始日期"),
        Column("end_date", Type.DATE, required=False, zh="释放日期"),
    ),
    zh="服刑羁押", en="custody records", table="incarceration",
    extra_checks=("end_after_start",),
)

SUPERVISORS = Source(
    "supervisors", Kind.UPSERT, "user_id",
    (
        Column("user_id", zh="用户名"),
        Column("name", zh="姓名", personal=Personal.NAME),
        Column("role", Type.ENUM, values=ROLES, zh="角色"),
        Column("region_code", Type.REGION_CODE, zh="负责区划代码"),
        Column("email", required=False, zh="邮箱"),
        Column("notify_url", required=False, zh="通知地址"),
    ),
    zh="监督人员", en="supervisors", table="supervisor",
    extra_checks=("known_region",),
)

# Load order inside one delivery day: master data first, so that facts of the same day can be checked
# against the villages and regions delivered with them.
SOURCES: tuple[Source, ...] = (
    REGIONS, RECIPIENTS, SUPERVISORS, PAYMENTS, CARD_EVENTS, DEATHS, INCARCERATIONS,
)
BY_NAME = {s.name: s for s in SOURCES}
