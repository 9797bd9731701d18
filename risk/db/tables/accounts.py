"""What a supervisor keeps for themselves: their account (language, password), login attempts and web sessions."""
from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    String,
    Table,
    Text,
)

from risk import domain
from risk.db.tables.base import metadata, one_of

# What a supervisor chose for themselves (the bureau's supervisors.csv does not carry it): the language of
# their digests and pages, and later their password. Kept apart from `supervisor`, which each delivery of
# supervisors.csv replaces.
account = Table(
    "account", metadata,
    Column("user_id", String, primary_key=True),
    Column("language", String(2), nullable=False, server_default="zh"),  # zh | en
    Column("password_hash", Text),
    Column("updated_at", DateTime, nullable=False),
    one_of("language", domain.Language),
)

# Every login attempt (never the password): for rate limiting and for the auditors.
login_attempt = Table(
    "login_attempt", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String, nullable=False, index=True),
    Column("client", String(64), nullable=False),  # the client's address
    Column("at", DateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
)

# The web app's sessions, one row for each logged-in browser (the cookie holds a random token; the row only
# its SHA-256): logging out, a new password and a lockout delete every row of that user, so no old cookie
# works again; a row past its lifetime or idle too long is refused and deleted.
web_session = Table(
    "web_session", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String, nullable=False, index=True),
    Column("created_at", DateTime, nullable=False),
    Column("seen_at", DateTime, nullable=False),  # the last request (kept to the minute)
)
