"""Passwords are set from the command line, kept only as argon2 hashes, and checked at login."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from risk import accounts
from risk.cli import main
from risk.db import gateway
from risk.db.tables import account


def test_set_password_from_the_command_line_and_log_in(city, monkeypatch, capsys):
    user = city.users["city"]
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
    assert main(["users", "set-password", user, "--password-stdin", "--db", city.url]) == 0
    with gateway.transaction(city.url) as conn:
        stored = conn.execute(select(account.c.password_hash).where(account.c.user_id == user)).scalar()
        assert stored.startswith("$argon2id$") and "a long enough secret" not in stored
        assert accounts.login(conn, user, "a long enough secret", "127.0.0.1") is not None
        assert accounts.login(conn, user, "a long enough secreT", "127.0.0.1") is None
    from conftest import PASSWORD

    with gateway.transaction(city.url) as conn:  # put the fixture's password back for the other tests
        accounts.set_password(conn, user, PASSWORD)


@pytest.mark.parametrize("password, says", [("short", "at least 10"), (" padded password ", "not start or end"),
                                            ("city01", "at least 10")])
def test_weak_passwords_are_refused_in_plain_words(city, monkeypatch, capsys, password, says):
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    assert main(["users", "set-password", city.users["city"], "--password-stdin", "--db", city.url]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_an_unknown_user_gets_no_password(city, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
    assert main(["users", "set-password", "nobody", "--password-stdin", "--db", city.url]) == 2
    assert "no such user" in capsys.readouterr().err
