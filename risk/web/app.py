"""The supervisors' and auditors' web app: FastAPI with server-rendered Jinja2 pages, no JavaScript build.

    /login, /logout           accounts from supervisors.csv, passwords set with `risk users set-password`
    /alerts                   my queue: filters, sorting, pages
    /alerts/{id}              one case: masked identity ("show" is logged), evidence, timeline, forms
    /dashboard                charts: alerts and amount by county and month, recovered against at risk
    /quality                  rejected rows per source and day, with reasons
    /search (+ .csv, .xlsx)   the city-wide search for auditors and city staff, with exports
    /audit                    the audit log

Every page reads and writes through `risk.alerts.lifecycle` (scope, lifecycle, audit log) and
`risk.web.queries`; this module only turns requests into calls and results into pages. Errors show a
plain page, never a stack trace; the details go to the server's log, with ID numbers masked.
"""
from __future__ import annotations

import csv
import io
import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from risk import accounts, errors, spreadsheet
from risk.alerts import lifecycle as workflow
from risk.db import gateway
from risk.errors import LoginNeeded, Refused, RiskError
from risk.settings import Settings
from risk.web import i18n, queries, security, xlsx

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


SESSION_ENDED = "您已退出或登录已过期，请重新登录 / your session has ended: please log in again"


