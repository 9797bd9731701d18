"""docs/data-contract.md, the contract in the project's words, kept true to the code that cites it.

Every "contract §N" in the code and the docs names a section the file has, and every link into it lands
on a heading; every source, column and allowed value of risk/contract.py, every rule of risk/detection/registry.py,
the columns of each export and every `risk` command are in it. A point the code does not do yet must say
so ("not yet implemented")."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from risk import cli
from risk.alerts import export as alerts
from risk.contract import SOURCES, Kind, Source, Type
from risk.detection.registry import ENTRIES, RULES
from risk.ingest import quality
from risk.scoring.report import SCORE_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "data-contract.md"
CITING = [ROOT / "risk", ROOT / "dags", ROOT / "sql", ROOT / "docs", ROOT / "README.md"]
TEXT = {".py", ".sql", ".md", ".html", ".txt", ".yaml", ".toml", ".cfg"}
# the bureau's numbering, which "contract §N" everywhere relies on
SECTIONS = ["1", "2", "2a", "3", "4", "5", "6", "7"]
NOT_YET = "not yet implemented"
UPSTREAM = "../shared/spec/" + "data-contract.md"  # the bureau's contract, outside the repository

CITATION = re.compile(r"§\s*(\d+[a-z]?)(?:\s*[-–]\s*§?\s*(\d+[a-z]?))?")
LINK = re.compile(r"data-contract\.md#([^)\s]+)")
HEADING = re.compile(r"^(#{1,6}) +(.+?) *$")


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _headings(text: str) -> list[tuple[int, str, int]]:
    """(level, title, line index) of every Markdown heading outside code blocks."""
    out, fenced = [], False
    for i, line in enumerate(text.splitlines()):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := HEADING.match(line)):
            out.append((len(m.group(1)), m.group(2), i))
    return out


def _body(text: str, level: int, starts: str) -> str:
    """The text under the one heading of `level` whose title starts with `starts`, up to the next heading of
    that level or higher."""
    lines = text.splitlines()
    hs = _headings(text)
    found = [(k, i) for k, (lv, title, i) in enumerate(hs) if lv == level and title.startswith(starts)]
    assert len(found) == 1, f"docs/data-contract.md: {len(found)} headings '{'#' * level} {starts}…'"
    k, start = found[0]
    end = next((i for lv, _, i in hs[k + 1:] if lv <= level), len(lines))
    return "\n".join(lines[start:end])


def _section(number: str) -> str:
    return _body(_doc(), 2, f"{number}. ")


def _slug(title: str) -> str:
    """The anchor GitHub (and most Markdown viewers) give a heading."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def _anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, title, _ in _headings(text):
        s = _slug(title)
        out.add(s if s not in seen else f"{s}-{seen[s]}")
        seen[s] = seen.get(s, 0) + 1
    return out


def _table(body: str) -> dict[str, str]:
    """First cell (backticks and a trailing `?` kept) -> the whole row, for the rows of the tables in
    `body` (header and separator rows left out)."""
    rows = {}
    for line in body.splitlines():
        if not line.startswith("|"):
            continue
        first = line.split("|")[1].strip()
        if first in ("column", "code", "command") or not first.strip("-: "):
            continue
        rows[first] = line
    return rows


def _citing_files() -> list[Path]:
    files = []
    for place in CITING:
        files += [place] if place.is_file() else [p for p in sorted(place.rglob("*")) if p.suffix in TEXT]
    return files


def _numbers() -> list[str]:
    """The section numbers docs/data-contract.md has, in order ("2a" for "## 2a. …")."""
    numbered = (re.match(r"(\d+[a-z]?)\. ", title) for lv, title, _ in _headings(_doc()) if lv == 2)
    return [m.group(1) for m in numbered if m]


def test_the_sections_are_the_bureaus():
    """§1 … §7 with the bureau's numbers, in order, and §3's subsection on records that name nobody."""
    assert _numbers() == SECTIONS
    assert "### Records that name no recipient" in _section("3")


def test_the_doc_names_its_source():
    top = _doc().split("\n## ", 1)[0]
    assert UPSTREAM in top
    assert "authority" in top


def test_every_citation_names_a_section_that_exists():
    have = set(_numbers())
    wrong = []
    for path in _citing_files():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in CITATION.finditer(line):
                first, last = m.group(1), m.group(2)
                cited = {first, last} - {None}
                if last and first.isdigit() and last.isdigit():
                    cited |= {str(i) for i in range(int(first), int(last) + 1)}
                wrong += [f"{path.relative_to(ROOT)}:{n}: §{c}" for c in sorted(cited - have)]
    assert not wrong, "cited sections docs/data-contract.md does not have:\n" + "\n".join(wrong)


def test_every_link_into_the_doc_lands_on_a_heading():
    anchors = _anchors(_doc())
    wrong = [f"{p.relative_to(ROOT)}: #{a}" for p in _citing_files()
             for a in LINK.findall(p.read_text(encoding="utf-8")) if a not in anchors]
    inside = re.findall(r"\]\(#([^)\s]+)\)", _doc())  # links from the file to itself
    wrong += [f"docs/data-contract.md: #{a}" for a in inside if a not in anchors]
    assert not wrong, "links to headings docs/data-contract.md does not have:\n" + "\n".join(wrong)


