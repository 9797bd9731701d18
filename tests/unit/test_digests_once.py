"""Each digest is recorded as it is made: a run killed while sending sends, on the rerun, only what was left
(the one message in flight may arrive twice: at-least-once, see risk/alerts/digests.py), and nobody waits for the
whole send. Real parts: a real SMTP server (aiosmtpd on loopback), a real HTTP receiver that can be slow,
a real process killed with SIGKILL; on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from risk import accounts, pipeline
from risk.db import gateway
from risk.db.tables import alert, notification, supervisor
from risk.settings import Settings

VILLAGE = "4311020010"  # + two digits: a village of its own for each supervisor
GREETING = re.compile(r"(sup\d\d)，您好")


def warehouse_with_alerts(url: str, people: int, notify_url: str, email: bool = True) -> list[str]:
    """A migrated warehouse with `people` village supervisors (each with an email when `email`, and
    `notify_url`) and two new alerts in each one's village; their user ids."""
    gateway.migrate(url)
    users = [f"sup{i:02d}" for i in range(1, people + 1)]
    now = datetime.now()
    with gateway.transaction(url) as conn:
        conn.execute(supervisor.insert(), [
            {"user_id": u, "name": f"监督员{i}", "role": "village", "region_code": f"{VILLAGE}{i:02d}",
             "email": f"{u}@example.org" if email else None, "notify_url": notify_url,
             "delivery_day": "2025-03-01", "source_file": "supervisors.csv", "source_line": i + 1}
            for i, u in enumerate(users, start=1)])
        conn.execute(alert.insert(), [
            {"alert_id": f"A{i:02d}{n}", "rule": "dual_benefit", "rule_version": 1,
             "person_id": f"43110219600101{i:02d}{n}1", "village_code": f"{VILLAGE}{i:02d}", "severity": "high",
             "score": 1.0, "amount_at_risk_cents": 10_000 * (n + 1), "first_seen": "2025-03-01",
             "last_changed": "2025-03-01", "status": "new", "evidence": "[]", "evidence_count": 0,
             "raised_at": now, "level": "village"}
            for i in range(1, people + 1) for n in range(2)])
    return users


class Receiver:
    """A real HTTP receiver for JSON webhooks that answers each POST `delay` seconds after it got it."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.users: list[str] = []  # whose digest each POST carried, in the order they came
        self.got = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                message = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                found = GREETING.search(message.get("message", ""))
                with receiver.got:
                    receiver.users.append(found.group(1) if found else "?")
                    receiver.got.notify_all()
                time.sleep(receiver.delay)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, posts: int, timeout: float = 60) -> None:
        with self.got:
            assert self.got.wait_for(lambda: len(self.users) >= posts, timeout), f"only {len(self.users)} POSTs came"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def statuses(url: str) -> Counter:
    with gateway.reading(url) as conn:
        return Counter(conn.execute(select(notification.c.status)).scalars())


def test_a_run_killed_while_sending_sends_only_what_was_left(db_url, tmp_path, smtp, receiver, monkeypatch):
    """`risk notify` killed (SIGKILL) after some digests went out; the rerun sends the rest: every supervisor
    has exactly one email and one webhook message, but for the one message in flight when the run was
    killed, which is sent again (at-least-once)."""
    smtp_url, mails = smtp.url, smtp.recipients
    users = warehouse_with_alerts(db_url, 8, receiver.url)
    receiver.delay = 0.5  # each webhook message takes a while: the kill finds one in flight
    env = {**os.environ, "RISK_SMTP_URL": smtp_url, "RISK_VAR_DIR": str(tmp_path / "var")}
    child = subprocess.Popen([sys.executable, "-c", "import sys; from risk.cli import main; "
                              f"sys.exit(main(['notify', '--db', {db_url!r}]))"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        receiver.wait_for(3)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with gateway.reading(db_url) as conn:
        in_flight = conn.execute(select(notification.c.user_id, notification.c.channel)
                                 .where(notification.c.status == "sending")).all()
    left = statuses(db_url)
    told_before = Counter(receiver.users)
    assert len(told_before) == 3 and all(n == 1 for n in told_before.values())

    receiver.delay = 0.0
    monkeypatch.setenv("RISK_SMTP_URL", smtp_url)
    result = pipeline.notify(Settings(database_url=db_url, var_dir=tmp_path / "var"))

    assert Counter(mails) == {f"{u}@example.org": 1 for u in users}
    twice = in_flight[0].user_id if in_flight else None  # the webhook message in flight at the kill
    assert Counter(receiver.users) == {u: 2 if u == twice else 1 for u in users}
    assert twice in told_before
    # what the killed run had done was recorded as it was done: decided, sent, the one in flight; the rerun
    # decided nothing again
    assert left["sent"] >= 2 and left["due"] >= 2 * len(users) - 6 and [r.channel for r in in_flight] == ["url"]
    assert result["digests"] == 0 and result["resent"] == 1 and result["failed"] == 0
    with gateway.reading(db_url) as conn:
        rows = conn.execute(select(notification.c.user_id, notification.c.channel, notification.c.status,
                                   notification.c.claimed_by)).all()
    assert sorted((r.user_id, r.channel) for r in rows) == sorted((u, c) for u in users for c in ("email", "url"))
    assert {(r.status, r.claimed_by) for r in rows} == {("sent", None)}
    # a third run finds nothing left and nothing new: nobody hears again
    assert pipeline.notify(Settings(database_url=db_url, var_dir=tmp_path / "var"))["sent"] == 0
    assert len(receiver.users) == len(users) + 1 and len(mails) == len(users)


def test_a_login_does_not_wait_for_the_digests_to_be_sent(db_url, tmp_path, receiver, monkeypatch):
    """While the digests go out through a slow channel, a web login (a write: its attempt is recorded) gets
    in at once, and the deliveries already made are there for anyone to see."""
    monkeypatch.delenv("RISK_SMTP_URL", raising=False)
    users = warehouse_with_alerts(db_url, 5, receiver.url, email=False)
    with gateway.transaction(db_url) as conn:
        accounts.set_password(conn, users[0], "a long enough password 1")
    receiver.delay = 1.0
    settings = Settings(database_url=db_url, var_dir=tmp_path / "var")
    done: dict = {}
    sending = threading.Thread(target=lambda: done.update(pipeline.notify(settings)))
    started = time.monotonic()
    sending.start()
    try:
        receiver.wait_for(2)  # the first digest is out, the second on its way
        seen = statuses(db_url)
        t = time.monotonic()
        with gateway.transaction(db_url) as conn:
            user = accounts.login(conn, users[0], "a long enough password 1", "127.0.0.1")
        waited = time.monotonic() - t
        still_sending = sending.is_alive()
    finally:
        sending.join(60)
    took = time.monotonic() - started
    assert user is not None and user.user_id == users[0]
    assert still_sending and waited < 1.5 and took > 4.5, (waited, took)
    assert seen["sent"] >= 1 and seen["sending"] == 1 and seen["due"] >= 2, seen
    assert done["sent"] == len(users) and statuses(db_url) == {"sent": len(users)}
