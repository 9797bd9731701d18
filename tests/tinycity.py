"""A warehouse written directly, small enough to build for every test: two counties, three townships, four
villages, a user of each role in each area, and alerts in every village (status `new`, amounts in fen).

    city 431100000000 ─ county 431102000000 ─ township 431102001000 ─ villages 431102001001 (v1), 431102001002 (v2)
                      │                      └ township 431102002000 ─ village  431102002001 (v3)
                      └ county 431103000000 ─ township 431103001000 ─ village  431103001001 (v4)
"""
from __future__ import annotations

import json
import zlib
from datetime import datetime

from risk.db import gateway
from risk.db.tables import alert, recipient, region, supervisor

CITY = "431100000000"
VILLAGES = {"v1": "431102001001", "v2": "431102001002", "v3": "431102002001", "v4": "431103001001"}
REGIONS = [(CITY, "永州市", "city", ""), ("431102000000", "零陵区", "county", CITY),
           ("431103000000", "冷水滩区", "county", CITY),
           ("431102001000", "七里店街道", "township", "431102000000"),
           ("431102002000", "石岩头镇", "township", "431102000000"),
           ("431103001000", "梅湾街道", "township", "431103000000"),
           (VILLAGES["v1"], "甲村", "village", "431102001000"), (VILLAGES["v2"], "乙村", "village", "431102001000"),
           (VILLAGES["v3"], "丙村", "village", "431102002000"), (VILLAGES["v4"], "丁村", "village", "431103001000")]
# user id -> (role, region code)
USERS = {"v1": ("village", VILLAGES["v1"]), "v2": ("village", VILLAGES["v2"]), "v3": ("village", VILLAGES["v3"]),
         "v4": ("village", VILLAGES["v4"]), "t1": ("township", "431102001000"), "t2": ("township", "431102002000"),
         "t3": ("township", "431103001000"), "c1": ("county", "431102000000"), "c2": ("county", "431103000000"),
         "city": ("city", CITY), "aud": ("auditor", CITY)}
PROVENANCE = {"delivery_day": "2026-01-05", "source_file": "-", "source_line": 1}


def build(url: str, alerts_per_village: int = 2, amount_cents: int = 74940) -> dict[str, list[str]]:
    """Migrate `url` and write the city; returns each village's alert ids (key: v1 … v4)."""
    gateway.migrate(url)
    made: dict[str, list[str]] = {}
    with gateway.transaction(url) as conn:
        conn.execute(region.insert(), [{"code": c, "name": n, "level": lv, "parent_code": p, **PROVENANCE}
                                       for c, n, lv, p in REGIONS])
        conn.execute(supervisor.insert(), [{"user_id": u, "name": f"测试{u}", "role": role, "region_code": code,
                                            **PROVENANCE} for u, (role, code) in USERS.items()])
        for v, code in VILLAGES.items():
            for n in range(alerts_per_village):
                made.setdefault(v, []).append(add_alert(conn, f"{v}-{n}", code, amount_cents + n))
    return made


def add_alert(conn, key: str, village_code: str, amount_cents: int, person_name: str = "张三",
              rule: str = "deceased_payment") -> str:
    """One `new` alert (and its person) in `village_code`; returns its id."""
    alert_id = f"a-{key}"
    person = f"{village_code[:6]}{zlib.crc32(key.encode()):012d}"
    conn.execute(recipient.insert().values(person_id=person, name=person_name, gender="F",
                                           birth_date=datetime(1950, 1, 1).date(), village_code=village_code,
                                           bank_account="6200000000000000", card_no="C1", **PROVENANCE))
    conn.execute(alert.insert().values(
        alert_id=alert_id, rule=rule, rule_version=1, person_id=person, village_code=village_code,
        severity="high", score=1.0, amount_at_risk_cents=amount_cents, first_seen="2026-01-05",
        last_changed="2026-01-05", status="new", evidence=json.dumps([{"fact": "payment", "id": "P1"}]),
        evidence_count=1, raised_at=datetime(2026, 1, 5, 2, 0), level="village"))
    return alert_id


PASSWORD = "correct horse battery"


def web_client(url: str, var_dir, user_id: str):
    """A TestClient of the web app over `url`, logged in as `user_id` (Chinese pages)."""
    import re

    from fastapi.testclient import TestClient

    from risk import accounts
    from risk.settings import Settings
    from risk.web.app import create_app

    with gateway.transaction(url) as conn:
        accounts.set_password(conn, user_id, PASSWORD)
    client = TestClient(create_app(Settings(database_url=url, var_dir=var_dir)), base_url="http://testserver")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token, "no CSRF token on the login page"
    r = client.post("/login", data={"user_id": user_id, "password": PASSWORD, "csrf_token": token.group(1),
                                    "next": "/alerts"}, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    client.get("/alerts?lang=zh")
    return client


def csrf(html: str) -> str:
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)
