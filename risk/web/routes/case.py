"""/alerts/{id}: one case, its identity masked ("show" is logged), evidence, timeline and forms; and what the
forms do (lifecycle actions, recoveries and their reversal, snoozing). An alert outside the user's area is
not found, as one that does not exist; an action the lifecycle refuses is told in a flash, nothing changed."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from risk import errors
from risk.alerts import lifecycle as workflow
from risk.db import gateway
from risk.errors import RiskError
from risk.web.deps import Me, Posted
from risk.web.pages import flash, page, site, words
from risk.web.queries.case import case
from risk.words import both, side, word

router = APIRouter()

DISMISS_NEEDS_A_REASON = "请选择排除原因 / choose the reason for dismissing it"


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_case(request: Request, alert_id: str, me: Me) -> HTMLResponse:
    return _case_page(request, me, alert_id, unmasked=False)


@router.post("/alerts/{alert_id}/unmask", response_class=HTMLResponse)
def alert_unmask(request: Request, alert_id: str, _data: Posted, me: Me) -> HTMLResponse:
    return _case_page(request, me, alert_id, unmasked=True)


def _case_page(request: Request, me: workflow.User, alert_id: str, unmasked: bool) -> HTMLResponse:
    with gateway.transaction(site(request).url) as conn, _not_found_outside_the_area():
        c = case(conn, me, alert_id, unmasked=unmasked)
    return page(request, "case.html", me=me, c=c, reasons=list(workflow.DISMISS_REASONS),
                methods=workflow.RECOVERY_METHODS, max_snooze=workflow.MAX_SNOOZE_DAYS, today=date.today())


@contextmanager
def _not_found_outside_the_area() -> Iterator[None]:
    """An alert outside the user's area gets the answer of one that does not exist (404), by URL or by form."""
    try:
        yield
    except errors.NotAllowed:
        raise HTTPException(404) from None


@router.post("/alerts/{alert_id}/act")
def alert_act(request: Request, alert_id: str, data: Posted, me: Me) -> Response:
    url = site(request).url
    with gateway.transaction(url) as conn, _not_found_outside_the_area():
        workflow.visible(conn, me, alert_id)
    try:
        with gateway.transaction(url) as conn:
            message = _act(conn, me, alert_id, data)
        flash(request, words(request, message))
    except RiskError as e:  # refused: a plain message, nothing changed
        flash(request, words(request, str(e)), "error")
    return RedirectResponse(f"/alerts/{quote(alert_id)}", status_code=303)


def _act(conn: Connection, me: workflow.User, alert_id: str, data: dict[str, str]) -> str:
    """Do what the form asks; what was done, in words ('中文 / English')."""
    action = data.get("action", "")
    if action == "recover":
        after = workflow.record_recovery(conn, me.user_id, alert_id, data.get("amount", ""),
                                         _day(data.get("date")), data.get("method", ""),
                                         data.get("comment") or None, reason=data.get("over_reason"))
        return both("web.recovery_recorded", balance=lambda lang: side(after.words(), lang))
    if action == "reverse_recovery":
        entry = data.get("entry", "")
        after = workflow.reverse_recovery(conn, me.user_id, alert_id,
                                          int(entry) if entry.isdigit() and len(entry) < 10 else 0,
                                          data.get("reason", ""))
        return both("web.entry_reversed", entry=entry, balance=lambda lang: side(after.words(), lang))
    if action == "snooze":
        days = int(data["days"]) if data.get("days", "").isdigit() else 0
        until = workflow.snooze(conn, me.user_id, alert_id, days, data.get("comment", ""))
        return both("web.now_snoozed", until=until)
    if action == "dismiss" and not me.read_only and data.get("reason") not in workflow.DISMISS_REASONS:
        raise errors.NotAllowed(DISMISS_NEEDS_A_REASON)  # chosen by the user: none is preselected
    to = workflow.act(conn, me.user_id, alert_id, action, comment=data.get("comment") or None,
                      reason=data.get("reason") or None,
                      unrecovered_ok=action != "close" or data.get("confirm_unrecovered") == "yes")
    return both("web.now_status", status=lambda lang: word("status", to, lang))


def _day(text: str | None) -> date:
    try:
        return date.fromisoformat(text or "")
    except ValueError:
        raise errors.NotAllowed(f"日期格式应为 年-月-日 / the date must be YYYY-MM-DD, got {text!r}") from None
