"""A supervisor's own choices, kept beside the bureau's list of supervisors: the language of their digests
and pages (Chinese unless they choose English)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from risk.db.tables import account, supervisor
from risk.errors import InputError

LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT_LANGUAGE = "zh"


def _known(conn: Connection, user_id: str) -> None:
    if conn.execute(select(supervisor.c.user_id).where(supervisor.c.user_id == user_id)).first() is None:
        raise InputError(f"没有这个用户 / no such user: {user_id}")


def language_of(conn: Connection, user_id: str) -> str:
    return languages_of(conn, [user_id]).get(user_id, DEFAULT_LANGUAGE)


def languages_of(conn: Connection, user_ids: list[str]) -> dict[str, str]:
    return dict(conn.execute(select(account.c.user_id, account.c.language)
                             .where(account.c.user_id.in_(user_ids))).all())


def set_language(conn: Connection, user_id: str, language: str) -> None:
    if language not in LANGUAGES:
        raise InputError(f"不支持的语言 / unsupported language {language!r}: zh or en")
    _known(conn, user_id)
    now = datetime.now()
    if conn.execute(update(account).where(account.c.user_id == user_id)
                    .values(language=language, updated_at=now)).rowcount == 0:
        conn.execute(account.insert().values(user_id=user_id, language=language, updated_at=now))
