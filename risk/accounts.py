"""A supervisor's own account, kept beside the bureau's list of supervisors (which each delivery of
supervisors.csv replaces): the language of their digests and pages (Chinese unless they choose English),
and the password they log in to the web app with (argon2 hash; never the password itself). Every login
attempt is recorded, and too many failures lock the name for a while.

A web login is a session kept here (`web_session`; the browser's cookie holds a random token, the table only
its SHA-256): it ends at its lifetime or after a while without a request, and logging out, a new password
and a lockout end every session of that user, so no old cookie works again."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, delete, func, or_, select, update

from risk.alerts.lifecycle import User
from risk.db.tables import account, login_attempt, supervisor, web_session
from risk.domain import Language
from risk.errors import InputError, LoginRefused

LANGUAGES = {Language.ZH: "中文", Language.EN: "English"}
DEFAULT_LANGUAGE = Language.ZH
MIN_PASSWORD = 10
LOCK_AFTER = 5  # failed attempts for one login name …
LOCK_CLIENT_AFTER = 20  # … or from one address …
LOCK_WINDOW = timedelta(minutes=15)  # … within this long lock it for as long


def _known(conn: Connection, user_id: str) -> None:
    if conn.execute(select(supervisor.c.user_id).where(supervisor.c.user_id == user_id)).first() is None:
        raise InputError(f"没有这个用户 / no such user: {user_id}")


def language_of(conn: Connection, user_id: str) -> str:
    return languages_of(conn, [user_id]).get(user_id, DEFAULT_LANGUAGE)


def languages_of(conn: Connection, user_ids: list[str] | None = None) -> dict[str, str]:
    """user_id → chosen language, for these users (None: everyone who chose one)."""
    q = select(account.c.user_id, account.c.language)
    if user_ids is not None:
        q = q.where(account.c.user_id.in_(user_ids))
    return dict(conn.execute(q).all())


def listing(conn: Connection) -> list[dict]:
    """Every supervisor by user_id: role, area, language, and whether they have an email address and a
    webhook to be notified at."""
    rows = conn.execute(select(supervisor).order_by(supervisor.c.user_id)).all()
    chosen = languages_of(conn, [r.user_id for r in rows])
    return [{"user_id": r.user_id, "role": r.role, "region_code": r.region_code,
             "language": chosen.get(r.user_id, DEFAULT_LANGUAGE), "email": bool(r.email),
             "notify_url": bool(r.notify_url)} for r in rows]


def _save(conn: Connection, user_id: str, **values) -> None:
    now = datetime.now()
    if conn.execute(update(account).where(account.c.user_id == user_id).values(**values, updated_at=now)).rowcount == 0:
        conn.execute(account.insert().values(user_id=user_id, updated_at=now, **values))


def set_language(conn: Connection, user_id: str, language: str) -> None:
    if language not in LANGUAGES:
        raise InputError(f"不支持的语言 / unsupported language {language!r}: zh or en")
    _known(conn, user_id)
    _save(conn, user_id, language=language)


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


def set_password(conn: Connection, user_id: str, password: str) -> None:
    _known(conn, user_id)
    if len(password) < MIN_PASSWORD:
        raise InputError(f"密码至少{MIN_PASSWORD}个字符 / the password needs at least {MIN_PASSWORD} characters")
    if password.strip() != password or password.lower() == user_id.lower():
        raise InputError("密码不能与登录名相同，也不能以空格开头或结尾 / the password must differ from the login "
                         "name and not start or end with a space")
    _save(conn, user_id, password_hash=_hasher().hash(password))
    end_sessions(conn, user_id)  # a new password logs out every browser that knew the old one


def _failures(conn: Connection, column, value: str, now: datetime) -> int:
    failed = and_(login_attempt.c.ok.is_(False), login_attempt.c.at > now - LOCK_WINDOW)
    return conn.execute(select(func.count()).where(failed, column == value)).scalar() or 0


def _locked(conn: Connection, user_id: str, client: str, now: datetime) -> bool:
    return _failures(conn, login_attempt.c.user_id, user_id, now) >= LOCK_AFTER \
        or _failures(conn, login_attempt.c.client, client, now) >= LOCK_CLIENT_AFTER


WRONG = "登录名或密码不对 / wrong login name or password"


def login(conn: Connection, user_id: str, password: str, client: str, now: datetime | None = None) -> User | None:
    """The user, when the name and password are right; None when they are not (say `WRONG`: never whether
    the name exists). Every attempt is recorded, so the caller must commit also when this returns None.
    Raises LoginRefused while the name or the address is locked after too many failures."""
    from argon2.exceptions import InvalidHashError, VerificationError

    now = now or datetime.now()
    user_id = (user_id or "").strip()[:64]
    client = (client or "?")[:64]
    if _locked(conn, user_id, client, now):
        raise LoginRefused(f"尝试次数过多，请{LOCK_WINDOW.seconds // 60}分钟后再试 / too many attempts: "
                           f"try again in {LOCK_WINDOW.seconds // 60} minutes")
    row = conn.execute(select(supervisor.c.user_id, supervisor.c.name, supervisor.c.role, supervisor.c.region_code,
                              account.c.password_hash)
                       .select_from(supervisor.outerjoin(account, account.c.user_id == supervisor.c.user_id))
                       .where(supervisor.c.user_id == user_id)).first()
    ok = False
    if row is not None and row.password_hash:
        try:
            ok = _hasher().verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
    else:
        _hasher().hash(password or "-")  # the same work either way: timing does not tell who exists
    conn.execute(login_attempt.insert().values(user_id=user_id, client=client, at=now, ok=ok))
    if not ok and _failures(conn, login_attempt.c.user_id, user_id, now) >= LOCK_AFTER:
        end_sessions(conn, user_id)  # locked: whoever is guessing, every session of the name ends too
    if not ok or row is None:
        return None
    return User(row.user_id, row.name, row.role, row.region_code)


# -- web sessions ----------------------------------------------------------------------------------

SEEN_EVERY = timedelta(minutes=1)  # a session's last request is written down at most once a minute


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(conn: Connection, user_id: str, lifetime: timedelta, idle: timedelta,
                  now: datetime | None = None) -> str:
    """A new session for `user_id`; returns its token (for the cookie: the table keeps only its hash).
    The user's sessions that have ended by time are deleted on the way."""
    now = now or datetime.now()
    conn.execute(delete(web_session).where(web_session.c.user_id == user_id, or_(
        web_session.c.created_at <= now - lifetime, web_session.c.seen_at <= now - idle)))
    token = secrets.token_urlsafe(32)
    conn.execute(web_session.insert().values(token_hash=_token_hash(token), user_id=user_id, created_at=now,
                                              seen_at=now))
    return token


