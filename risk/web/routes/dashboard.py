"""/dashboard: charts of the user's area (alerts and amount by county and month, recovered against at risk,
escalations; risk.web.charts_page)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from risk.db import gateway
from risk.web import charts_page
from risk.web.deps import Me
from risk.web.pages import lang_of, page, site

router = APIRouter()


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, me: Me) -> HTMLResponse:
    with gateway.transaction(site(request).url) as conn:
        content = charts_page.build(conn, me, lang_of(request))
    return page(request, "dashboard.html", me=me, **content)
