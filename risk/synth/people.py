"""The population: recipients with valid IDs, ages that fit their one recurring benefit, accounts,
cards and certification dates that keep the background clean of every §4 rule."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from risk.identity.numbers import CHECK_CHARS, WEIGHTS
from risk.synth.names import person_names
from risk.synth.regions import FOREIGN_ADDRESS, Regions
from risk.synth.timeline import Calendar

BENEFITS = ("resident_pension", "employee_pension", "unemployment", "work_injury")
RES, EMP, UNEMP, INJURY = 0, 1, 2, 3
NAT = np.datetime64("NaT", "D")

# Monthly amounts in cents (low, high) per recurring benefit, near the sample's.
AMOUNT_RANGE = {RES: (15000, 42000), EMP: (180000, 520000), UNEMP: (140000, 195000), INJURY: (150000, 320000)}


def amounts_for(rng: np.random.Generator, benefit: np.ndarray) -> np.ndarray:
    lo = np.array([AMOUNT_RANGE[b][0] for b in range(4)])[benefit]
    hi = np.array([AMOUNT_RANGE[b][1] for b in range(4)])[benefit]
    cents = rng.integers(lo, hi)
    return np.where(benefit == RES, cents // 10 * 10, cents // 20 * 20).astype(np.int64)


def birth_for_age(rng: np.random.Generator, on: np.datetime64, age_lo: np.ndarray,
                  age_hi: np.ndarray) -> np.ndarray:
    """Birth dates giving an age in [age_lo, age_hi) years on `on`, never on Feb 29."""
    years = age_lo + rng.random(len(age_lo)) * (age_hi - age_lo)
    birth = on - np.round(years * 365.2425).astype("timedelta64[D]")
    md = (birth - birth.astype("datetime64[M]")).astype(int)
    feb29 = (birth.astype("datetime64[M]").astype(int) % 12 == 1) & (md == 28)
    return np.where(feb29, birth + 1, birth)


@dataclass
class Population:
    n: int
    male: np.ndarray
    birth: np.ndarray  # datetime64[D]
    addr: np.ndarray  # 6-digit address code of the ID
    village: np.ndarray  # index into regions.villages
    benefit: np.ndarray  # RES/EMP/UNEMP/INJURY
    cents: np.ndarray  # monthly amount
    account: np.ndarray
    card: np.ndarray
    phone: np.ndarray
    c0: np.ndarray  # last_certified_on in the first recipients delivery (NaT = none)
    first: np.ndarray  # first paid period (month index)
    last: np.ndarray  # last paid period (inclusive; < first = never paid)
    death: np.ndarray  # actual death date (NaT = alive)
    card_until: np.ndarray  # no card events after this day (NaT = open)
    cert_events: np.ndarray  # schedule yearly certification card events
    recip_month: np.ndarray  # month of the first recipients delivery (0 = first day)
    need_x: np.ndarray  # ID must end in X
    reserved_from: int  # indices >= this are reserved for planted cases
    planted: np.ndarray
    spouse: np.ndarray  # index of the spouse sharing the account, -1 when none
    tag: np.ndarray = field(default_factory=lambda: np.array([]))
    pid: np.ndarray = field(default_factory=lambda: np.array([]))
    name: np.ndarray = field(default_factory=lambda: np.array([]))

    def county_of(self, regions: Regions) -> np.ndarray:
        return regions.village_county[self.village]


def background(rng: np.random.Generator, n: int, cal: Calendar, regions: Regions, reserve: int) -> Population:
    """n clean recipients; the last `reserve` are left for planted cases (no spouses, no deaths there)."""
    start = cal.first_day
    benefit = rng.choice(4, size=n, p=[0.58, 0.30, 0.08, 0.04]).astype(np.int8)
    male = rng.random(n) < 0.5
    lo = np.select([benefit == RES, (benefit == EMP) & male, benefit == EMP, benefit == UNEMP],
                   [61.0, 56.0, 51.0, 25.0], 25.0)
    hi = np.select([benefit == RES, benefit == EMP, benefit == UNEMP], [96.0, 93.0, 58.0], 60.0)
    # older pensioners are fewer: squeeze towards the lower bound
    span = (hi - lo) * rng.power(0.6, n)
    birth = birth_for_age(rng, start, lo, lo + np.maximum(span, 0.01))
    village = rng.integers(0, len(regions.villages), n)
    county = regions.village_county[village]
    addr = np.array(regions.counties, dtype=object)[county]
    foreign = rng.random(n) < 0.06
    addr = np.where(foreign, np.array(FOREIGN_ADDRESS, dtype=object)[rng.integers(0, len(FOREIGN_ADDRESS), n)], addr)
    cents = amounts_for(rng, benefit)
    first = np.zeros(n, dtype=np.int64)
    last = np.full(n, cal.months - 1, dtype=np.int64)
    new = rng.random(n) < 0.05
    if cal.months > 1:
        first[new] = rng.integers(1, cal.months, new.sum())
    ends = (benefit == UNEMP) & (rng.random(n) < 0.3)
    last[ends] = np.maximum(first[ends], rng.integers(0, cal.months, ends.sum()))
    rmonths = np.array([0] + cal.recipient_months())
    recip_month = rmonths[np.searchsorted(rmonths, first, side="right") - 1]
    # certification: within 230 days before the person's first delivery (so never more than 330
    # days before the first paid period); 3% with none on record
    delivered = (cal.month0 + recip_month).astype("datetime64[D]")
    c0 = delivered - rng.integers(1, 230, n).astype("timedelta64[D]")
    c0 = np.where(rng.random(n) < 0.03, NAT, c0)
    pop = Population(
        n=n, male=male, birth=birth, addr=addr, village=village, benefit=benefit, cents=cents,
        account=_accounts(rng, n), card=_cards(rng, n), phone=_phones(rng, n), c0=c0,
        first=first, last=last, death=np.full(n, NAT), card_until=np.full(n, NAT),
        cert_events=np.ones(n, dtype=bool), recip_month=recip_month, need_x=np.zeros(n, dtype=bool),
        reserved_from=n - reserve, planted=np.zeros(n, dtype=bool), spouse=np.full(n, -1),
        tag=np.full(n, "", dtype=object),
    )
    _pair_spouses(rng, pop)
    _natural_deaths(rng, pop, cal)
    return pop


def _accounts(rng: np.random.Generator, n: int) -> np.ndarray:
    hi = rng.integers(10**7, 10**8, n)
    lo = rng.integers(0, 10**8, n)
    digits = pc.utf8_lpad(pc.cast(pa.array((hi % 10**7) * 10**8 + lo), pa.string()), 15, "0")
    return pc.binary_join_element_wise("6217", digits, "").to_numpy(zero_copy_only=False)


def _cards(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique card numbers: a letter and 8 digits (numbers that collide are drawn again)."""
    letters = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ"))
    code = rng.integers(0, len(letters) * 10**8, n)
    for _ in range(50):
        again = repeats(code)
        if not len(again):
            break
        code[again] = rng.integers(0, len(letters) * 10**8, len(again))
    assert not len(repeats(code)), "could not make unique card numbers"
    return np.char.add(letters[code // 10**8], np.char.zfill((code % 10**8).astype(str), 8)).astype(object)


def repeats(values: np.ndarray, keep_first: np.ndarray | None = None) -> np.ndarray:
    """Indices of all but one of each group of equal values (the one kept is, where given, one
    that `keep_first` marks)."""
    order = np.argsort(values, kind="stable") if keep_first is None else np.lexsort((~keep_first, values))
    ordered = values[order]
    return order[1:][ordered[1:] == ordered[:-1]]


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    mobile = np.char.add(np.array(["13", "15", "18", "17"])[rng.integers(0, 4, n)],
                         np.char.zfill(rng.integers(0, 10**9, n).astype(str), 9)).astype(object)
    u = rng.random(n)
    landline = np.char.add("0746-", rng.integers(2000000, 9999999, n).astype(str)).astype(object)
    out = np.where(u < 0.08, "", mobile)
    # a few hold two numbers: a field with a comma, quoted per RFC 4180
    return np.where(u > 0.995, landline + "," + mobile, out)


def _pair_spouses(rng: np.random.Generator, pop: Population) -> None:
    """About 3% of pensioners share their account with a spouse (two people: lawful)."""
    eligible = np.flatnonzero((pop.benefit <= EMP) & (np.arange(pop.n) < pop.reserved_from)
                              & (pop.first == 0))
    k = int(len(eligible) * 0.015)
    pick = rng.permutation(eligible)[: 2 * k]
    a, b = pick[:k], pick[k:]
    pop.male[b] = ~pop.male[a]
    # an employee pensioner who becomes a man keeps a safe margin (men's floor here 55)
    young_man = (pop.benefit[b] == EMP) & pop.male[b]
    pop.birth[b[young_man]] = np.minimum(pop.birth[b[young_man]], pop.birth[a[young_man]])
    pop.village[b] = pop.village[a]
    pop.account[b] = pop.account[a]
    pop.addr[b] = pop.addr[a]
    pop.spouse[a], pop.spouse[b] = b, a


def _natural_deaths(rng: np.random.Generator, pop: Population, cal: Calendar) -> None:
    """Background deaths: paid for the month of death, nothing after; cards stop that day."""
    age = (cal.first_day - pop.birth).astype(int) / 365.2425
    annual = np.select([age >= 85, age >= 75, age >= 60], [0.09, 0.04, 0.015], 0.004)
    p = 1 - (1 - annual) ** (cal.months / 12)
    bg = np.arange(pop.n) < pop.reserved_from
    dies = bg & (rng.random(pop.n) < p)
    window = cal.span
    day = cal.first_day + rng.integers(0, window, pop.n).astype("timedelta64[D]")
    first_day = (cal.month0 + pop.first).astype("datetime64[D]")
    dies &= day >= first_day
    pop.death = np.where(dies, day, NAT)
    dm = cal.month_of(day)
    pop.last = np.where(dies, np.minimum(pop.last, dm), pop.last)
    pop.card_until = np.where(dies, day, pop.card_until)


def finalize_ids(rng: np.random.Generator, pop: Population) -> None:
    """Valid, unique 18-digit IDs agreeing with gender and birth date; names. The first 17 digits
    are kept as one integer (address, birth date, sequence), so uniqueness is an integer sort."""
    birth = pop.birth.astype("datetime64[D]")
    month = birth.astype("datetime64[M]")
    ymd = ((birth.astype("datetime64[Y]").astype(np.int64) + 1970) * 10000
           + (month.astype(np.int64) % 12 + 1) * 100 + (birth - month.astype("datetime64[D]")).astype(np.int64) + 1)
    head = pop.addr.astype(np.int64) * 10**8 + ymd  # 14 digits
    male = pop.male.astype(np.int64)
    seq = rng.integers(0, 500, pop.n) * 2 + male  # odd 17th digit = man
    for i in np.flatnonzero(pop.need_x):
        options = np.arange(male[i], 1000, 2)
        seq[i] = options[np.flatnonzero(_check(head[i] * 1000 + options) == "X")[0]]
    for _ in range(50):  # equal IDs draw their sequence again; one that must end in X keeps it
        dup = repeats(head * 1000 + seq, keep_first=pop.need_x)
        if len(dup) == 0:
            break
        assert not pop.need_x[dup].any(), "two IDs that must end in X are equal"
        seq[dup] = rng.integers(0, 500, len(dup)) * 2 + male[dup]
    first17 = head * 1000 + seq
    assert not len(repeats(first17)), "could not make unique IDs"
    text = pc.binary_join_element_wise(pc.cast(pa.array(first17), pa.string()), pa.array(_check(first17)), "")
    pop.pid = text.to_numpy(zero_copy_only=False)
    pop.name = person_names(rng, pop.male)


def _check(first17: np.ndarray) -> np.ndarray:
    """The check character of 17-digit numbers (GB 11643)."""
    total = np.zeros(len(first17), dtype=np.int64)
    rest = first17.copy()
    for weight in reversed(WEIGHTS):
        total += (rest % 10) * weight
        rest //= 10
    return np.array(list(CHECK_CHARS))[total % 11]


def _with_check(head: np.ndarray, seq: np.ndarray) -> np.ndarray:
    first17 = np.char.add(head.astype(str), np.char.zfill(seq.astype(str), 3))
    digits = np.frombuffer(first17.astype("S17").tobytes(), dtype=np.uint8).reshape(-1, 17) - 48
    check = np.array(list(CHECK_CHARS))[(digits.astype(np.int64) @ np.array(WEIGHTS)) % 11]
    return np.char.add(first17, check).astype(object)


def legacy15(pid: str) -> str:
    """The 15-digit form of an 18-digit ID of someone born 19xx (drop '19' and the check)."""
    assert pid[6:8] == "19"
    return pid[:6] + pid[8:17]
