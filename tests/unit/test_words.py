"""The translation catalogue (risk/locale, read by risk/words.py): the two languages hold exactly the
template's messages, all translated, with the same placeholders; every word the code uses is there; the
fallbacks; and the pages and digests read exactly as they did before the catalogue (tests/unit/expected,
rendered by the code it replaced)."""
from __future__ import annotations

import ast
import logging
import re
from pathlib import Path
from string import Formatter

import pytest
import tinycity
from babel.messages.pofile import read_po
from sqlalchemy import select, update

from risk import accounts, contract, words
from risk.alerts import digests
from risk.alerts import lifecycle as workflow
from risk.db import gateway
from risk.db.tables import alert, supervisor
from risk.detection.registry import RULES
from risk.settings import DEFAULT_SLA_DAYS, ROOT
from risk.web.queries import listing

EXPECTED = Path(__file__).parent / "expected"
BASE_URL = "https://risk.example"


def _read(path: Path):
    with path.open("rb") as f:
        return read_po(f)


def _messages(path: Path) -> list:
    return [m for m in _read(path) if m.id]


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name is not None}


# -- the files ------------------------------------------------------------------------------------------


def test_each_language_holds_exactly_the_templates_messages_in_its_order():
    template = [m.id for m in _messages(words.TEMPLATE)]
    assert template and len(template) == len(set(template))
    assert all(not m.string for m in _messages(words.TEMPLATE))
    for lang in words.LANGUAGES:
        assert [m.id for m in _messages(words.po_file(lang))] == template, lang


@pytest.mark.parametrize("lang", words.LANGUAGES)
def test_every_message_is_translated_and_none_is_fuzzy(lang):
    for m in _messages(words.po_file(lang)):
        assert isinstance(m.string, str) and m.string.strip(), (lang, m.id)
        assert not m.fuzzy, (lang, m.id)
    assert len(words.catalogue(lang)) == len(_messages(words.TEMPLATE))


def test_every_placeholder_is_the_same_in_both_languages_and_the_english_is_english():
    zh, en = words.catalogue("zh"), words.catalogue("en")
    for key, text in zh.items():
        assert _fields(text) == _fields(en[key]), key
        assert all(name.isidentifier() for name in _fields(text)), key  # named fields: `{page}`, never `{}`
    # not a copy of the other language by mistake (the language link says the other language's name)
    assert not [k for k in en if re.search(r"[\u4e00-\u9fff]", en[k]) and k != "web.language"]


def test_the_languages_are_the_accounts_languages():
    assert words.LANGUAGES == tuple(accounts.LANGUAGES) and words.DEFAULT_LANGUAGE == accounts.DEFAULT_LANGUAGE


# -- every word the code uses -------------------------------------------------------------------------


def _logged_actions() -> set[str]:
    """The actions the code writes to the audit log: the literal `action` of every `log_event` call."""
    found = set()
    for path in (ROOT / "risk").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "log_event":
                action = node.args[3] if len(node.args) > 3 else None
                if isinstance(action, ast.Constant) and isinstance(action.value, str):
                    found.add(action.value)
    return found


def _facts() -> set[str]:
    """The kinds of fact the rules' evidence (sql/rules) and the behaviour scores (risk/) name."""
    sql = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "sql" / "rules").glob("*.sql"))
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "risk").rglob("*.py"))
    return (set(re.findall(r"SELECT\s+(?:\w+\.)?person_id,\s*'(\w+)'", sql))
            | set(re.findall(r"""["']fact["']:\s*["'](\w+)["']""", code)))


def _statuses() -> set[str]:
    """What an alert's status can be: the lifecycle's moves, the lists' filters and the data contract."""
    contract_doc = (ROOT / "docs" / "data-contract.md").read_text(encoding="utf-8")
    said = re.search(r"`status` is one of ([^.]*)\.", contract_doc.replace("\n", " "))
    assert said, "docs/data-contract.md no longer says what a status can be"
    return ({s for starts, to in workflow.TRANSITIONS.values() for s in (*starts, to)} | set(workflow.OPEN)
            | set(listing.STATUSES) | set(re.findall(r"`(\w+)`", said.group(1))))


