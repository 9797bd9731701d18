"""Who is asking, and whether the form is theirs: what the routers take as parameters.

- `Me` (`current_user`): the logged-in user, read from the server-side session (risk.accounts) on every
  request. Nobody logged in, a session that has ended (logged out here or in another browser, a new
  password, a lockout, past its time: the user is told why) or a user removed from supervisors.csv since
  logging in: LoginNeeded, which sends the browser to the login page and back (risk.web.errors).
- `Searcher` (`searcher`): the same, for the city-wide search and its exports (auditors and city staff only; others 403).
- `Posted` (`csrf_form`): a POSTed form's text fields; without the session's CSRF token, 403.

A route that takes a form lists it before the user: FastAPI solves parameters in order, so a form without
its token is refused before anything else is looked at.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from risk import accounts, errors
from risk.alerts import lifecycle as workflow
from risk.db import gateway
from risk.errors import LoginNeeded
from risk.web import security
from risk.web.pages import flash, site, words
from risk.words import both


def current_user(request: Request) -> workflow.User:
    user_id = request.session.get("user_id")
    if not user_id:
        raise LoginNeeded
    s = site(request)
    with gateway.transaction(s.url) as conn:
        if accounts.session_user(conn, request.session.get("sid"), s.lifetime, s.idle) != user_id:
            # logged out (here or in another browser), a new password, a lockout, or past its time
            request.session.clear()
            flash(request, words(request, both("web.session_ended")), "error")
            raise LoginNeeded
        try:
            return workflow.user(conn, user_id)
        except errors.NotAllowed:  # removed from supervisors.csv since logging in
            request.session.clear()
            raise LoginNeeded from None


Me = Annotated[workflow.User, Depends(current_user)]


async def searcher(me: Me) -> workflow.User:
    if me.role not in ("auditor", "city"):
        raise HTTPException(403)
    return me


Searcher = Annotated[workflow.User, Depends(searcher)]


async def csrf_form(request: Request) -> dict[str, str]:
    form = await request.form()
    data = {k: v for k, v in form.items() if isinstance(v, str)}
    if not security.csrf_ok(request, data.get(security.CSRF_FIELD)):
        raise HTTPException(403, "csrf")
    return data


Posted = Annotated[dict[str, str], Depends(csrf_form)]
