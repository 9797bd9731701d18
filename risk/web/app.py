"""The supervisors' and auditors' web app: FastAPI with server-rendered Jinja2 pages, no JavaScript build.
One router per area (risk.web.routes):

    /login, /logout, /        account    accounts from supervisors.csv, passwords set with `risk users set-password`
    /alerts                   queue      my queue: filters, sorting, pages
    /alerts/{id}              case       one case: masked identity ("show" is logged), evidence, timeline, forms
    /search (+ .csv, .xlsx)   search     the city-wide search for auditors and city staff, with exports
    /dashboard                dashboard  charts: alerts and amount by county and month, recovered against at risk
    /quality                  quality    rejected rows per source and day, with reasons
    /audit                    audit      the audit log

Every page reads and writes through `risk.alerts.lifecycle` (scope, lifecycle, audit log) and
`risk.web.queries`; the routers only turn requests into calls and results into pages, taking the user from
risk.web.deps. Errors become answers in one place, risk.web.errors: a plain page, never a stack trace; the
details go to the server's log, with ID numbers masked. This module only assembles the app.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from risk.db import gateway
from risk.settings import Settings
from risk.web import errors, security
from risk.web.pages import Site
from risk.web.routes import account, audit, case, dashboard, quality, queue, search

HERE = Path(__file__).parent
AREAS = (account, queue, case, dashboard, quality, search, audit)


def create_app(settings: Settings) -> FastAPI:
    gateway.migrate(settings.database_url)
    app = FastAPI(title="社保基金风险监测 / fund risk monitoring", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(security.SecurityHeaders)
    app.add_middleware(SessionMiddleware, secret_key=security.secret_key(settings.var_dir),
                       session_cookie=security.SESSION_COOKIE, max_age=max(1, int(settings.session_hours * 3600)),
                       same_site="lax", https_only=_https_only())
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.state.site = Site(settings.database_url, timedelta(hours=settings.session_hours),
                          timedelta(minutes=settings.session_idle_minutes), Jinja2Templates(directory=HERE / "templates"))
    errors.register(app)
    for area in AREAS:
        app.include_router(area.router)
    return app


def _https_only() -> bool:
    return Settings.read("https_only")