def vocabulary() -> dict[str, set[str]]:
    used = {
        "status": _statuses(),
        "action": set(workflow.TRANSITIONS) | _logged_actions(),
        "level": set(contract.LEVELS),
        "severity": set(listing.SEVERITIES) | {r.severity for r in RULES} | set(DEFAULT_SLA_DAYS),
        "method": set(workflow.RECOVERY_METHODS),
        "dismiss_reason": set(workflow.DISMISS_REASONS),
        "fact": _facts(),
    }
    from risk import domain  # its enums are the vocabulary itself

    for kind, enum in (("status", "Status"), ("action", "Action"), ("level", "Level"), ("severity", "Severity"),
                       ("method", "Method")):
        used[kind] |= {str(v) for v in getattr(domain, enum, ())}
    return used


def test_every_value_the_code_uses_has_its_words_in_both_languages():
    used = vocabulary()
    assert {"withdrawn", "new", "closed"} <= used["status"] and {"recover", "escalate", "reopen"} <= used["action"]
    assert {"payment", "card_event", "death", "feature"} <= used["fact"]
    keys = {f"{kind}.{value}" for kind, values in used.items() for value in values}
    keys |= {f"next_step.{s}" for s in used["status"]} | {f"lifecycle.status.{s}" for s in used["status"]}
    keys |= {f"lifecycle.action.{a}" for a in workflow.TRANSITIONS}
    keys |= {f"web.{a}" for a in (*workflow.TRANSITIONS, "recover", "snooze")}  # the case page's forms
    for lang in words.LANGUAGES:
        assert not sorted(keys - set(words.catalogue(lang))), lang


def test_every_key_the_templates_and_the_code_name_is_in_the_catalogue():
    named = set()
    for path in [*(ROOT / "risk" / "web" / "templates").glob("*.html"), *(ROOT / "risk").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r"""\b(?:t|both|has)\(\s*["']([a-z_]+\.[a-z_.]+)["']""", text))
        named |= {f"{kind}.x" for kind in re.findall(r"""\bword\(\s*["']([a-z_.]+)["']""", text)}
    assert len(named) > 100
    kinds = {k.rsplit(".", 1)[0] for k in words.catalogue("zh")}
    for key in named:
        assert key in words.catalogue("zh") or (key.endswith(".x") and key[:-2] in kinds), key


# -- the functions -------------------------------------------------------------------------------------


def test_words_in_each_language_with_their_values():
    assert words.t("status.new", "zh") == "新预警" and words.t("status.new", "en") == "new"
    assert words.t("web.page", "en", page=2, pages=3, total=51) == "Page 2 of 3, 51 in all"
    assert words.t("web.page", "zh", page=2, pages=3, total=51) == "第 2 / 3 页，共 51 条"
    assert words.both("web.not_found") == "找不到页面或无权查看 / Not found, or not yours to see"
    assert (words.both("web.now_status", status=lambda lang: words.word("status", "confirmed", lang))
            == "已更新为「已确认」 / now confirmed")
    assert words.side("中文 / English", "en") == "English" and words.side("中文 / English", "zh") == "中文"
    assert words.side("just one", "en") == "just one"
    assert words.word("level", "township", "zh") == "乡镇（街道）"
    assert words.word("dismiss_reason", "a user's own words", "en") == "a user's own words"
    assert words.word("status", None, "en") == ""
    assert words.codes("severity") == ("high", "medium", "low")
    assert "lifecycle.status" not in words.codes("lifecycle") and words.has("web.queue")


def _catalogues(folder: Path, monkeypatch, zh: str, en: str | None) -> None:
    """risk.words reading these two catalogues instead of the project's (en None: no English file)."""
    head = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
    for lang, body in (("zh", zh), ("en", en)):
        if body is not None:
            path = folder / words.LOCALES[lang] / "LC_MESSAGES" / f"{words.DOMAIN}.po"
            path.parent.mkdir(parents=True)
            path.write_text(head + body, encoding="utf-8")
    monkeypatch.setattr(words, "LOCALE_DIR", folder)
    monkeypatch.setattr(words, "_told", set())
    words.catalogue.cache_clear()


@pytest.fixture
def own_catalogues(tmp_path, monkeypatch):
    yield lambda zh, en: _catalogues(tmp_path, monkeypatch, zh, en)
    words.catalogue.cache_clear()  # the project's again for the next test


