"""Every kind of error the system raises on purpose, in one place, each with a plain message (Chinese /
English) and what it means at the two edges:

- `exit_code`: what the `risk` command exits with (risk.cli: the one place that turns an error into an exit);
- `http_status`: what the web app answers (risk.web: the one place that turns an error into a page).

A stack trace is never shown for these: the message is meant for people. Other exceptions are bugs; the
edges log them with their trace (masked, risk.privacy) and show a plain "something went wrong".
"""
from __future__ import annotations

from typing import Any


class RiskError(Exception):
    """An error with a message meant for people; shown without a stack trace."""

    exit_code = 2
    http_status = 400


# -- the input and the set-up ------------------------------------------------------------------------


class InputError(RiskError):
    """The input (a landing folder, a file, an argument) is not what the contract says."""


class ConfigError(RiskError):
    """The system is not set up right (database URL, folders, a RISK_* setting)."""


class FileRejected(Exception):
    """A delivered file cannot be read as a whole; the message (Chinese / English) names the problem. Not a
    RiskError: the night goes on, the file's rejection is recorded in the quality queue (risk.ingest)."""


class InvalidId(ValueError):
    """The value cannot be made a valid resident ID; the message says why (in Chinese and English). A
    ValueError, as a value that fails to parse is (risk.identity.numbers)."""


# -- people and what they may do ----------------------------------------------------------------------


class NotAllowed(RiskError):
    """The user may not see or do this; the message says why in plain words."""

    http_status = 403


class LoginRefused(InputError):
    """Too many failed attempts for this name or from this address."""

    http_status = 429


class LoginNeeded(Exception):
    """No one is logged in (the web app): go to the login page, then back."""


class Refused(Exception):
    """A web request that cannot be answered as asked (an invalid ID number for an export): a plain page
    with the bilingual message, nothing else."""

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.message, self.status_code = message, status_code


# -- runs ------------------------------------------------------------------------------------------------


class WarehouseBusy(RiskError):
    """Another run holds the warehouse (risk.runlock)."""

    http_status = 409


class OrchestrationError(RiskError):
    """Airflow could not be set up or the DAG could not be run (the message says where to look)."""


class DagRunFailed(OrchestrationError):
    """The DAG run ended in a state other than success; `.result` holds what the run reported."""

    def __init__(self, message: str, result: dict[str, Any]):
        super().__init__(message)
        self.result = result


class RunConfigError(ConfigError):
    """A run's conf/params/environment cannot work (no landing folder, a malformed day)."""


class MissingLanding(InputError):
    """The run's landing folder does not exist."""


class ServiceError(OrchestrationError):
    """An Airflow service did not start, died, or a REST call / DAG run did not go as expected."""


# -- models -------------------------------------------------------------------------------------------


class ModelFileError(RiskError):
    """A saved model that must not be loaded: not the file expected, or holding types not trusted."""


class ModelMissing(ModelFileError):
    """The registered model's bytes are neither in the warehouse nor in a file of var/models."""


class TooFewPeople(RiskError):
    """Not enough people to train a model on."""
