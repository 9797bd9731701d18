"""/audit: the audit log of the user's area (decisions, recoveries, snoozes, escalations, unmasked views)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from risk.db import gateway
from risk.web.deps import Me
from risk.web.pages import page, site
from risk.web.queries.audit import AuditFilter, audit_log
from risk.words import codes

router = APIRouter()


@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request, me: Me) -> HTMLResponse:
    f = AuditFilter.from_query(request.query_params)
    with gateway.transaction(site(request).url) as conn:
        result = audit_log(conn, me, f)
    return page(request, "audit.html", me=me, f=f, result=result, actions=codes("action"))
