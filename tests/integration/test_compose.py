"""The production shape as files, checked without Docker: docker-compose.yaml, the Dockerfile, .env.example and
deploy/postgres/.

- docker-compose.yaml, its variables interpolated from .env.example as compose would, is valid against the
  Compose Specification's JSON schema (vendored in tests/data/, see its README);
- every command, entrypoint and healthcheck of a service that runs our image names an executable that is
  installed here (.venv/bin or PATH), and `<exe> <sub-commands…> --help` shows each sub-command exists
  (`airflow celery worker --help`, `risk serve --help`, …; Airflow in an AIRFLOW_HOME of its own);
- every variable the compose file uses is explained in .env.example and every one there is used, secrets are
  empty there and required (no default) in the compose file; every volume is declared, `service_healthy`
  dependencies have healthchecks, every long-running service has one, the web app's and the api-server's
  ports are published, the Airflow services share one configuration, and URLs name services that exist;
- every setting of risk.settings (RISK_*) is set by the compose file (or the image) and explained in
  .env.example with its default, and no other RISK_* variable is there but the compose file's own;
- the Dockerfile installs with constraints.txt, copies dags/, sql/ and checks/, runs as a user that is not
  root, and copies only paths that exist and are not in .dockerignore;
- deploy/postgres/init-databases.sh creates the two databases on a throwaway PostgreSQL cluster.

Running the same processes natively is test_scheduler.py's business; nothing here starts a service.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from risk.orchestration.local import child_env

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
INIT_DATABASES = ROOT / "deploy" / "postgres" / "init-databases.sh"
SCHEMA = Path(__file__).resolve().parents[1] / "data" / "compose-spec.json"
VENV_BIN = Path(sys.executable).parent
SEARCH_PATH = os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")])
# programs whose sub-commands we can ask for --help; the rest only have to exist
WITH_SUBCOMMANDS = ("airflow", "risk", "celery")
SECRET = re.compile(r"(PASSWORD|SECRET|_KEY)$")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0"}


# -- compose's variable interpolation --------------------------------------------------------------------


class Unset(Exception):
    """A required variable (`${NAME:?message}`) is empty or unset."""


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def interpolate(text: str, env: Mapping[str, str], used: set[str], required: str = "strict") -> str:
    """`text` as compose interpolates it: `$$`, `$NAME`, `${NAME}`, `${NAME:-default}` (nested allowed),
    `${NAME-default}`, `${NAME:?error}`, `${NAME?error}`, `${NAME:+alt}`, `${NAME+alt}`.

    Every variable met is added to `used`. A required variable that is missing raises Unset, or, with
    `required="placeholder"`, stands as `required-<name>`.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
        elif text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 0, i + 1
            while j < len(text):
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                if depth == 0:
                    break
                j += 1
            else:
                raise ValueError(f"unclosed ${{ in {text!r}")
            out.append(_expand(text[i + 2 : j], env, used, required))
            i = j + 1
        elif m := _NAME.match(text, i + 1):
            used.add(m.group())
            out.append(env.get(m.group(), ""))
            i = m.end()
        else:
            raise ValueError(f"a lone $ in {text!r} (write $$ for a literal one)")
    return "".join(out)


def _expand(body: str, env: Mapping[str, str], used: set[str], required: str) -> str:
    m = _NAME.match(body)
    if not m:
        raise ValueError(f"invalid variable ${{{body}}}")
    name, rest = m.group(), body[m.end() :]
    used.add(name)
    value = env.get(name)
    colon = rest.startswith(":")
    op, arg = (rest[1:2], rest[2:]) if colon else (rest[:1], rest[1:])
    missing = value is None or (colon and value == "")
    if op == "":
        if rest:
            raise ValueError(f"invalid variable ${{{body}}}")
        return value or ""
    if op == "-":
        return interpolate(arg, env, used, required) if missing else str(value)
    if op == "+":
        return "" if missing else interpolate(arg, env, used, required)
    if op == "?":
        if not missing:
            return str(value)
        if required == "placeholder":
            return f"required-{name.lower()}"
        raise Unset(f"{name}: {arg}")
    raise ValueError(f"invalid variable ${{{body}}}")


