"""/quality: the rows the nightly load rejected, per source and day, with their reasons (the user's area)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from risk.contract import BY_NAME
from risk.db import gateway
from risk.web.deps import Me
from risk.web.pages import page, site
from risk.web.queries.quality import quality_rows, quality_summary

router = APIRouter()


@router.get("/quality", response_class=HTMLResponse)
def quality(request: Request, me: Me, source: str | None = None, day: str | None = None) -> HTMLResponse:
    with gateway.transaction(site(request).url) as conn:
        summary = quality_summary(conn, me)
        rows = quality_rows(conn, me, source if source in BY_NAME else None, day,
                            _int(request.query_params.get("page")))
    return page(request, "quality.html", me=me, summary=summary, rows=rows, source=source, day=day,
                sources=BY_NAME)


def _int(text: str | None) -> int:
    return int(text) if text and text.isascii() and text.isdigit() and len(text) < 6 else 1
