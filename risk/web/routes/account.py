"""Logging in and out (accounts from supervisors.csv, passwords set with `risk users set-password`), and the
home page, which is the queue. Nobody needs to be logged in for these."""
from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from risk import accounts, errors
from risk.db import gateway
from risk.web import security
from risk.web.deps import Posted
from risk.web.pages import page, site, words

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/alerts") -> Response:
    return page(request, "login.html", next=_safe_next(next))


@router.post("/login")
def login(request: Request, data: Posted) -> Response:
    s = site(request)
    target = _safe_next(data.get("next", "/alerts"))
    try:
        with gateway.transaction(s.url) as conn:
            user = accounts.login(conn, data.get("user_id", ""), data.get("password", ""),
                                  security.client_address(request))
            lang = accounts.language_of(conn, user.user_id) if user else None
            if user:  # this browser's earlier session (another login name, perhaps) ends here
                accounts.end_session(conn, request.session.get("sid"))
            token = accounts.start_session(conn, user.user_id, s.lifetime, s.idle) if user else None
    except errors.LoginRefused as e:
        return page(request, "login.html", status_code=429, next=target, error=words(request, str(e)))
    if user is None:
        return page(request, "login.html", status_code=401, next=target, error=words(request, accounts.WRONG))
    request.session.clear()  # a fresh session (and CSRF token) for the logged-in user
    request.session.update({"user_id": user.user_id, "sid": token, "lang": lang})
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
def logout(request: Request, _data: Posted) -> Response:
    s = site(request)
    user_id = request.session.get("user_id")
    with gateway.transaction(s.url) as conn:  # every session of the user ends, not only this browser's
        if user_id and accounts.session_user(conn, request.session.get("sid"), s.lifetime, s.idle) == user_id:
            accounts.end_sessions(conn, user_id)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home() -> Response:
    return RedirectResponse("/alerts", status_code=303)


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no open redirect to somewhere else)."""
    parsed = urlparse(target or "")
    if parsed.scheme or parsed.netloc or not (target or "").startswith("/") or (target or "").startswith("//"):
        return "/alerts"
    return target or "/alerts"
