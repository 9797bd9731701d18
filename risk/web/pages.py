"""What every page of the web app shares: the app's site (its warehouse, session times and templates), the
language of the pages, flash messages, bilingual messages in the user's language, and a template rendered
with the context every template reads (its words from risk.words in the page's language: `t(key, **values)`,
`word(kind, value)`, `has(key)`)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from risk import accounts
from risk.db import gateway
from risk.web import security
from risk.web.queries.listing import rule_title
from risk.words import has, side, t, word

# the web app's log, named as the server's log has always named it (risk.web.app) whichever module writes
log = logging.getLogger("risk.web.app")


@dataclass(frozen=True)
class Site:
    """One app's warehouse, session lifetime and idle time, and templates (`app.state.site`, set by
    risk.web.app.create_app)."""

    url: str
    lifetime: timedelta
    idle: timedelta
    templates: Jinja2Templates


def site(request: Request) -> Site:
    return request.app.state.site


def lang_of(request: Request) -> str:
    return request.session.get("lang") or "zh"


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    choose_language(request)
    lang = lang_of(request)
    context.setdefault("me", None)
    return site(request).templates.TemplateResponse(request, name, {
        "lang": lang, "t": lambda key, **v: t(key, lang, **v), "word": lambda kind, value: word(kind, value, lang),
        "has": has, "rule_title": rule_title,
        "csrf": security.csrf_token(request), "flash": request.session.pop("flash", []),
        "path": request.url.path, **context}, status_code=status_code)


def choose_language(request: Request) -> None:
    """`?lang=en|zh` on any page switches the language, and remembers it for a logged-in user."""
    chosen = request.query_params.get("lang")
    if chosen in accounts.LANGUAGES and chosen != request.session.get("lang"):
        request.session["lang"] = chosen
        if request.session.get("user_id"):
            with gateway.transaction(site(request).url) as conn:
                accounts.set_language(conn, request.session["user_id"], chosen)


def flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session.setdefault("flash", []).append({"kind": kind, "text": message})


def words(request: Request, message: str) -> str:
    """A bilingual message ('中文 / English') in the user's language (a `?lang=` of this request's too)."""
    choose_language(request)
    return side(message, lang_of(request))
