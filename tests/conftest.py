"""Shared fixtures: a warehouse on SQLite always, and on PostgreSQL for tests marked `postgres` (each test
a database of its own: see warehouses.py)."""
from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from warehouses import warehouse

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "spec" / "sample"
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """An empty warehouse URL, once per database kind."""
    with warehouse(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture(scope="session")
def sample_landing() -> Path:
    path = SAMPLE / "landing"
    if not path.is_dir():
        pytest.skip(f"the contract sample is not at {path}")
    return path


def copy_days(landing: Path, days: list[str], dest: Path) -> Path:
    """A landing folder holding only `days` of `landing`."""
    dest.mkdir(parents=True, exist_ok=True)
    for d in days:
        shutil.copytree(landing / d, dest / d)
    return dest


@dataclass
class Mailbox:
    url: str  # an Apprise mailto URL for RISK_SMTP_URL
    recipients: list[str] = field(default_factory=list)  # every message's recipients, as received
    messages: list[bytes] = field(default_factory=list)  # every message's content, as received


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    """A real SMTP server on loopback (aiosmtpd) and what it received."""
    from aiosmtpd.controller import Controller

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    box = Mailbox(f"mailto://127.0.0.1:{port}?from=risk@example.org&smtp=127.0.0.1")

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            box.recipients.extend(envelope.rcpt_tos)
            box.messages.append(envelope.content)
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield box
    controller.stop()
