"""The system's words in Chinese and English: one translation catalogue, as gettext files a translator can
work on (Poedit or any gettext tool):

    risk/locale/risk.pot                      the template: every message id, no translation
    risk/locale/zh_CN/LC_MESSAGES/risk.po     Chinese (the system's first language)
    risk/locale/en/LC_MESSAGES/risk.po        English

Each is read with Babel once per process, on first use; nothing is compiled. A message id is a stable key
named after what it says (`status.new`, `action.acknowledge`, `level.village`, `severity.high`,
`method.bank_return`, `fact.payment`, `dismiss_reason.lawful`, `next_step.confirmed`, `web.queue`,
`digest.subject`, …): the vocabulary's values (the strings the warehouse holds, risk.domain's enums once
they exist) after the kind's name. Placeholders are Python format fields (`{page}`), the same in every
language (tests/unit/test_words.py checks it).

- `t(key, lang, **values)`: the words in `lang` (Chinese for anything but "en"). A key or a language the
  catalogue lacks falls back to Chinese, then to the key itself; it is logged once.
- `both(key, **values)`: "中文 / English", the bilingual form of messages and logs (a value may be a
  function of the language, for words inside words); `side(message, lang)` takes one side of it again.
- `word(kind, value, lang)`: a vocabulary value in words (`word("status", "new", "en")`), the value
  itself where the catalogue has none (`has(key)`: whether it has words for a key; `codes(kind)`: the
  values of a kind it has words for).
- `LANGUAGES`, `DEFAULT_LANGUAGE`.

In the catalogue: every word of the web app's pages and its own messages (risk.web), the vocabulary's
words (statuses, audit-log actions, levels, severities, recovery methods, evidence facts, dismiss reasons,
next steps), the digests' e-mails (risk.alerts.digests), the dashboard's chart units, the title of an
anomaly alert, and the lifecycle's refusal of a move from the wrong status with its words
(risk.alerts.lifecycle).

Not yet in the catalogue (each still says both languages where it is written): the rules' titles and
explanations (risk.detection.registry), the behaviour features' sentences (risk.scoring.catalogue), the
data contract's names of sources and columns (risk.contract), the command line's messages (risk.cli), the
messages of the errors the modules raise ('中文 / English' literals, e.g. risk.alerts.lifecycle's other
refusals and `Balance.words`, risk.web.queries' refused ID numbers), the charts' bilingual labels drawn in
the picture (risk.web.charts) and the logs.
"""
from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "risk"
LOCALES = {"zh": "zh_CN", "en": "en"}  # language → the folder of its catalogue
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"

_told: set[tuple[str, str]] = set()  # what was logged missing once: (key, language)


def po_file(lang: str) -> Path:
    return LOCALE_DIR / LOCALES[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def catalogue(lang: str) -> dict[str, str]:
    """message id → its words in `lang`, read once: translated messages only (an empty or fuzzy msgstr,
    which gettext does not use either, is missing). A missing or unreadable file is an empty catalogue,
    logged."""
    from babel.messages.pofile import read_po

    try:
        with po_file(lang).open("rb") as f:
            read = read_po(f, locale=LOCALES[lang], domain=DOMAIN)
    except (OSError, ValueError) as e:
        log.error("没有%s的译文 / no catalogue for %s: %s", lang, lang, e)
        return {}
    return {m.id: m.string for m in read if m.id and isinstance(m.id, str) and isinstance(m.string, str)
            and m.string and not m.fuzzy}


def _missing(key: str, lang: str) -> None:
    if (key, lang) not in _told:
        _told.add((key, lang))
        log.warning("译文缺失 / no words for %s in %r", key, lang)


def _lookup(key: str, lang: str) -> str | None:
    """The words for `key` in `lang` (Chinese for anything but "en"), else in Chinese, else None; a gap is
    logged once."""
    if lang not in LANGUAGES:
        _missing("any message", lang)
    if lang == "en" and (text := catalogue(lang).get(key)) is not None:
        return text
    text = catalogue(DEFAULT_LANGUAGE).get(key)
    if text is None or lang == "en":
        _missing(key, "any language" if text is None else lang)
    return text


def t(key: str, lang: str, **values: object) -> str:
    """The message `key` in `lang` (Chinese for anything but "en"), its `{placeholders}` filled from
    `values` (a callable value is called with the language); the key itself when no language has it."""
    text = _lookup(key, lang)
    if text is None or not values:
        return text or key
    filled = {k: v(lang) if callable(v) else v for k, v in values.items()}
    try:
        return text.format(**filled)
    except (KeyError, IndexError, ValueError):  # a translation's placeholder broken: say it in Chinese
        _missing(f"{key} (its placeholders)", lang)
        return catalogue(DEFAULT_LANGUAGE).get(key, key).format(**filled)


def both(key: str, **values: object) -> str:
    """'中文 / English': the message in both languages, as messages and logs say it."""
    return " / ".join(t(key, lang, **values) for lang in LANGUAGES)


def side(message: str, lang: str) -> str:
    """One side of a bilingual message ('中文 / English'): English for "en", else Chinese; a message that is
    not bilingual as it is."""
    zh, sep, en = message.partition(" / ")
    return en if sep and lang == "en" else (zh if sep else message)


def word(kind: str, value: str | None, lang: str) -> str:
    """A vocabulary value in words (`word("status", "new", "zh")` → 新预警): the value itself when the
    catalogue has no words for it (not logged: a timeline's `reason` is a dismiss reason's code or, for a
    recovery, the user's own words), nothing for no value."""
    if not value:
        return ""
    key = f"{kind}.{value}"
    return t(key, lang) if has(key) else value


def has(key: str) -> bool:
    """Whether the catalogue has words for `key` (in Chinese, which every message has)."""
    return key in catalogue(DEFAULT_LANGUAGE)


def codes(kind: str) -> tuple[str, ...]:
    """The values of a kind the catalogue has words for, in the catalogue's order (`codes("action")`)."""
    prefix = f"{kind}."
    return tuple(k[len(prefix):] for k in catalogue(DEFAULT_LANGUAGE)
                 if k.startswith(prefix) and "." not in k[len(prefix):])