def test_nothing_points_at_the_contract_outside_the_repository():
    places = _citing_files() + sorted((ROOT / "tests").rglob("*.py")) + [ROOT / "docker-compose.yaml"]
    wrong = [str(p.relative_to(ROOT)) for p in places
             if p != DOC and UPSTREAM.removeprefix("../") in p.read_text(encoding="utf-8")]
    assert not wrong, f"still cite {UPSTREAM} instead of docs/data-contract.md: {wrong}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
def test_every_source_has_its_subsection_with_every_column(source: Source):
    body = _body(_section("2"), 3, f"{source.name}.csv")
    heading = body.splitlines()[0]
    assert f"key `{source.key}`" in heading
    assert ("upsert" if source.kind is Kind.UPSERT else "append-only") in heading
    rows = _table(body)
    documented = {first.rstrip("?").strip().strip("`"): first.endswith("?") for first in rows}
    assert set(documented) == set(source.column_names), "the columns of §2 differ from risk/contract.py"
    for c in source.columns:
        assert not (documented[c.name] and c.required), f"{c.name} is marked optional, the code requires it"
        if c.type is Type.ENUM:
            missing = [v for v in c.values if f"`{v}`" not in body]
            assert not missing, f"{source.name}.{c.name}: values the code accepts are not in §2: {missing}"


def _rows_of_rules() -> dict[str, str]:
    """Rule code -> its row in the table of §4."""
    rows = {}
    for first, row in _table(_section("4")).items():
        if m := re.match(r"`([a-z_]+)`", first):
            rows[m.group(1)] = row
    return rows


def test_every_rule_is_in_section_4():
    rows = _rows_of_rules()
    built = {e.code for e in ENTRIES}  # the rules of law and anomaly
    assert built <= set(rows), f"rules the code registers but §4 lacks: {sorted(built - set(rows))}"
    unbuilt = [code for code, row in rows.items() if code not in built and NOT_YET not in row]
    assert not unbuilt, f"§4 rules the code does not have, not marked '{NOT_YET}': {unbuilt}"


def test_every_rule_says_its_amount_at_risk():
    section = _section("4")
    listed = section.split("Every alert carries `amount_at_risk`", 1)[1].split("\n\n", 2)[1]
    named = set(re.findall(r"`([a-z_]+)`", listed))
    missing = sorted({r.code for r in RULES} - named)
    assert not missing, f"rules whose amount_at_risk §4 does not define: {missing}"


def test_every_export_column_is_in_section_5():
    """The columns of `risk alerts export`, `risk scores export` and `risk quality export` (as code: in
    backticks)."""
    section = _section("5")
    named = {w for span in re.findall(r"`([^`]+)`", section) for w in re.split(r"[,\s|]+", span)}
    for columns in (alerts.EXPORT_COLUMNS, SCORE_COLUMNS, quality.EXPORT_COLUMNS):
        missing = [c for c in columns if c not in named]
        assert not missing, f"export columns not in §5: {missing}"


def _commands(command: Any = None, words: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every command the `risk` app runs ("alerts export", "run", …) and the command itself."""
    command = command or typer.main.get_command(cli.app)
    subs = getattr(command, "commands", None)
    if not subs:
        return {" ".join(words): command}
    out = {}
    for name, sub in subs.items():
        out |= _commands(sub, (*words, name))
    return out


def _options(command: Any) -> dict[str, Any]:
    """A command's options ("--format", …) and each one's parameter."""
    return {o: p for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")}


def _command_words(usage: str) -> str:
    """`risk alerts export --format csv` -> "alerts export": the words before the first option."""
    words = []
    for token in usage.split()[1:]:
        if not re.fullmatch(r"[a-z][a-z-]*", token):
            break
        words.append(token)
    return " ".join(words)


def test_every_command_is_in_section_6():
    section = _section("6")
    commands = _commands()
    missing = [c for c in commands if not re.search(rf"\brisk {re.escape(c)}(?![\w-])", section)]
    assert not missing, f"`risk` commands the app has but §6 lacks: {missing}"
    named = {_command_words(m) for m in re.findall(r"`(risk [^`]*)`", section)} - {""}
    groups = {" ".join(c.split()[:i]) for c in commands for i in range(1, len(c.split()) + 1)}
    assert named <= groups, f"§6 names commands the app does not have: {sorted(named - groups)}"


def test_the_contracts_commands_take_the_options_it_names():
    commands = _commands()
    block = _section("6").split("```")[1]
    usages = [line.split("  ")[0] for line in block.splitlines() if line.startswith("risk ")]  # then 2 spaces
    assert len(usages) == 4
    for usage in usages:
        name = _command_words(usage)
        assert name in commands, usage
        options = _options(commands[name])
        for option in re.findall(r"--[a-z][a-z-]*", usage):
            assert option in options, f"`risk {name}` has no {option}"
        if m := re.search(r"--format ([a-z|]+)", usage):
            assert set(m.group(1).split("|")) <= set(options["--format"].type_descriptor.choices), usage
