"""A generated city with web accounts for one user of each role, and a logged-in test client.

`city` is the city on SQLite; a test module that must hold on PostgreSQL too defines its own `city` as
`both_databases` (below): each of its tests then runs on `sqlite_city` and on `postgres_city` (marked
`postgres`)."""
from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from warehouses import pg_database

from risk import accounts, pipeline
from risk.db import gateway
from risk.db.tables import alert, supervisor
from risk.settings import Settings
from risk.synth import generate

PASSWORD = "correct horse battery"


@dataclass
class City:
    settings: Settings
    users: dict[str, str]  # role (and "other_village") -> user_id
    alert_id: str  # a new alert in users["village"]'s village
    other_alert_id: str  # a new alert in another village
    out: Path

    @property
    def url(self) -> str:
        return self.settings.database_url


@pytest.fixture(scope="session")
def sqlite_city(tmp_path_factory) -> City:
    out = tmp_path_factory.mktemp("web-city")
    return _build_city(out, f"sqlite:///{out / 'w.db'}")


@pytest.fixture(scope="session")
def postgres_city(tmp_path_factory) -> Iterator[City]:
    """The same city in a PostgreSQL database of its own (dropped afterwards)."""
    out = tmp_path_factory.mktemp("web-city-pg")
    with pg_database() as url:
        yield _build_city(out, url)


@pytest.fixture(scope="session")
def city(sqlite_city) -> City:
    return sqlite_city


def both_databases(request) -> City:
    """A module's `city`, once on SQLite and once on PostgreSQL:
    `city = pytest.fixture(params=DATABASES, scope="module")(both_databases)`."""
    return request.getfixturevalue(f"{request.param}_city")


DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _build_city(out: Path, url: str) -> City:
    generate(out, people=1200, months=5, seed=13)
    settings = Settings(database_url=url, var_dir=out / "var")
    pipeline.run(settings, out / "landing", send_digests=False)
    with gateway.transaction(settings.database_url) as conn:
        # the village with most new alerts, and another village's alert
        village, _ = conn.execute(select(alert.c.village_code, func.count()).where(alert.c.status == "new")
                                  .group_by(alert.c.village_code).order_by(func.count().desc(), alert.c.village_code)).first()
        mine = conn.execute(select(alert.c.alert_id).where(alert.c.village_code == village, alert.c.status == "new")
                            .order_by(alert.c.amount_at_risk_cents.desc())).scalars().all()
        other = conn.execute(select(alert.c.alert_id).where(alert.c.village_code != village,
                                                            func.substr(alert.c.village_code, 1, 9) != village[:9])
                             .order_by(alert.c.alert_id)).scalars().first()
        staff = conn.execute(select(supervisor)).all()
        users = {}
        for role, n in (("village", 12), ("township", 9), ("county", 6), ("city", 4), ("auditor", 4)):
            users[role] = next(s.user_id for s in staff if s.role == role and s.region_code[:n] == village[:n])
        users["other_village"] = next(s.user_id for s in staff if s.role == "village"
                                      and s.region_code[:9] != village[:9])
        for user_id in users.values():
            accounts.set_password(conn, user_id, PASSWORD)
    assert len(mine) >= 3 and other
    return City(settings, users, mine[0], other, out)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def log_in(client, user_id: str, password: str = PASSWORD):
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"user_id": user_id, "password": password, "csrf_token": token,
                                        "next": "/alerts"}, follow_redirects=False)


@pytest.fixture
def client_for(city):
    """client_for(role) → a TestClient logged in as that role's user."""
    from fastapi.testclient import TestClient

    from risk.web.app import create_app

    app = create_app(city.settings)
    made = []

    def make(role: str | None = None):
        c = TestClient(app, base_url="http://testserver")
        made.append(c)
        if role:
            r = log_in(c, city.users[role])
            assert r.status_code == 303, r.text[:500]
            c.get("/alerts?lang=zh")  # Chinese, whatever another test chose for this user
        return c

    yield make
    for c in made:
        c.close()


@contextlib.contextmanager
def running_server(city: City, log_path: Path) -> Iterator[str]:
    """A real `risk serve` on a free port over the city's warehouse, its whole output in `log_path`;
    yields its base URL and stops it afterwards."""
    import httpx

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "risk.cli", "serve", "--port", str(port), "--db", city.url],
                                stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "RISK_VAR_DIR": str(city.out / "var")})
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(150):
                try:
                    httpx.get(f"{base}/login", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=10)
