"""/search: the city-wide search for auditors and city staff, and its exports (/search.csv, /search.xlsx),
POSTed with the CSRF token (no ID number in a URL). An ID number that is not one finds nothing, never the
whole city: the page says why, an export is refused."""
from __future__ import annotations

import csv
import io

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from risk import spreadsheet
from risk.alerts.lifecycle import User
from risk.db import gateway
from risk.errors import Refused
from risk.web import xlsx
from risk.web.deps import Posted, Searcher
from risk.web.pages import log, page, site, words
from risk.web.queries.listing import STATUSES, AlertFilter, rule_codes
from risk.web.queries.search import EXPORT_FIELDS, counties, search_columns, search_rows

router = APIRouter()


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, me: Searcher) -> HTMLResponse:
    f = AlertFilter.from_query(request.query_params)
    with gateway.transaction(site(request).url) as conn:
        # an ID number that is not one finds nothing (never the whole city): the page says why
        rows = [] if f.refused else search_rows(conn, me, f, limit=200)
        all_counties = counties(conn)
    return page(request, "search.html", me=me, f=f, rows=rows, counties=all_counties, rules=rule_codes(),
                statuses=STATUSES, searched=bool(request.query_params),
                refused=[words(request, m) for m in f.refused])


# the exports' reading and writing run in the thread pool, as the pages' do (FastAPI runs a route that is a
# plain function there): a large export does not hold up the other users' requests


@router.post("/search.csv")
def search_csv(request: Request, form: Posted, me: Searcher) -> Response:
    columns = _export(request, form, me)
    buf = io.StringIO()
    buf.write("\ufeff")  # Excel opens UTF-8 CSV with Chinese correctly only with a BOM
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([label for _, label in EXPORT_FIELDS])
    # delivered text (a village's name) that a spreadsheet would run gets a quote in front; amounts stay numbers
    w.writerows(zip(*(spreadsheet.cells(columns[k]) for k, _ in EXPORT_FIELDS), strict=True))
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="alerts.csv"'})


@router.post("/search.xlsx")
def search_xlsx(request: Request, form: Posted, me: Searcher) -> Response:
    columns = _export(request, form, me)  # the writer makes formula-like text plain text (risk.spreadsheet)
    content = xlsx.workbook_of_columns(
        "预警 alerts", [label for _, label in EXPORT_FIELDS],
        [[xlsx.Number(v) for v in columns[k]] if k in ("amount", "recovered") else columns[k]
         for k, _ in EXPORT_FIELDS])
    return Response(content, headers={"Content-Disposition": 'attachment; filename="alerts.xlsx"'},
                    media_type=xlsx.MEDIA_TYPE)


def _export(request: Request, form: dict[str, str], me: User) -> dict[str, list]:
    f = AlertFilter.from_query(form)
    if f.refused:  # an ID number that is not one: no export of the whole city instead
        raise Refused(" ".join(f.refused))
    with gateway.transaction(site(request).url) as conn:
        columns = search_columns(conn, me, f)
    log.info("search export by %s: %d alerts", me.user_id, len(columns["alert_id"]))
    return columns
