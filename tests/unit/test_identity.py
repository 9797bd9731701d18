"""Resident IDs (contract §3): what is valid, how legacy and lowercase IDs are normalised and masked."""

from __future__ import annotations

from datetime import date

import pytest
from helpers import check_char, make_id

from risk.errors import InvalidId
from risk.identity import numbers as identity
from risk.identity.numbers import mask_id, mask_name, normalise, try_normalise

TODAY = date(2025, 6, 1)


@pytest.mark.parametrize(
    "pid",
    [
        "11010519491231002X",  # the GB 11643-1999 example
        "431125196205276096",  # from the sample
        make_id("1960-01-15", seq=12, male=True),
        make_id("1975-02-28", area="431103", seq=7, male=False),
    ],
)
def test_valid_18_digit_ids_are_kept(pid: str) -> None:
    assert normalise(pid, TODAY) == pid
    assert try_normalise(pid, TODAY) == (pid, None)


def test_check_character_follows_mod_11_2() -> None:
    assert check_char("11010519491231002") == "X"
    assert identity.check_char("11010519491231002") == "X"
    for pid in (make_id(seq=s) for s in range(30)):
        assert identity.check_char(pid[:17]) == pid[17]


def test_wrong_check_character_is_rejected_with_that_reason() -> None:
    pid = make_id()
    wrong = pid[:17] + ("0" if pid[17] != "0" else "1")
    with pytest.raises(InvalidId, match="check character"):
        normalise(wrong, TODAY)
    value, reason = try_normalise(wrong, TODAY)
    assert value is None and "check character" in reason


def test_lowercase_x_is_upper_cased() -> None:
    assert normalise("11010519491231002x", TODAY) == "11010519491231002X"


def test_surrounding_spaces_are_ignored() -> None:
    assert normalise("  11010519491231002X ", TODAY) == "11010519491231002X"


def test_legacy_15_digit_id_from_the_sample_becomes_18_digits() -> None:
    # deaths.csv of 2025-04-15 in the sample delivers 431102240126945 (born 1924-01-26)
    first17 = "431102" + "19" + "240126945"
    assert normalise("431102240126945", TODAY) == first17 + check_char(first17) == "431102192401269456"


def test_legacy_id_matches_the_18_digit_id_of_the_same_person() -> None:
    pid = make_id("1950-07-04", seq=34, male=False)
    legacy = pid[:6] + pid[8:17]
    assert len(legacy) == 15
    assert normalise(legacy, TODAY) == pid


def test_abolished_address_codes_stay_valid() -> None:
    pid = make_id(area="999999")
    assert normalise(pid, TODAY) == pid


@pytest.mark.parametrize(
    "raw, words",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("43110219600115123", "18 characters"),  # 17 digits
        ("4311021960011512345", "18 characters"),  # 19 digits
        ("43110219600115123Y", "18 characters"),
        ("4311021960011512", "18 characters"),  # 16 digits: neither legacy nor current
        ("X31102196001151234", "18 characters"),
    ],
)
def test_malformed_ids_are_rejected(raw: str, words: str) -> None:
    with pytest.raises(InvalidId, match=words):
        normalise(raw, TODAY)


def test_impossible_birth_date_is_rejected() -> None:
    first17 = "431102" + "19600230" + "123"  # 30 February
    with pytest.raises(InvalidId, match="not a real date"):
        normalise(first17 + check_char(first17), TODAY)


def test_future_birth_date_is_rejected() -> None:
    pid = make_id("2025-06-02")
    with pytest.raises(InvalidId, match="future"):
        normalise(pid, TODAY)
    assert normalise(pid, date(2025, 6, 2)) == pid  # born today is a real past-or-present date
    assert try_normalise(make_id("2090-01-01"))[0] is None  # default today: the real today


def test_birth_date_and_gender_of_an_id() -> None:
    pid = make_id("1962-05-27", male=False)
    assert identity.birth_date_of(pid) == date(1962, 5, 27)
    assert identity.gender_of(pid) == "F"
    assert identity.gender_of(make_id(male=True)) == "M"


def test_masking_keeps_address_code_and_last_four() -> None:
    assert mask_id("430102199001011234") == "430102********1234"
    assert mask_id("") == ""
    assert mask_id(None) == ""
    assert "19900101" not in mask_id("430102199001011234")


def test_masking_names_keeps_the_family_name() -> None:
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("张") == "*"
    assert mask_name("") == ""


def test_non_ascii_digits_do_not_pass_as_a_normalised_id() -> None:
    # `\d` in a Python str pattern matches any Unicode digit: a full-width ID (common in hand-typed
    # Chinese data) must either be rejected or normalised to ASCII, never stored as it came, where it would
    # not join with the same person's ID in the other sources.
    ascii_id = "11010519491231002X"
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in ascii_id)
    value, _ = try_normalise(full_width, TODAY)
    assert value is None or value == ascii_id


def test_the_checks_normalise_every_value_as_normalise_does() -> None:
    """The validation normalises whole columns at once; it must agree with `normalise` value by value."""
    import pandas as pd

    from risk.ingest import derived

    x_id = next(p for p in (make_id("1960-01-15", seq=s) for s in range(100)) if p.endswith("X"))
    first17 = "431102" + "19600230" + "123"
    values = [
        make_id(),
        x_id,
        x_id.lower(),
        f" {x_id} ",
        "431102240126945",
        "11010519491231002X",
        x_id[:17] + "0",
        first17 + check_char(first17),
        make_id("2025-06-01"),
        make_id("2025-06-02"),
        "",
        None,
        "abc",
        "4311021960011512",
        "43110219600115123Y",
        make_id(),
        "１１０１０５１９４９１２３１００２X",
    ]
    got = derived.normalised_ids(pd.Series(values, dtype="str"), TODAY).tolist()
    want = [None if v is None else try_normalise(v, TODAY)[0] for v in values]
    assert [None if pd.isna(g) else g for g in got] == want
