"""An anomaly's reasons in words: a feature the catalogue does not know is shown by its name, with a warning;
any other failure to describe one is a bug and is not hidden."""
from __future__ import annotations

import logging

import pytest

from risk.scoring import nightly
from risk.scoring.reasons import Reason


def reason(feature: str, value: float = 4.4, median: float = 1.0) -> Reason:
    return Reason(feature=feature, value=value, median=median, robust_z=3.0, isolation_share=0.5)


def test_a_known_feature_is_described_in_each_language() -> None:
    zh, en = nightly._reason_words(reason("payment_peer_ratio"), "zh"), nightly._reason_words(reason("payment_peer_ratio"), "en")
    assert zh != en and "payment_peer_ratio" not in zh


def test_a_feature_the_catalogue_does_not_know_is_shown_by_its_name_with_a_warning(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="risk.scoring.nightly"):
        assert nightly._reason_words(reason("renamed_since"), "en") == "renamed_since = 4.4 (median 1)"
    assert "renamed_since" in caplog.text


def test_any_other_failure_to_describe_a_reason_is_raised(monkeypatch) -> None:
    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("a bug in the catalogue")

    monkeypatch.setattr(nightly, "describe", broken)
    with pytest.raises(ZeroDivisionError):
        nightly._reason_words(reason("payment_peer_ratio"), "zh")
