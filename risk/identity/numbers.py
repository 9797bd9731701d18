"""Resident ID numbers (GB 11643-1999), contract §3: validation, legacy conversion, masking."""
from __future__ import annotations

import re
from datetime import date

from risk.contract import Personal, Source
from risk.errors import InvalidId

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
_ID18 = re.compile(r"^[0-9]{17}[0-9X]$")
_ID15 = re.compile(r"^[0-9]{15}$")


def check_char(first17: str) -> str:
    return CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def birth_date_of(id18: str) -> date | None:
    try:
        return date(int(id18[6:10]), int(id18[10:12]), int(id18[12:14]))
    except ValueError:
        return None


def gender_of(id18: str) -> str:
    return "M" if int(id18[16]) % 2 == 1 else "F"


def normalise(raw: str, today: date | None = None) -> str:
    """Return the valid 18-character ID for `raw`, or raise InvalidId saying why.

    Upper-cases a trailing x; turns a 15-digit legacy ID into 18 digits (insert "19" after digit 6,
    append the check character). The address code is never checked: abolished codes stay valid.
    """
    value = (raw or "").strip().upper()
    if not value:
        raise InvalidId("身份证号为空 / ID number is empty")
    if _ID15.match(value):
        first17 = value[:6] + "19" + value[6:]
        value = first17 + check_char(first17)
    if not _ID18.match(value):
        raise InvalidId("身份证号格式不符（应为18位，末位数字或X）/ ID number is not 18 characters ending in a digit or X")
    born = birth_date_of(value)
    if born is None:
        raise InvalidId("身份证号中的出生日期不存在 / the birth date in the ID number is not a real date")
    if born > (today or date.today()):
        raise InvalidId("身份证号中的出生日期在未来 / the birth date in the ID number is in the future")
    if check_char(value[:17]) != value[17]:
        raise InvalidId("身份证号校验位错误 / the ID number's check character is wrong")
    return value


def try_normalise(raw: str, today: date | None = None) -> tuple[str | None, str | None]:
    """(normalised ID, None) or (None, reason)."""
    try:
        return normalise(raw, today), None
    except InvalidId as e:
        return None, str(e)


def normalise_many(raw, today: date | None = None):
    """Vectorised `normalise` for a pandas Series of text: the valid 18-character ID, or missing where the
    value cannot be made valid. Same rules as `normalise`; used on every delivered row."""
    import numpy as np
    import pandas as pd

    values = pd.Series(raw, dtype="str").str.strip().str.upper()
    legacy = values.str.fullmatch(r"[0-9]{15}", na=False)
    values = values.where(~legacy, values.str.slice(0, 6) + "19" + values.str.slice(6))
    first17 = values.where(legacy, values.str.slice(0, 17))
    shaped = values.str.fullmatch(r"[0-9]{17}[0-9X]", na=False) | legacy
    out = pd.Series(pd.NA, index=values.index, dtype="str")
    if not shaped.any():
        return out
    digits17 = first17[shaped].to_numpy(dtype="U17").astype("S17")
    matrix = np.frombuffer(digits17.tobytes(), dtype=np.uint8).reshape(-1, 17).astype(np.int64) - 48
    checks = np.array(list(CHECK_CHARS))[(matrix @ np.array(WEIGHTS)) % 11]
    ok_ids = first17[shaped].to_numpy(dtype=object) + checks
    delivered_check = values[shaped].str.slice(17, 18).to_numpy(dtype=object)
    right = np.where(legacy[shaped].to_numpy(), True, delivered_check == checks)
    born = pd.to_datetime(pd.Series(ok_ids).str.slice(6, 14), format="%Y%m%d", errors="coerce")
    limit = pd.Timestamp(today or date.today())
    valid = right & born.notna().to_numpy() & (born <= limit).to_numpy()
    good = pd.Series(np.where(valid, ok_ids, None), index=values[shaped].index, dtype="str")
    out[shaped] = good
    return out


def mask_id(person_id: str | None) -> str:
    """`430102********1234`: keep the address code and the last four characters."""
    if not person_id:
        return ""
    if len(person_id) < 10:
        return "*" * len(person_id)
    return person_id[:6] + "*" * (len(person_id) - 10) + person_id[-4:]


def mask_number(number: str | None) -> str:
    """`***********1234`: a bank account, card or phone number keeps its last four characters, when it has
    at least ten (a shorter one is starred whole: four would be too much of it)."""
    if not number:
        return ""
    if len(number) < 10:
        return "*" * len(number)
    return "*" * (len(number) - 4) + number[-4:]


def mask(value: str | None, kind: Personal) -> str:
    """`value` masked as the contract declares its column's personal information (risk.contract.Personal)."""
    return {Personal.ID: mask_id, Personal.NAME: mask_name, Personal.NUMBER: mask_number}[kind](value)


def masked_key(source: Source, key: str) -> str:
    """A record's key as a report shows it: masked when the key itself is personal (a recipient's ID)."""
    kind = source.personal.get(source.key)
    return mask(key, kind) if kind is not None else key


def mask_name(name: str | None) -> str:
    """`张*`, `欧阳**`: keep the first character (the family name)."""
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1) if len(name) > 1 else "*"
