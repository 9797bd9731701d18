"""The few kinds of error a person may see, each with a plain message (Chinese / English)."""
from __future__ import annotations


class RiskError(Exception):
    """An error with a message meant for people; shown without a stack trace."""


class InputError(RiskError):
    """The input (a landing folder, a file, an argument) is not what the contract says."""


class ConfigError(RiskError):
    """The system is not set up right (database URL, folders)."""
