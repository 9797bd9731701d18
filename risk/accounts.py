"""A supervisor's own account, kept beside the bureau's list of supervisors (which each delivery of
supervisors.csv replaces): the language of their digests and pages (Chinese unless they choose English),
and the password they log in to the web app with (argon2 hash; never the password itself). Every login
attempt is recorded, and too many failures lock the name for a while."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, func, select, update

from risk.db.tables import account, login_attempt, supervisor
from risk.errors import InputError
from risk.workflow import User

LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT_LANGUAGE = "zh"
MIN_PASSWORD = 10
LOCK_AFTER = 5  # failed attempts for one login name …
LOCK_CLIENT_AFTER = 20  # … or from one address …
LOCK_WINDOW = timedelta(minutes=15)  # … within this long lock it for as long


class LoginRefused(InputError):
    """Too many failed attempts for this name or from this address."""


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


def _locked(conn: Connection, user_id: str, client: str, now: datetime) -> bool:
    since = now - LOCK_WINDOW
    failed = and_(login_attempt.c.ok.is_(False), login_attempt.c.at > since)
    by_name = conn.execute(select(func.count()).where(failed, login_attempt.c.user_id == user_id)).scalar() or 0
    by_client = conn.execute(select(func.count()).where(failed, login_attempt.c.client == client)).scalar() or 0
    return by_name >= LOCK_AFTER or by_client >= LOCK_CLIENT_AFTER


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
    if not ok or row is None:
        return None
    return User(row.user_id, row.name, row.role, row.region_code)
