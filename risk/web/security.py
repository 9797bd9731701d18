"""Sessions, CSRF tokens, the secret key and the response headers of the web app.

The session is a signed cookie (Starlette's SessionMiddleware: HttpOnly, SameSite=Lax, Secure when
RISK_HTTPS_ONLY is set) holding the login name, the token of the server-side session (risk.accounts:
`web_session`), the CSRF token and the language; it is cleared and re-issued at login. The cookie alone
logs no one in: every request needs the live server-side session, which logging out, a new password and a
lockout end for every browser of the user, and which ends by itself after RISK_SESSION_HOURS or
RISK_SESSION_IDLE_MINUTES without a request. Every form carries the session's CSRF token and every POST is
refused without it.
"""
from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request

from risk.settings import Settings

SESSION_COOKIE = "risk_session"
CSRF_FIELD = "csrf_token"

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # inline SVG charts carry style attributes; no inline script anywhere
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


def secret_key(var_dir: Path) -> str:
    """RISK_SECRET_KEY, else a random key kept in <var>/secret.key (created once, readable by us only)."""
    key = Settings.read("secret_key")
    if key is not None:
        return key.get_secret_value()
    path = var_dir / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(request: Request, sent: object) -> bool:
    expected = request.session.get("csrf")
    return isinstance(expected, str) and bool(expected) and isinstance(sent, str) \
        and hmac.compare_digest(expected.encode(), sent.encode())


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")  # pages carry personal information
        return response
