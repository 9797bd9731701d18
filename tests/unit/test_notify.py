"""Digests delivered to a real SMTP server (aiosmtpd on loopback) and a real HTTP receiver, masked."""
from __future__ import annotations

import json
import re
import threading
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select, update

from risk import pipeline
from risk.db import gateway
from risk.db.tables import alert, notification, recipient, supervisor
from risk.settings import Settings
from risk.synth import generate


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Settings:
    out = tmp_path_factory.mktemp("notify-city")
    generate(out, people=1200, months=5, seed=13)
    settings = Settings(database_url=f"sqlite:///{out / 'w.db'}", var_dir=out / "var")
    pipeline.run(settings, out / "landing", send_digests=False)
    return settings


@pytest.fixture
def webhook():
    posts: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            posts.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"json://127.0.0.1:{server.server_address[1]}/", posts
    server.shutdown()


def text_of(raw: bytes) -> str:
    msg = message_from_bytes(raw)
    parts = [p.get_payload(decode=True).decode("utf-8") for p in msg.walk() if p.get_content_type() == "text/plain"]
    return str(make_header(decode_header(msg["Subject"]))) + "\n" + "\n".join(parts)


def test_digests_reach_email_and_webhook_masked_and_are_recorded(city, smtp, webhook, monkeypatch, capsys):
    mails = smtp.messages
    hook, posts = webhook
    with gateway.transaction(city.database_url) as conn:
        v = conn.execute(select(alert.c.village_code).where(alert.c.status == "new", alert.c.rule != "anomaly")).scalar()
        conn.execute(update(supervisor).where(supervisor.c.region_code == v).values(notify_url=hook))
        user = conn.execute(select(supervisor).where(supervisor.c.region_code == v)).first()
        mine = conn.execute(select(alert.c.person_id).where(alert.c.village_code == v, alert.c.status == "new")).scalars().all()
        names = conn.execute(select(recipient.c.name).where(recipient.c.person_id.in_(mine))).scalars().all()
    monkeypatch.setenv("RISK_SMTP_URL", smtp.url)
    result = pipeline.notify(city)
    with gateway.transaction(city.database_url) as conn:
        errors = conn.execute(select(notification.c.channel, notification.c.error).where(
            notification.c.status == "failed")).all()
    # only supervisors without an email or notify_url go untold, and that is recorded too
    assert result["sent"] >= 2 and {channel for channel, _ in errors} <= {"none"}, errors
    mail = [text_of(m) for m in mails if user.email.encode() in m]
    assert len(mail) == 1 and "待处理" in mail[0] and "/alerts/A" in mail[0]
    post = [p for p in posts if user.user_id in p.get("message", "")]
    assert len(post) == 1
    for shown in [mail[0], post[0]["message"]]:
        for pid in mine:
            assert pid not in shown
        for name in names:
            assert len(name) < 2 or name not in shown
        assert re.search(r"\d{6}\*{8}[\dX]{4}", shown)
    with gateway.transaction(city.database_url) as conn:
        kinds = {r.channel for r in conn.execute(select(notification).where(notification.c.user_id == user.user_id))}
    assert kinds == {"email", "url"}
    # nothing new since: no second digest for them
    pipeline.notify(city)
    with gateway.transaction(city.database_url) as conn:
        again = conn.execute(select(notification).where(notification.c.user_id == user.user_id)).all()
    assert len(again) == 2


def test_a_failing_channel_is_recorded_and_never_fails_the_run(city, monkeypatch, tmp_path):
    from risk.alerts import digests as notify

    monkeypatch.delenv("RISK_SMTP_URL", raising=False)
    with gateway.transaction(city.database_url) as conn:
        u = conn.execute(select(supervisor).where(supervisor.c.role == "village")).first()
        conn.execute(update(supervisor).where(supervisor.c.user_id == u.user_id)
                     .values(notify_url="json://127.0.0.1:9/"))  # nothing listens on port 9
        digest = notify.Digest(notify.User(u.user_id, u.name, u.role, u.region_code), None, "json://127.0.0.1:9/",
                               "s", "b", 1)
        assert notify.record(conn, [digest]) == 0
    counts = notify.deliver(city.database_url, attempts=2, backoff=0.01)
    with gateway.transaction(city.database_url) as conn:
        failed = conn.execute(select(notification).where(notification.c.status == "failed")
                              .order_by(notification.c.id)).all()
    assert counts == {"sent": 0, "failed": 1, "resent": 0}
    assert failed and failed[-1].attempts == 2 and failed[-1].user_id == u.user_id and failed[-1].sent_at


def test_outbox_writes_one_file_per_supervisor(tmp_path_factory, tmp_path):
    out = tmp_path_factory.mktemp("outbox-city")
    generate(out, people=800, months=4, seed=14)
    settings = Settings(database_url=f"sqlite:///{out / 'w.db'}", var_dir=out / "var")
    pipeline.run(settings, out / "landing")
    result = pipeline.notify(settings, outbox=tmp_path / "outbox")
    files = list(Path(tmp_path / "outbox").glob("*.txt"))
    assert result["digests"] == len(files) > 0
    assert all("社保基金风险预警" in f.read_text(encoding="utf-8") for f in files)


def test_each_supervisor_reads_their_digest_in_the_language_they_chose(tmp_path_factory, tmp_path):
    from risk import accounts
    from risk.alerts import digests as notify
    from risk.cli import main

    out = tmp_path_factory.mktemp("language-city")
    generate(out, people=800, months=4, seed=15)
    settings = Settings(database_url=f"sqlite:///{out / 'w.db'}", var_dir=out / "var")
    pipeline.run(settings, out / "landing", send_digests=False)
    with gateway.transaction(settings.database_url) as conn:
        due = notify.build(conn)
    assert len(due) >= 2
    english, chinese = due[0].user.user_id, due[1].user.user_id
    assert main(["users", "set-language", english, "en", "--db", settings.database_url]) == 0

    pipeline.notify(settings, outbox=tmp_path)
    en = (tmp_path / f"{english}.txt").read_text(encoding="utf-8")
    zh = (tmp_path / f"{chinese}.txt").read_text(encoding="utf-8")
    assert en.startswith("Fund-risk alerts:") and "at risk" in en and "待处理" not in en and "您好" not in en and "Hello" in en
    assert zh.startswith("社保基金风险预警") and "您好" in zh and "at risk" not in zh
    with gateway.transaction(settings.database_url) as conn:
        assert accounts.language_of(conn, english) == "en"
        assert accounts.language_of(conn, chinese) == "zh"  # nobody chose: Chinese
    with pytest.raises(Exception, match="no such user"):
        with gateway.transaction(settings.database_url) as conn:
            accounts.set_language(conn, "nobody", "en")
