"""Money is kept in whole fen and shown in yuan, exactly."""
from __future__ import annotations

from decimal import Decimal

from risk.alerts.export import yuan


def test_yuan_spells_fen_exactly_as_a_two_place_decimal():
    for fen in (0, 1, 5, 10, 99, 100, 101, 123450, -1, -5, -100, -12345, 10**15 + 7, -(10**15) - 7):
        assert yuan(fen) == str((Decimal(fen) / 100).quantize(Decimal("0.01"))), fen
    assert (yuan(0), yuan(-5), yuan(123450)) == ("0.00", "-0.05", "1234.50")
