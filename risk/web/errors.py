"""Errors → HTTP answers, in one place (registered once by risk.web.app.create_app): routes raise, these
answer.

- LoginNeeded: to the login page, then back (303 to /login?next=the path).
- Refused: a plain page with the bilingual message, in its status (400 unless it says).
- RiskError (risk.errors): a plain page with its message, in its `http_status` (NotAllowed 403,
  LoginRefused 429, WarehouseBusy 409, others 400).
- HTTPException: a plain page; a form without its CSRF token is told it expired, 403 and 404 both say "not
  found" (what is someone else's looks like what does not exist).
- Anything else is a bug: logged with its trace (the log masks ID numbers, risk.privacy), a plain 500 page
  for the user, never a stack trace.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from risk.errors import LoginNeeded, Refused, RiskError
from risk.web.pages import lang_of, log, page, words
from risk.words import both, t


async def login_needed(request: Request, _exc: LoginNeeded) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


async def refused(request: Request, exc: Refused) -> Response:
    return page(request, "error.html", status_code=exc.status_code, message=words(request, exc.message))


async def risk_error(request: Request, exc: RiskError) -> Response:
    return page(request, "error.html", status_code=exc.http_status, message=words(request, str(exc)))


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 403 and exc.detail == "csrf":
        message = both("web.form_expired")
    elif exc.status_code in (403, 404):
        message = both("web.not_found")
    else:
        message = both("web.error")
    return page(request, "error.html", status_code=exc.status_code, message=words(request, message))


async def unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    lang = lang_of(request)
    return page(request, "error.html", status_code=500, message=t("web.error", lang) + " — " + t("web.error_hint", lang))


HANDLERS: dict[type[Exception], Callable[[Request, Any], Awaitable[Response]]] = {
    LoginNeeded: login_needed, Refused: refused, RiskError: risk_error, StarletteHTTPException: http_error,
    Exception: unexpected}


def register(app: FastAPI) -> None:
    for kind, handler in HANDLERS.items():
        app.add_exception_handler(kind, handler)
