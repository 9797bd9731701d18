"""/alerts: my queue, with its filters, sorting and pages."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from risk.db import gateway
from risk.web.deps import Me
from risk.web.pages import page, site
from risk.web.queries.listing import SEVERITIES, STATUSES, AlertFilter, rule_codes
from risk.web.queries.queue import queue, villages

router = APIRouter()


@router.get("/alerts", response_class=HTMLResponse)
def alert_queue(request: Request, me: Me) -> HTMLResponse:
    f = AlertFilter.from_query(request.query_params, by_person=False)  # the queue is not a person search
    with gateway.transaction(site(request).url) as conn:
        result = queue(conn, me, f)
        in_area = villages(conn, me)
    return page(request, "queue.html", me=me, f=f, result=result, villages=in_area,
                rules=rule_codes(), statuses=STATUSES, severities=SEVERITIES)