def interpolate_all(node: Any, env: Mapping[str, str], used: set[str], required: str = "strict") -> Any:
    """Every string value in a loaded compose document interpolated (keys are left as they are)."""
    if isinstance(node, str):
        return interpolate(node, env, used, required)
    if isinstance(node, list):
        return [interpolate_all(v, env, used, required) for v in node]
    if isinstance(node, dict):
        return {k: interpolate_all(v, env, used, required) for k, v in node.items()}
    return node


def read_env_example() -> dict[str, str]:
    """NAME=value lines of .env.example (comments and blank lines skipped; no quotes are used there)."""
    env: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and _NAME.fullmatch(name), f".env.example: not NAME=value: {line!r}"
            env[name] = value
    return env


def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # merges the x-… anchors (<<: *name)


def compose(required: str = "placeholder") -> dict[str, Any]:
    """The compose document as `docker compose config` would see it with .env copied from .env.example
    (secrets, empty there, as placeholders)."""
    return interpolate_all(raw_compose(), read_env_example(), set(), required)


def variables_used() -> set[str]:
    used: set[str] = set()
    interpolate_all(raw_compose(), {}, used, "placeholder")
    return used


# -- the services ----------------------------------------------------------------------------------------


def as_argv(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else list(value)


def ours(service: dict[str, Any]) -> bool:
    """A service that runs the image built from our Dockerfile."""
    build = service.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    return context in (".", "./")


def our_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in doc["services"].items() if ours(s)}


def service_running(doc: dict[str, Any], *argv: str) -> str:
    """The one service whose command starts with `argv`."""
    found = [name for name, s in doc["services"].items() if as_argv(s.get("command"))[: len(argv)] == list(argv)]
    assert len(found) == 1, f"expected one service running {' '.join(argv)}, found {found}"
    return found[0]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def command_lines(doc: dict[str, Any]) -> Iterator[tuple[str, str, list[str]]]:
    """(service, where, argv) for every program our services start: the entrypoint + command, each line of
    a `bash -c` script, and the healthcheck (each command of a CMD-SHELL line)."""
    for name, service in our_services(doc).items():
        argv = as_argv(service.get("entrypoint")) + as_argv(service.get("command"))
        yield name, "command", argv
        if Path(argv[0]).name in ("bash", "sh") and "-c" in argv:
            script = argv[argv.index("-c") + 1]
            for line in script.splitlines():
                words = shlex.split(line, comments=True)
                if words and (words[0] in WITH_SUBCOMMANDS or words[0].startswith("python")):
                    yield name, "script", words
        test = (service.get("healthcheck") or {}).get("test") or []
        if test and test[0] == "CMD":
            yield name, "healthcheck", list(test[1:])
        elif test and test[0] == "CMD-SHELL":
            for part in re.split(r"\|\||&&|\||;", test[1]):
                yield name, "healthcheck", shlex.split(part)


def help_argv(argv: list[str]) -> list[str]:
    """`exe sub-commands… --help`: argv up to its first option (celery's `--app X` before them is kept)."""
    out = [argv[0]]
    rest = argv[1:]
    if Path(argv[0]).name == "celery" and rest[:1] in (["--app"], ["-A"]):
        out += rest[:2]
        rest = rest[2:]
    for word in rest:
        if word.startswith("-"):
            break
        out.append(word)
    return [*out, "--help"]


def resolve(exe: str) -> str | None:
    if os.path.isabs(exe):
        return exe if os.access(exe, os.X_OK) else None
    return shutil.which(exe, path=SEARCH_PATH)