def create_app(settings: Settings) -> FastAPI:
    gateway.migrate(settings.database_url)
    app = FastAPI(title="社保基金风险监测 / fund risk monitoring", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(security.SecurityHeaders)
    app.add_middleware(SessionMiddleware, secret_key=security.secret_key(settings.var_dir),
                       session_cookie=security.SESSION_COOKIE, max_age=max(1, int(settings.session_hours * 3600)),
                       same_site="lax", https_only=_https_only())
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    url = settings.database_url
    lifetime = timedelta(hours=settings.session_hours)
    idle = timedelta(minutes=settings.session_idle_minutes)

    # -- helpers -----------------------------------------------------------------------------------

    def lang_of(request: Request) -> str:
        return request.session.get("lang") or "zh"

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        choose_language(request)
        lang = lang_of(request)
        context.setdefault("me", None)
        return templates.TemplateResponse(request, name, {
            "lang": lang, "t": lambda key, **v: i18n.translate(key, lang, **v),
            "pick": lambda pair: i18n.pick(pair, lang), "i18n": i18n, "rule_title": queries.rule_title,
            "csrf": security.csrf_token(request), "flash": request.session.pop("flash", []),
            "path": request.url.path, **context}, status_code=status_code)

    def choose_language(request: Request) -> None:
        """`?lang=en|zh` on any page switches the language, and remembers it for a logged-in user."""
        chosen = request.query_params.get("lang")
        if chosen in accounts.LANGUAGES and chosen != request.session.get("lang"):
            request.session["lang"] = chosen
            if request.session.get("user_id"):
                with gateway.transaction(url) as conn:
                    accounts.set_language(conn, request.session["user_id"], chosen)

    def flash(request: Request, message: str, kind: str = "ok") -> None:
        request.session.setdefault("flash", []).append({"kind": kind, "text": message})

    def current(request: Request, conn) -> workflow.User:
        user_id = request.session.get("user_id")
        if not user_id:
            raise LoginNeeded
        if accounts.session_user(conn, request.session.get("sid"), lifetime, idle) != user_id:
            # logged out (here or in another browser), a new password, a lockout, or past its time
            request.session.clear()
            flash(request, words(request, SESSION_ENDED), "error")
            raise LoginNeeded
        try:
            return workflow.user(conn, user_id)
        except errors.NotAllowed:  # removed from supervisors.csv since logging in
            request.session.clear()
            raise LoginNeeded from None

    async def form_of(request: Request) -> dict[str, str]:
        form = await request.form()
        data = {k: v for k, v in form.items() if isinstance(v, str)}
        if not security.csrf_ok(request, data.get(security.CSRF_FIELD)):
            raise HTTPException(403, "csrf")
        return data

    def words(request: Request, message: str) -> str:
        """A bilingual message ('中文 / English') in the user's language (a `?lang=` of this request's too)."""
        choose_language(request)
        zh, sep, en = message.partition(" / ")
        return en if sep and lang_of(request) == "en" else (zh if sep else message)

    # -- errors ------------------------------------------------------------------------------------

    @app.exception_handler(LoginNeeded)
    async def _login_needed(request: Request, _exc: LoginNeeded):
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused):
        return page(request, "error.html", status_code=exc.status_code, message=words(request, exc.message))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 403 and exc.detail == "csrf":
            message = "表单已过期或无效，请刷新页面后重试 / the form has expired: reload the page and try again"
        elif exc.status_code in (403, 404):
            message = i18n.translate("not_found", "zh") + " / " + i18n.translate("not_found", "en")
        else:
            message = i18n.translate("error", "zh") + " / " + i18n.translate("error", "en")
        return page(request, "error.html", status_code=exc.status_code, message=words(request, message))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return page(request, "error.html", status_code=500,
                    message=i18n.translate("error", lang_of(request)) + " — " + i18n.translate("error_hint", lang_of(request)))

    # -- login -------------------------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/alerts"):
        return page(request, "login.html", next=_safe_next(next))

    @app.post("/login")
    async def login(request: Request):
        data = await form_of(request)
        target = _safe_next(data.get("next", "/alerts"))
        try:
            with gateway.transaction(url) as conn:
                user = accounts.login(conn, data.get("user_id", ""), data.get("password", ""),
                                      security.client_address(request))
                lang = accounts.language_of(conn, user.user_id) if user else None
                if user:  # this browser's earlier session (another login name, perhaps) ends here
                    accounts.end_session(conn, request.session.get("sid"))
                token = accounts.start_session(conn, user.user_id, lifetime, idle) if user else None
        except errors.LoginRefused as e:
            return page(request, "login.html", status_code=429, next=target, error=words(request, str(e)))
        if user is None:
            return page(request, "login.html", status_code=401, next=target, error=words(request, accounts.WRONG))
        request.session.clear()  # a fresh session (and CSRF token) for the logged-in user
        request.session.update({"user_id": user.user_id, "sid": token, "lang": lang})
        return RedirectResponse(target, status_code=303)

    @app.post("/logout")
    async def logout(request: Request):
        await form_of(request)
        user_id = request.session.get("user_id")
        with gateway.transaction(url) as conn:  # every session of the user ends, not only this browser's
            if user_id and accounts.session_user(conn, request.session.get("sid"), lifetime, idle) == user_id:
                accounts.end_sessions(conn, user_id)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/")
    def home():
        return RedirectResponse("/alerts", status_code=303)

    # -- the queue ---------------------------------------------------------------------------------

    @app.get("/alerts", response_class=HTMLResponse)
    def alert_queue(request: Request):
        f = queries.AlertFilter.from_query(request.query_params, by_person=False)  # the queue is not a person search
        with gateway.transaction(url) as conn:
            me = current(request, conn)
            result = queries.queue(conn, me, f)
            villages = queries.villages(conn, me)
        return page(request, "queue.html", me=me, f=f, result=result, villages=villages,
                    rules=queries.rule_codes(), statuses=queries.STATUSES, severities=queries.SEVERITIES)

    @app.get("/alerts/{alert_id}", response_class=HTMLResponse)
    def alert_case(request: Request, alert_id: str):
        return _case_page(request, alert_id, unmasked=False)

    @app.post("/alerts/{alert_id}/unmask", response_class=HTMLResponse)
    async def alert_unmask(request: Request, alert_id: str):
        await form_of(request)
        return _case_page(request, alert_id, unmasked=True)

    def _case_page(request: Request, alert_id: str, unmasked: bool) -> HTMLResponse:
        with gateway.transaction(url) as conn:
            me = current(request, conn)
            try:
                c = queries.case(conn, me, alert_id, unmasked=unmasked)
            except errors.NotAllowed:
                raise HTTPException(404) from None
        return page(request, "case.html", me=me, c=c, reasons=list(workflow.DISMISS_REASONS),
                    methods=workflow.RECOVERY_METHODS, max_snooze=workflow.MAX_SNOOZE_DAYS, today=date.today())

    @app.post("/alerts/{alert_id}/act")
    async def alert_act(request: Request, alert_id: str):
        data = await form_of(request)
        action = data.get("action", "")

        def work(conn, me):
            if action == "recover":
                after = workflow.record_recovery(conn, me.user_id, alert_id, data.get("amount", ""),
                                                 _day(data.get("date")), data.get("method", ""),
                                                 data.get("comment") or None, reason=data.get("over_reason"))
                zh, _, en = after.words().partition(" / ")
                return f"已登记追回，{zh} / recovery recorded: {en}"
            if action == "reverse_recovery":
                entry = data.get("entry", "")
                after = workflow.reverse_recovery(conn, me.user_id, alert_id,
                                                  int(entry) if entry.isdigit() and len(entry) < 10 else 0,
                                                  data.get("reason", ""))
                zh, _, en = after.words().partition(" / ")
                return f"已冲正第 {entry} 笔，{zh} / entry {entry} reversed: {en}"
            if action == "snooze":
                days = int(data["days"]) if data.get("days", "").isdigit() else 0
                until = workflow.snooze(conn, me.user_id, alert_id, days, data.get("comment", ""))
                return f"已暂缓至 {until} / snoozed until {until}"
            if action == "dismiss" and not me.read_only and data.get("reason") not in workflow.DISMISS_REASONS:
                raise errors.NotAllowed(DISMISS_NEEDS_A_REASON)  # chosen by the user: none is preselected
            to = workflow.act(conn, me.user_id, alert_id, action, comment=data.get("comment") or None,
                              reason=data.get("reason") or None,
                              unrecovered_ok=action != "close" or data.get("confirm_unrecovered") == "yes")
            zh, en = i18n.STATUS.get(to, (to, to))
            return f"已更新为「{zh}」 / now {en}"

        with gateway.transaction(url) as conn:
            me = current(request, conn)
            try:
                workflow.visible(conn, me, alert_id)  # outside the area: not found, as for a URL
            except errors.NotAllowed:
                raise HTTPException(404) from None
        try:
            with gateway.transaction(url) as conn:
                message = work(conn, me)
            flash(request, words(request, message))
        except RiskError as e:  # refused: a plain message, nothing changed
            flash(request, words(request, str(e)), "error")
        return RedirectResponse(f"/alerts/{quote(alert_id)}", status_code=303)

    # -- dashboard, quality, search, audit ---------------------------------------------------------

    @app.get("/dashboard", response_class=HTMLResponse)
    def dashboard(request: Request):
        from risk.web import charts_page

        with gateway.transaction(url) as conn:
            me = current(request, conn)
            content = charts_page.build(conn, me, lang_of(request))
        return page(request, "dashboard.html", me=me, **content)

    @app.get("/quality", response_class=HTMLResponse)
    def quality(request: Request, source: str | None = None, day: str | None = None):
        from risk.contract import BY_NAME

        with gateway.transaction(url) as conn:
            me = current(request, conn)
            summary = queries.quality_summary(conn, me)
            rows = queries.quality_rows(conn, me, source if source in BY_NAME else None, day,
                                        _int(request.query_params.get("page")))
        return page(request, "quality.html", me=me, summary=summary, rows=rows, source=source, day=day,
                    sources=BY_NAME)

    def _searcher(request: Request, conn) -> workflow.User:
        me = current(request, conn)
        if me.role not in ("auditor", "city"):
            raise HTTPException(403)
        return me

    @app.get("/search", response_class=HTMLResponse)
    def search(request: Request):
        f = queries.AlertFilter.from_query(request.query_params)
        with gateway.transaction(url) as conn:
            me = _searcher(request, conn)
            # an ID number that is not one finds nothing (never the whole city): the page says why
            rows = [] if f.refused else queries.search_rows(conn, me, f, limit=200)
            counties = queries.counties(conn)
        return page(request, "search.html", me=me, f=f, rows=rows, counties=counties, rules=queries.rule_codes(),
                    statuses=queries.STATUSES, searched=bool(request.query_params),
                    refused=[words(request, m) for m in f.refused])

    # the exports' reading and writing run in the thread pool, as the pages' do: a large export does not
    # hold up the other users' requests

    @app.post("/search.csv")
    async def search_csv(request: Request):
        return await run_in_threadpool(_csv_export, request, await form_of(request))

    @app.post("/search.xlsx")
    async def search_xlsx(request: Request):
        return await run_in_threadpool(_xlsx_export, request, await form_of(request))

    def _csv_export(request: Request, form: dict[str, str]) -> Response:
        columns, fields = _export(request, form)
        buf = io.StringIO()
        buf.write("\ufeff")  # Excel opens UTF-8 CSV with Chinese correctly only with a BOM
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow([label for _, label in fields])
        # delivered text (a village's name) that a spreadsheet would run gets a quote in front; amounts stay numbers
        w.writerows(zip(*(spreadsheet.cells(columns[k]) for k, _ in fields), strict=True))
        return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="alerts.csv"'})

    def _xlsx_export(request: Request, form: dict[str, str]) -> Response:
        columns, fields = _export(request, form)  # the writer makes formula-like text plain text (risk.spreadsheet)
        content = xlsx.workbook_of_columns(
            "预警 alerts", [label for _, label in fields],
            [[xlsx.Number(v) for v in columns[k]] if k in ("amount", "recovered") else columns[k] for k, _ in fields])
        return Response(content, headers={"Content-Disposition": 'attachment; filename="alerts.xlsx"'},
                        media_type=xlsx.MEDIA_TYPE)

    def _export(request: Request, form: dict[str, str]):
        f = queries.AlertFilter.from_query(form)
        with gateway.transaction(url) as conn:
            me = _searcher(request, conn)
            if f.refused:  # an ID number that is not one: no export of the whole city instead
                raise Refused(" ".join(f.refused))
            columns = queries.search_columns(conn, me, f)
        log.info("search export by %s: %d alerts", me.user_id, len(columns["alert_id"]))
        return columns, queries.EXPORT_FIELDS

    @app.get("/audit", response_class=HTMLResponse)
    def audit(request: Request):
        f = queries.AuditFilter.from_query(request.query_params)
        with gateway.transaction(url) as conn:
            me = current(request, conn)
            result = queries.audit_log(conn, me, f)
        return page(request, "audit.html", me=me, f=f, result=result, actions=i18n.ACTIONS)

    return app


DISMISS_NEEDS_A_REASON = "请选择排除原因 / choose the reason for dismissing it"


def _https_only() -> bool:
    return Settings.read("https_only")


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no open redirect to somewhere else)."""
    parsed = urlparse(target or "")
    if parsed.scheme or parsed.netloc or not (target or "").startswith("/") or (target or "").startswith("//"):
        return "/alerts"
    return target or "/alerts"


def _day(text: str | None) -> date:
    try:
        return date.fromisoformat(text or "")
    except ValueError:
        raise errors.NotAllowed(f"日期格式应为 年-月-日 / the date must be YYYY-MM-DD, got {text!r}") from None


def _int(text: str | None) -> int:
    return int(text) if text and text.isascii() and text.isdigit() and len(text) < 6 else 1