def session_user(conn: Connection, token: object, lifetime: timedelta, idle: timedelta,
                 now: datetime | None = None) -> str | None:
    """The user whose live session `token` is, noting the request; None when there is no such session (never
    was, logged out, password changed, locked) or it has ended by time (deleted at the user's next login)."""
    if not isinstance(token, str) or not token:
        return None
    now = now or datetime.now()
    key = web_session.c.token_hash == _token_hash(token)
    row = conn.execute(select(web_session.c.user_id, web_session.c.created_at, web_session.c.seen_at)
                       .where(key)).first()
    if row is None:
        return None
    if now - row.created_at >= lifetime or now - row.seen_at >= idle:
        return None
    if now - row.seen_at >= SEEN_EVERY:
        conn.execute(update(web_session).where(key).values(seen_at=now))
    return row.user_id


def end_session(conn: Connection, token: object) -> None:
    """End the one session of `token` (a browser logging in again), if there is one."""
    if isinstance(token, str) and token:
        conn.execute(delete(web_session).where(web_session.c.token_hash == _token_hash(token)))


def end_sessions(conn: Connection, user_id: str) -> int:
    """End every session of `user_id` (logout, a new password, a lockout); returns how many there were."""
    return conn.execute(delete(web_session).where(web_session.c.user_id == user_id)).rowcount or 0