def run_help(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[list[str], int, str]:
    exe = resolve(argv[0])
    assert exe, argv
    proc = subprocess.run([exe, *argv[1:]], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    return argv, proc.returncode, (proc.stdout + proc.stderr)[-1500:]


# -- the compose file ------------------------------------------------------------------------------------


def test_interpolation_follows_compose() -> None:
    env = {"A": "a", "E": ""}
    used: set[str] = set()
    assert interpolate("$$x ${A} $A ${E:-d} ${E-d} ${U:-${A}b} ${A:+y} ${U+y}", env, used) == "$x a a d  ab y "
    assert used == {"A", "E", "U"}
    assert interpolate("${E?no}", env, set()) == ""
    with pytest.raises(Unset):
        interpolate("${E:?no}", env, set())
    assert interpolate("${E:?no}", env, set(), "placeholder") == "required-e"


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    for doc in (raw_compose(), compose()):  # as written, and as compose sees it with .env.example's values
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_every_variable_is_explained_in_env_example_and_secrets_have_no_default() -> None:
    documented = read_env_example()
    used = variables_used()
    assert sorted(used - documented.keys()) == [], "used in docker-compose.yaml, missing in .env.example"
    assert sorted(documented.keys() - used) == [], "in .env.example, but docker-compose.yaml never uses them"
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert i and lines[i - 1].startswith("#"), f".env.example: {line!r} has no explanation above it"
    secrets = sorted(name for name in documented if SECRET.search(name))
    assert {"POSTGRES_PASSWORD", "RISK_SECRET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_FERNET_KEY"} <= set(secrets)
    assert {name: documented[name] for name in secrets if documented[name]} == {}, "real-looking secrets"
    text = COMPOSE.read_text(encoding="utf-8")
    for name in secrets:  # compose refuses to start without them instead of running on a guessable default
        uses = re.findall(r"\$\{" + name + r"([^A-Za-z0-9_][^}]*)?\}", text)
        assert uses and all(u.startswith(":?") for u in uses), f"{name} must be ${{{name}:?…}} everywhere"
    with pytest.raises(Unset):  # .env copied unfilled: refused
        compose(required="strict")
    filled = {**documented, **{name: "s3cret" for name in secrets}}
    interpolate_all(raw_compose(), filled, set(), "strict")


def test_volumes_networks_and_dependencies_are_declared() -> None:
    doc = compose()
    services = doc["services"]
    volumes, networks = doc.get("volumes") or {}, doc.get("networks") or {}
    for name, service in services.items():
        for mount in service.get("volumes") or []:
            source = str(mount.get("source", "") if isinstance(mount, dict) else mount.split(":")[0])
            if source.startswith((".", "/", "~")):  # a file of the repo
                assert (ROOT / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in volumes, f"{name}: volume {source} is not declared"
        for network in service.get("networks") or []:
            assert network in networks, f"{name}: network {network} is not declared"
        depends = service.get("depends_on") or {}
        for other, how in (depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends)):
            assert other in services, f"{name} depends on {other}, which is not a service"
            if how.get("condition") == "service_healthy":
                assert services[other].get("healthcheck"), f"{name} waits for {other} to be healthy: no healthcheck"
            if how.get("condition") == "service_completed_successfully":
                assert services[other].get("restart", "no") == "no", f"{other} is one-shot, must not restart"


def test_every_long_running_service_has_a_healthcheck() -> None:
    doc = compose()
    one_shot = {other for s in doc["services"].values() for other, how in (s.get("depends_on") or {}).items()
                if how.get("condition") == "service_completed_successfully"}
    assert one_shot == {"airflow-init"}
    for name, service in doc["services"].items():
        if name not in one_shot:
            test = (service.get("healthcheck") or {}).get("test")
            assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name}: no healthcheck"
            assert not service["healthcheck"].get("disable"), name


def published(service: dict[str, Any]) -> set[int]:
    """Container ports published on the host."""
    ports = set()
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            ports.add(int(port["target"]))
        else:
            parts = str(port).split(":")
            assert len(parts) >= 2, f"{port} is not published on the host"
            ports.add(int(parts[-1].split("/")[0]))
    return ports


def test_web_app_and_api_server_are_published_on_the_ports_they_listen_on() -> None:
    doc = compose()
    for argv, default in ((("risk", "serve"), 8000), (("airflow", "api-server"), 8080)):
        name = service_running(doc, *argv)
        command = as_argv(doc["services"][name]["command"])
        port = int(command[command.index("--port") + 1]) if "--port" in command else default
        assert port in published(doc["services"][name]), f"{name} listens on {port}, which is not published"
        if argv[0] == "risk":
            assert command[command.index("--host") + 1] == "0.0.0.0", "the web app must listen beyond localhost"
    api = service_running(doc, "airflow", "api-server")
    for name in our_services(doc):  # the tasks reach the execution API at the api-server service
        env = environment(doc["services"][name])
        if "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" in env:
            url = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
            assert (url.hostname, url.port, url.path) == (api, 8080, "/execution/"), name


def test_airflow_services_share_one_configuration_and_one_image() -> None:
    doc = compose()
    airflow = {name: s for name, s in our_services(doc).items() if name.startswith("airflow-")}
    assert {as_argv(s["command"])[1] if as_argv(s["command"])[0] == "airflow" else "init"
            for s in airflow.values()} >= {"api-server", "scheduler", "dag-processor", "triggerer", "celery"}
    shared = ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__FERNET_KEY",
              "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND",
              "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "RISK_DATABASE_URL", "RISK_LANDING", "RISK_VAR_DIR")
    configs = {name: tuple(environment(s).get(k) for k in shared) for name, s in airflow.items()}
    assert len(set(configs.values())) == 1, configs
    assert environment(airflow["airflow-worker"])["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    images = {(s["image"], json.dumps(s.get("build"), sort_keys=True)) for s in our_services(doc).values()}
    assert len(images) == 1, images
    assert "web" in our_services(doc)
    for name, service in our_services(doc).items():
        assert str(service.get("user", "")).split(":")[0] not in ("root", "0"), f"{name} runs as root"
    # the worker scales: nothing in it may be unique to one container
    worker = airflow["airflow-worker"]
    assert "container_name" not in worker and not worker.get("ports")


# RISK_* variables that are docker-compose.yaml's own (interpolated into it, read by no module)
COMPOSE_ONLY = {"RISK_IMAGE", "RISK_WEB_PORT", "RISK_DB_PASSWORD"}
# settings (risk.settings) docker-compose.yaml does not set, and why
NOT_IN_COMPOSE = {
    "RISK_HOME": "the image sets it (Dockerfile ENV)",
    "RISK_CELERY_WORKER": "names one of several workers started natively on one machine; a container is a machine",
}


def test_env_example_and_compose_have_every_setting_and_its_default() -> None:
    from risk.settings import Settings, variables

    settings = {name for name, _, _ in variables()}
    assert NOT_IN_COMPOSE.keys() <= settings
    set_in_compose = {key for service in compose()["services"].values() for key in environment(service)
                      if key.startswith("RISK_")}
    assert sorted(settings - set_in_compose - NOT_IN_COMPOSE.keys()) == [], "settings docker-compose.yaml never sets"
    assert sorted(set_in_compose - settings - COMPOSE_ONLY) == [], "set in docker-compose.yaml, read by no setting"
    documented = read_env_example()
    fixed = set(re.findall(r"^# (RISK_[A-Z_]+)=", ENV_EXAMPLE.read_text(encoding="utf-8"), re.MULTILINE))
    mentioned = set(re.findall(r"RISK_[A-Z_]+", ENV_EXAMPLE.read_text(encoding="utf-8")))
    assert sorted(settings - documented.keys() - fixed) == ["RISK_CELERY_WORKER"] and "RISK_CELERY_WORKER" in mentioned
    assert sorted({name for name in documented if name.startswith("RISK_")} - settings - COMPOSE_ONLY) == []
    assert "RISK_HOME" in dict(re.findall(r"(\w+)=(\S+)", " ".join(a for k, a in instructions() if k == "ENV")))
    for variable, value in documented.items():  # what .env.example shows is the default
        field = variable.removeprefix("RISK_").lower()
        if variable in settings and value:
            assert Settings.check(field, value) == Settings.model_fields[field].get_default(call_default_factory=True), \
                variable


def test_urls_name_services_that_exist() -> None:
    doc = compose()
    for name, service in doc["services"].items():
        for key, value in environment(service).items():
            if "://" in value:
                host = urlsplit(value).hostname
                assert host in doc["services"] or host in LOCAL_HOSTS, f"{name} {key}: no service {host}"


def test_landing_is_read_only_and_volume_targets_exist_in_the_image() -> None:
    doc = compose()
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    mounts = 0
    for name, service in our_services(doc).items():
        env = environment(service)
        for mount in service.get("volumes") or []:
            source, target, *mode = mount.split(":")
            if source == "landing":
                mounts += 1
                assert mode == ["ro"], f"{name} mounts the landing folder writable"
                assert env.get("RISK_LANDING") in (None, target), name
            if source == "risk-var":
                assert env.get("RISK_VAR_DIR") == target, name
            # a new named volume takes the owner of the folder it is mounted on: the image makes them
            assert target in dockerfile, f"{name}: {target} is not made in the Dockerfile (owner: risk)"
    assert mounts, "no service reads the landing volume"


# -- the commands our services run -------------------------------------------------------------------------


COMMANDS = list(command_lines(compose()))


def test_our_services_run_programs_that_are_installed() -> None:
    assert {where for _, where, _ in COMMANDS} == {"command", "script", "healthcheck"}
    for name, where, argv in COMMANDS:
        assert resolve(argv[0]), f"{name} {where}: {argv[0]} is not installed (.venv/bin or PATH)"
        if Path(argv[0]).name.startswith("python") and "-c" in argv:
            ast.parse(argv[argv.index("-c") + 1])  # the healthcheck's code at least compiles
    for name, service in our_services(compose()).items():
        argv = as_argv(service.get("entrypoint")) + as_argv(service.get("command"))
        if Path(argv[0]).name == "bash":
            script = argv[argv.index("-c") + 1]
            check = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
            assert check.returncode == 0, f"{name}: {check.stderr}"
            assert "set -e" in script, f"{name}: a failing step must fail the service"


def help_commands(*programs: str) -> list[list[str]]:
    wanted = {tuple(help_argv(argv)) for _, _, argv in COMMANDS if argv[0] in programs}
    return [list(argv) for argv in sorted(wanted)]


# Runs argv after argv through the program's console-script entry point, which is what .venv/bin/<program>
# runs, all in one process: each `airflow …` process spends seconds importing Airflow, and eight of them on a
# busy two-core machine would take a minute.
HELP_DRIVER = r"""
import contextlib, io, json, sys
from importlib.metadata import entry_points

results = []
for argv in json.loads(sys.argv[1]):
    (script,) = entry_points(group="console_scripts", name=argv[0])
    main = script.load()
    sys.argv = list(argv)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            main()
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
    results.append([argv, code, out.getvalue()[-1500:]])
print("HELP-RESULTS " + json.dumps(results))
"""


def run_help_in_one_process(commands: list[list[str]], env: dict[str, str], cwd: Path) -> list[tuple[list[str], int, str]]:
    for argv in commands:  # the entry point we load is the one of the executable the container runs
        assert Path(resolve(argv[0]) or "").parent == VENV_BIN, f"{argv[0]} is not this venv's"
    proc = subprocess.run([sys.executable, "-c", HELP_DRIVER, json.dumps(commands)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("HELP-RESULTS ")]
    assert lines, f"exit {proc.returncode}:\n{(proc.stdout + proc.stderr)[-3000:]}"
    return [(argv, code, out) for argv, code, out in json.loads(lines[-1].removeprefix("HELP-RESULTS "))]


def check_help(commands: list[list[str]], env: dict[str, str], cwd: Path, one_process: bool = False) -> None:
    """`<exe> <sub-commands…> --help` exits 0 for every command: each its own process, or, with `one_process`,
    one process per program."""
    if one_process:
        programs = sorted({argv[0] for argv in commands})
        with ThreadPoolExecutor(max_workers=len(programs)) as pool:
            batches = pool.map(lambda p: run_help_in_one_process([c for c in commands if c[0] == p], env, cwd),
                               programs)
            results = [result for batch in batches for result in batch]
    else:
        results = [run_help(argv, env, cwd) for argv in commands]
    assert len(results) == len(commands)
    failed = [f"$ {' '.join(argv)} → exit {code}\n{out}" for argv, code, out in results if code != 0]
    assert not failed, "\n\n".join(failed)


def test_risk_subcommands_exist(tmp_path: Path) -> None:
    commands = help_commands("risk")
    assert ["risk", "serve", "--help"] in commands and ["risk", "db", "migrate", "--help"] in commands
    check_help(commands, {**os.environ, "RISK_VAR_DIR": str(tmp_path)}, tmp_path)


@pytest.mark.airflow
def test_airflow_and_celery_subcommands_exist(tmp_path: Path) -> None:
    commands = help_commands("airflow", "celery")
    for expected in (["airflow", "celery", "worker", "--help"], ["airflow", "db", "migrate", "--help"],
                     ["airflow", "api-server", "--help"], ["airflow", "scheduler", "--help"],
                     ["airflow", "dag-processor", "--help"], ["airflow", "triggerer", "--help"],
                     ["airflow", "jobs", "check", "--help"]):
        assert expected in commands, expected
    assert any(c[0] == "celery" and "--app" in c for c in commands)
    executor = environment(compose()["services"]["airflow-worker"])["AIRFLOW__CORE__EXECUTOR"]
    env = child_env(tmp_path / "airflow-home", {"AIRFLOW__CORE__EXECUTOR": executor})
    check_help(commands, env, tmp_path, one_process=True)


# -- the Dockerfile --------------------------------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        out.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation line"
    return out


def copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY/ADD from the build context."""
    out = []
    for keyword, args in instructions():
        if keyword in ("COPY", "ADD"):
            words = json.loads(args) if args.startswith("[") else shlex.split(args)
            if any(w.startswith("--from") for w in words):
                continue
            words = [w for w in words if not w.startswith("--")]
            out.append((words[:-1], words[-1]))
    return out


def dockerignored(path: str) -> bool:
    patterns = [p.strip().rstrip("/") for p in DOCKERIGNORE.read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    path = path.rstrip("/")
    return any(fnmatch.fnmatch(path, p) or path.startswith(p + "/") for p in patterns if not p.startswith("!"))


def test_dockerfile_installs_the_project_with_constraints_as_a_user_that_is_not_root() -> None:
    steps = instructions()
    keywords = [k for k, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim-bookworm")
    assert "HEALTHCHECK" not in keywords, "healthchecks belong to docker-compose.yaml"
    installs = [i for i, (k, a) in enumerate(steps) if k == "RUN" and re.search(r"pip install\b[^&]*-c constraints\.txt", a)]
    assert installs, "no `pip install -c constraints.txt`"
    install = steps[installs[0]][1]
    assert re.search(r"pip install -c constraints\.txt \.(\s|$)", install) and " -e " not in install
    copied = {src.rstrip("/") for sources, _ in copies() for src in sources}
    assert {"constraints.txt", "pyproject.toml", "risk", "dags", "sql", "checks"} <= copied
    first_copy_of = {src.rstrip("/"): i for i, (k, a) in reversed(list(enumerate(steps))) if k == "COPY"
                     for src in shlex.split(a)[:-1]}
    assert first_copy_of["constraints.txt"] < installs[0] and first_copy_of["risk"] < installs[0]
    users = [a for k, a in steps if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must not run as root"


def test_dockerfile_copies_only_what_exists_and_is_not_ignored() -> None:
    for sources, _ in copies():
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert not dockerignored(source), f"COPY {source}: excluded by .dockerignore"
    for excluded in (".venv", "var", ".git", ".env", "tests/__pycache__"):
        assert dockerignored(excluded), f".dockerignore must exclude {excluded}"


def test_dockerfile_points_airflow_at_the_copied_dags() -> None:
    workdir, dags = PurePosixPath("/"), None
    env: dict[str, str] = {}
    for keyword, args in instructions():
        if keyword == "WORKDIR":
            workdir = workdir / args
        elif keyword == "COPY" and [s.rstrip("/") for s in shlex.split(args)[:-1]] == ["dags"]:
            dags = workdir / shlex.split(args)[-1]
        elif keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
    assert dags and env["AIRFLOW__CORE__DAGS_FOLDER"].rstrip("/") == str(dags).rstrip("/")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    doc = compose()
    for name, service in our_services(doc).items():
        for key in ("RISK_LANDING", "RISK_VAR_DIR"):
            if key in environment(service):
                assert environment(service)[key] == env[key], f"{name}: {key} differs from the image's"


def test_the_image_has_the_celery_provider() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("apache-airflow-providers-celery") for d in deps)
    pins = (ROOT / "constraints.txt").read_text().splitlines()
    for package in ("apache-airflow-providers-celery", "celery", "redis", "kombu"):
        assert any(p.startswith(f"{package}==") for p in pins), f"constraints.txt does not pin {package}"


# -- PostgreSQL's first start ---------------------------------------------------------------------------


def test_init_script_gets_what_it_needs_from_compose() -> None:
    doc = compose()
    postgres = doc["services"]["postgres"]
    mounts = [m for m in postgres["volumes"] if m.startswith("./deploy/postgres/")]
    assert [m.split(":")[1].startswith("/docker-entrypoint-initdb.d/") for m in mounts] == [True]
    script = INIT_DATABASES.read_text(encoding="utf-8")
    assert subprocess.run(["bash", "-n", str(INIT_DATABASES)]).returncode == 0
    needed = set(re.findall(r"\$\{?([A-Z_]+)", script))
    assert needed <= environment(postgres).keys(), needed - environment(postgres).keys()
    # the databases the URLs name are the ones the script creates
    airflow_env = environment(doc["services"]["airflow-scheduler"])
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "RISK_DATABASE_URL"):
        url = urlsplit(airflow_env[key])
        database, user = url.path.lstrip("/"), url.username
        assert f"CREATE DATABASE {database} OWNER {user}" in script, key


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@pytest.mark.slow
@pytest.mark.skipif(_postgres_bin() is None, reason="PostgreSQL's initdb is not installed")
def test_init_script_creates_the_two_databases_on_a_fresh_cluster() -> None:
    bin_dir = _postgres_bin()
    assert bin_dir is not None
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="risk-pginit-"))
    if os.geteuid() == 0:  # initdb refuses root, as the postgres image does not run it as root either
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    env = {**os.environ, "PGHOST": str(folder), "PGPORT": "54329", "POSTGRES_USER": "postgres",
           "POSTGRES_DB": "postgres", "AIRFLOW_DB_PASSWORD": "it's \"quoted\"", "RISK_DB_PASSWORD": "r1sk"}

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*as_user, *cmd], env=env, capture_output=True, text=True, timeout=60)

    try:
        assert run(str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", "postgres", "-A", "trust").returncode == 0
        started = run(str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-w", "-l", str(folder / "log"),
                      "-o", f"-k {folder} -p 54329 -c listen_addresses=''", "start")
        assert started.returncode == 0, started.stdout + started.stderr
        created = run("bash", str(INIT_DATABASES))
        assert created.returncode == 0, created.stderr
        rows = run("psql", "-Atc", "SELECT datname, pg_get_userbyid(datdba) FROM pg_database "
                   "WHERE datname IN ('airflow', 'risk') ORDER BY 1").stdout.split()
        assert rows == ["airflow|airflow", "risk|risk"]
        other = run("psql", "-U", "risk", "-d", "airflow", "-Atc", "SELECT 1")
        assert other.returncode != 0 and "permission denied" in other.stderr, "risk may connect to airflow"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)