def test_what_is_missing_falls_back_to_chinese_then_to_the_key_and_is_logged_once(own_catalogues, caplog):
    own_catalogues(zh='msgid "a.both"\nmsgstr "甲"\n\nmsgid "a.zh_only"\nmsgstr "只有中文 {n}"\n\n'
                      'msgid "a.fuzzy"\nmsgstr "模糊"\n\nmsgid "a.broken"\nmsgstr "坏了 {n}"\n',
                   en='msgid "a.both"\nmsgstr "A"\n\nmsgid "a.zh_only"\nmsgstr ""\n\n'
                      '#, fuzzy\nmsgid "a.fuzzy"\nmsgstr "fuzzy"\n\nmsgid "a.broken"\nmsgstr "broken {m}"\n')
    caplog.set_level(logging.WARNING, logger="risk.words")
    assert words.t("a.both", "en") == "A" and words.t("a.both", "zh") == "甲"
    assert words.t("a.both", "fr") == "甲" and words.t("a.both", "") == "甲"  # Chinese for anything but en
    for _ in range(3):
        assert words.t("a.zh_only", "en", n=1) == "只有中文 1"  # an empty translation is missing
        assert words.t("a.fuzzy", "en") == "模糊"  # and so is a fuzzy one, as gettext has it
        assert words.t("no.such", "en") == "no.such" and words.t("no.such", "zh") == "no.such"
        assert words.t("a.broken", "en", n=2) == "坏了 2"  # a broken placeholder: the Chinese
    said = [r.getMessage() for r in caplog.records]
    for gap in ("a.zh_only in 'en'", "a.fuzzy in 'en'", "no.such in 'any language'",
                "a.broken (its placeholders) in 'en'", "in 'fr'", "in ''"):
        assert sum(gap in s for s in said) == 1, (gap, said)
    assert len(said) == 6, said


def test_a_language_without_its_file_speaks_chinese(own_catalogues, caplog):
    own_catalogues(zh='msgid "a.both"\nmsgstr "甲"\n', en=None)
    assert words.t("a.both", "en") == "甲" and words.both("a.both") == "甲 / 甲"
    assert any("no catalogue for en" in r.getMessage() for r in caplog.records)


# -- as before ------------------------------------------------------------------------------------------


def small_city(folder: Path) -> str:
    """tinycity's warehouse with a little of everything the queue shows: an anomaly, an acknowledged alert
    of medium severity that has moved up to its township."""
    url = f"sqlite:///{folder / 'w.db'}"
    made = tinycity.build(url)
    with gateway.transaction(url) as conn:
        tinycity.add_alert(conn, "v1-anomaly", tinycity.VILLAGES["v1"], 123456, person_name="李四", rule="anomaly")
        conn.execute(update(alert).where(alert.c.alert_id == made["v2"][0])
                     .values(status="acknowledged", severity="medium", level="township"))
    return url


def queue_pages(url: str, folder: Path) -> dict[str, str]:
    """The queue of a township's supervisor, in each language; the form token and the days an alert has been
    open (which grow every day) blanked."""
    client = tinycity.web_client(url, folder / "var", "t1")
    pages = {lang: client.get(f"/alerts?lang={lang}").text for lang in ("zh", "en")}
    client.close()
    return {lang: re.sub(r'(data-label="(?:已过天数|Days open)">)[0-9]+<', r"\1N<",
                         re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value="-"', html))
            for lang, html in pages.items()}


def digest_texts(url: str) -> dict[str, str]:
    """Every supervisor's digest, everyone in each language in turn."""
    texts = {}
    for lang in ("zh", "en"):
        with gateway.transaction(url) as conn:
            for user_id in conn.execute(select(supervisor.c.user_id)).scalars():
                accounts.set_language(conn, user_id, lang)
            texts[lang] = "".join(f"== {d.user.user_id}\n{d.subject}\n{d.body}" for d in digests.build(conn, BASE_URL))
    return texts


def test_the_queue_and_the_digests_read_exactly_as_before_in_both_languages(tmp_path):
    url = small_city(tmp_path)
    for lang, html in queue_pages(url, tmp_path).items():
        assert html == (EXPECTED / f"queue.{lang}.html").read_text(encoding="utf-8"), lang
    for lang, text in digest_texts(url).items():
        assert text == (EXPECTED / f"digests.{lang}.txt").read_text(encoding="utf-8"), lang
