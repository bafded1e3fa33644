"""The Dockerfile, read rather than built (no Docker engine runs on this project's machines).

A small parser of the Dockerfile (line continuations, comments, JSON and shell forms) and of .dockerignore
(Docker's pattern rules: ``*``, ``?``, ``**``, ``!`` exceptions, the last matching line wins, a matched folder
excludes what is in it), then checks of what the image needs: what it copies exists and reaches the build
context, the base image, the user, the ports, the health check, the models volume, torch's pins, no downloads,
and the launcher module the CMD runs.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"

APP_PORT_DEFAULT = 8501  # the launcher's defaults: python -m app [--port 8501] [--api-port 8000]
API_PORT_DEFAULT = 8000
ROOT_USERS = {"root", "0"}


# ---------------------------------------------------------------------------------------------------------------
# Dockerfile parser


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY ...
    raw: str  # the arguments as written (continuations joined, flags included)
    line: int  # 1-based line of the keyword
    flags: dict[str, str] = field(default_factory=dict)  # --chown=..., --start-period=... (leading ones)
    rest: str = ""  # raw without the leading flags
    exec_form: list[str] | None = None  # the JSON array, when rest is one

    @property
    def args(self) -> list[str]:
        """The arguments as a list: the JSON array, or the shell form split like a shell would."""
        if self.exec_form is not None:
            return self.exec_form
        return shlex.split(self.rest, comments=False)


def _escape_char(lines: list[str]) -> str:
    """The ``# escape=`` parser directive (only before the first instruction/comment); default backslash."""
    for line in lines:
        match = re.fullmatch(r"\s*#\s*escape\s*=\s*(\S)\s*", line, re.I)
        if match:
            return match.group(1)
        if not re.fullmatch(r"\s*#\s*\w+\s*=.*", line):
            break
    return "\\"


def _split_flags(text: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = text.strip()
    while True:
        match = re.match(r"--([A-Za-z][\w-]*)(?:=(\"[^\"]*\"|\S*))?\s*", rest)
        if not match:
            return flags, rest
        flags[match.group(1)] = (match.group(2) or "").strip('"')
        rest = rest[match.end() :]


def _json_array(text: str) -> list[str] | None:
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None  # Docker treats an invalid JSON array as shell form
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order. Comment lines (also inside a continued instruction) and blank lines are dropped;
    a line ending in the escape character continues on the next one."""
    lines = text.splitlines()
    escape = _escape_char(lines)
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not parts):
            continue  # a comment (in Docker also between continued lines), or a blank line
        if not stripped:
            continue  # an empty continuation line: Docker skips it
        if not parts:
            start = number
        body = line.rstrip()
        if body.endswith(escape) and not body.endswith(escape * 2):
            parts.append(body[:-1])
            continue
        parts.append(body)
        joined = " ".join(part.strip() for part in parts).strip()
        parts = []
        keyword, _, raw = joined.partition(" ")
        instructions.append(_instruction(keyword.upper(), raw.strip(), start))
    if parts:
        joined = " ".join(part.strip() for part in parts).strip()
        keyword, _, raw = joined.partition(" ")
        instructions.append(_instruction(keyword.upper(), raw.strip(), start))
    return instructions


def _instruction(keyword: str, raw: str, line: int) -> Instruction:
    flags, rest = _split_flags(raw) if keyword in {"FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"} else ({}, raw)
    return Instruction(keyword, raw, line, flags, rest, _json_array(rest))


def env_pairs(instruction: Instruction) -> dict[str, str]:
    """ENV key=value ... (quotes allowed), or the legacy ENV key value."""
    words = shlex.split(instruction.rest)
    if words and "=" not in words[0]:
        return {words[0]: instruction.rest.split(None, 1)[1].strip() if len(words) > 1 else ""}
    return dict(word.split("=", 1) for word in words)


def healthcheck_command(instruction: Instruction) -> list[str] | None:
    """The HEALTHCHECK's command as a list (JSON or shell form), None for HEALTHCHECK NONE."""
    rest = instruction.rest
    kind, _, command = rest.partition(" ")
    if kind.upper() == "NONE":
        return None
    assert kind.upper() == "CMD", f"HEALTHCHECK must be NONE or CMD ..., got {rest!r}"
    command = command.strip()
    array = _json_array(command)
    return array if array is not None else ["/bin/sh", "-c", command]


def test_parser_reads_continuations_comments_and_both_forms():
    text = "\n".join(
        [
            "# escape=\\",
            "FROM python:3.11-slim-bookworm AS base",
            "# a comment",
            "RUN apt-get update \\",
            "    # a comment inside a continued instruction",
            "    && apt-get install -y x \\",
            "",
            "    && rm -rf /var/lib/apt/lists/*",
            'ENV A=1 B="two words" \\',
            "    C=3",
            "ENV LEGACY some value",
            "COPY --chown=1000:1000 a/ b.txt ./",
            'HEALTHCHECK --interval=5s --start-period=60s CMD ["python", "-c", "print(1)"]',
            'CMD ["python", "-m", "app"]',
            "ENTRYPOINT python -m app --host 0.0.0.0",
        ]
    )
    got = parse_dockerfile(text)
    assert [i.keyword for i in got] == ["FROM", "RUN", "ENV", "ENV", "COPY", "HEALTHCHECK", "CMD", "ENTRYPOINT"]
    assert got[1].rest == "apt-get update && apt-get install -y x && rm -rf /var/lib/apt/lists/*"
    assert got[1].line == 4
    assert env_pairs(got[2]) == {"A": "1", "B": "two words", "C": "3"}
    assert env_pairs(got[3]) == {"LEGACY": "some value"}
    assert got[4].flags == {"chown": "1000:1000"} and got[4].args == ["a/", "b.txt", "./"]
    assert got[5].flags == {"interval": "5s", "start-period": "60s"}
    assert healthcheck_command(got[5]) == ["python", "-c", "print(1)"]
    assert got[6].exec_form == ["python", "-m", "app"]
    assert got[7].exec_form is None and got[7].args == ["python", "-m", "app", "--host", "0.0.0.0"]


# ---------------------------------------------------------------------------------------------------------------
# .dockerignore matcher (moby/patternmatcher's rules)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out += "(.*/)?"  # '**/' : zero or more folders
                i += 1
            else:
                out += ".*"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out += re.escape(char)
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
                i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(char)
        i += 1
    return re.compile(out + r"\Z")


def read_dockerignore(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) per pattern line, in order."""
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        if exception:
            line = line[1:].strip()
        cleaned = str(PurePosixPath("/" + line.lstrip("/"))).lstrip("/") or "."
        patterns.append((exception, _pattern_regex(cleaned)))
    return patterns


def is_ignored(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether ``path`` (relative to the context root, '/'-separated) is left out of the build context: the last
    pattern that matches it or one of its parent folders decides."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for exception, regex in patterns:
        if any(regex.match(candidate) for candidate in candidates):
            ignored = not exception
    return ignored


def test_dockerignore_matcher_follows_dockers_rules():
    patterns = read_dockerignore("# c\n.venv\n**/__pycache__\n*.log\n/runs\nmodels/*.pt\n!models/keep.pt\n")
    assert is_ignored(".venv/bin/python", patterns)
    assert is_ignored("lewel/__pycache__/x.pyc", patterns) and is_ignored("__pycache__", patterns)
    assert is_ignored("a.log", patterns) and not is_ignored("logs/a.log", patterns)  # '*' stays in one folder
    assert is_ignored("runs/demo/x", patterns)
    assert is_ignored("models/a.pt", patterns) and not is_ignored("models/keep.pt", patterns)
    assert not is_ignored("lewel/cli.py", patterns) and not is_ignored("models/a.safetensors", patterns)


# ---------------------------------------------------------------------------------------------------------------
# the project's Dockerfile


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    starts = [n for n, i in enumerate(instructions) if i.keyword == "FROM"]
    assert starts, "no FROM"
    return instructions[starts[-1] :]


def the(instructions: list[Instruction], keyword: str) -> Instruction:
    """The last instruction of that kind in the final stage (the one Docker uses)."""
    found = [i for i in final_stage(instructions) if i.keyword == keyword]
    assert found, f"no {keyword} in the final stage"
    return found[-1]


def env(instructions: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in final_stage(instructions):
        if instruction.keyword == "ENV":
            values.update(env_pairs(instruction))
    return values


def cmd_options(instructions: list[Instruction]) -> dict[str, str]:
    """The launcher's --options in the CMD (exec form), e.g. {'--host': '0.0.0.0', '--api-port': '8000'}."""
    args = the(instructions, "CMD").args
    options: dict[str, str] = {}
    for n, arg in enumerate(args):
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            options[name] = value if eq else (args[n + 1] if n + 1 < len(args) else "")
    return options


def api_port(instructions: list[Instruction]) -> int:
    return int(cmd_options(instructions).get("--api-port", API_PORT_DEFAULT))


def app_port(instructions: list[Instruction]) -> int:
    return int(cmd_options(instructions).get("--port", APP_PORT_DEFAULT))


def exposed(instructions: list[Instruction]) -> set[int]:
    ports = set()
    for instruction in final_stage(instructions):
        if instruction.keyword == "EXPOSE":
            ports |= {int(word.split("/")[0]) for word in instruction.args}
    return ports


def copies(instructions: list[Instruction]) -> list[tuple[Instruction, list[str], str]]:
    """(instruction, sources, destination) of every COPY/ADD from the build context (not --from a stage)."""
    found = []
    for instruction in instructions:
        if instruction.keyword in {"COPY", "ADD"} and "from" not in instruction.flags:
            args = instruction.args
            assert len(args) >= 2, f"line {instruction.line}: {instruction.keyword} needs a source and a destination"
            found.append((instruction, args[:-1], args[-1]))
    return found


def context_path(source: str) -> str:
    """A COPY source as a path relative to the context root: './lewel/' -> 'lewel', '/x' -> 'x', '.' -> '.'."""
    return str(PurePosixPath(source.lstrip("/") or "."))


def context_files() -> list[str] | None:
    """The project's files (tracked, and untracked ones git does not ignore), or None without git."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT, capture_output=True, check=True, timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [name for name in listed.decode().split("\0") if name and (ROOT / name).exists()]


def test_copy_sources_exist(instructions):
    missing = []
    for instruction, sources, _ in copies(instructions):
        for source in sources:
            assert not re.match(r"[a-z]+://|git@", source), f"line {instruction.line}: remote source {source}"
            if not list(ROOT.glob(source.rstrip("/") or ".")):
                missing.append(f"line {instruction.line}: {source}")
    assert not missing, f"COPY/ADD sources missing from the repository: {missing}"


def test_copy_sources_are_not_dockerignored(instructions):
    patterns = read_dockerignore(DOCKERIGNORE.read_text()) if DOCKERIGNORE.exists() else []
    files = context_files()
    excluded = []
    for instruction, sources, _ in copies(instructions):
        for source in sources:
            source = context_path(source)
            if source != "." and is_ignored(source, patterns):
                excluded.append(f"line {instruction.line}: {source}")
                continue
            # every project file the source brings in must reach the context too (not e.g. '*.safetensors')
            for name in files or []:
                if (source == "." or fnmatch.fnmatchcase(name, source) or name.startswith(source + "/")) and (
                    is_ignored(name, patterns)
                ):
                    excluded.append(f"line {instruction.line}: {name} (from {source})")
    assert not excluded, f".dockerignore leaves out what the Dockerfile copies: {excluded}"


def test_dockerignore_keeps_large_and_local_things_out():
    patterns = read_dockerignore(DOCKERIGNORE.read_text())
    for path in [".venv/bin/python", ".git/HEAD", "runs/demo/x.log", "lewel/__pycache__/cli.cpython-311.pyc",
                 ".pytest_cache/v", ".hypothesis/examples/x", "lewel.egg-info/PKG-INFO"]:
        assert is_ignored(path, patterns), f".dockerignore lets {path} into the build context"


def test_base_image_is_a_pinned_python_311_tag(instructions):
    for instruction in instructions:
        if instruction.keyword == "FROM":
            image = instruction.rest.split()[0]
            assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", image), (
                f"line {instruction.line}: base image {image!r} is not a python 3.11 slim tag naming its Debian release"
            )


def test_final_user_is_not_root_and_set_before_cmd(instructions):
    stage = final_stage(instructions)
    users = [n for n, i in enumerate(stage) if i.keyword == "USER"]
    cmds = [n for n, i in enumerate(stage) if i.keyword in {"CMD", "ENTRYPOINT"}]
    assert users, "no USER: the container would run as root"
    assert cmds, "no CMD"
    user = stage[users[-1]].rest.split(":")[0]
    assert user not in ROOT_USERS, f"the final USER is {user}"
    assert users[-1] < min(cmds), "USER must come before CMD/ENTRYPOINT"
    created = " ".join(i.rest for i in stage[: users[-1]] if i.keyword == "RUN")
    assert re.search(rf"(useradd|adduser)\b[^&;]*\b{re.escape(user)}\b", created), f"user {user} is never created"


def test_healthcheck_targets_readyz_on_the_api_port(instructions):
    command = healthcheck_command(the(instructions, "HEALTHCHECK"))
    assert command is not None, "HEALTHCHECK NONE"
    text = " ".join(command)
    assert not re.search(r"\b(curl|wget)\b", text), "slim images have no curl/wget"
    urls = re.findall(r"https?://[^\s'\"]+", text)
    assert urls, f"the health check names no URL: {text}"
    port = api_port(instructions)
    assert any(re.fullmatch(rf"https?://(127\.0\.0\.1|localhost):{port}/readyz", url) for url in urls), (
        f"the health check {urls} is not /readyz on the API port {port}"
    )
    assert port in exposed(instructions)
    start = the(instructions, "HEALTHCHECK").flags.get("start-period", "0s")
    assert re.fullmatch(r"\d+[smh]", start) and int(start[:-1]) * {"s": 1, "m": 60, "h": 3600}[start[-1]] >= 60, (
        f"start period {start} leaves too little time to load the model"
    )


def test_expose_lists_the_app_and_api_ports(instructions):
    ports = exposed(instructions)
    assert {8501, 8000} <= ports, f"EXPOSE {sorted(ports)}"
    assert {app_port(instructions), api_port(instructions)} <= ports, "EXPOSE and the CMD's ports differ"


def test_models_volume_matches_lewel_models_dir(instructions):
    models_dir = env(instructions).get("LEWEL_MODELS_DIR")
    assert models_dir, "ENV LEWEL_MODELS_DIR is not set"
    volumes = []
    for instruction in final_stage(instructions):
        if instruction.keyword == "VOLUME":
            volumes += instruction.args
    assert models_dir in volumes, f"VOLUME {volumes} does not hold LEWEL_MODELS_DIR={models_dir}"


def test_bundled_models_are_found_where_they_are_copied(instructions):
    """api/settings.py finds models/ next to the api package; a non-editable install breaks that, so either the
    install is editable or LEWEL_BUNDLED_MODELS_DIR names where models/ is copied."""
    workdir = PurePosixPath("/")
    destinations = {}
    for instruction in final_stage(instructions):
        if instruction.keyword == "WORKDIR":
            workdir = workdir / instruction.rest
        if instruction.keyword in {"COPY", "ADD"}:
            for source in instruction.args[:-1]:
                destination = PurePosixPath(instruction.args[-1])
                destination = destination if destination.is_absolute() else workdir / destination
                if source.rstrip("/") == "models" and not instruction.args[-1].rstrip("/").endswith("models"):
                    destination = destination / "models"  # COPY models/ ./ would spread the files instead
                destinations[source.rstrip("/")] = destination
    assert "models" in destinations, "models/ is not copied"
    bundled = env(instructions).get("LEWEL_BUNDLED_MODELS_DIR")
    editable = any(i.keyword == "RUN" and re.search(r"pip install\b.*\s(-e|--editable)\s", i.rest)
                   for i in final_stage(instructions))
    assert bundled or editable, "neither LEWEL_BUNDLED_MODELS_DIR nor an editable install"
    if bundled:
        assert PurePosixPath(bundled) == destinations["models"], (
            f"LEWEL_BUNDLED_MODELS_DIR={bundled} but models/ is copied to {destinations['models']}"
        )
    if editable:
        assert destinations.get("api") and destinations["api"].parent == destinations["models"].parent, (
            "with an editable install models/ must sit next to the api package"
        )


def pyproject_pins() -> dict[str, str]:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["library"]
    pins = {}
    for requirement in dependencies:
        match = re.fullmatch(r"\s*(torch|torchvision)\s*==\s*([\w.+]+)\s*", requirement)
        if match:
            pins[match.group(1)] = match.group(2)
    assert set(pins) == {"torch", "torchvision"}, "pyproject.toml does not pin torch and torchvision with =="
    return pins


def test_torch_is_installed_first_with_pyprojects_pins(instructions):
    stage = final_stage(instructions)
    torch_runs = [n for n, i in enumerate(stage) if i.keyword == "RUN" and re.search(r"\btorch==", i.rest)]
    assert len(torch_runs) == 1, "torch should be installed by one RUN of its own"
    run = stage[torch_runs[0]].rest
    assert re.fullmatch(r"pip install --no-cache-dir (torch|torchvision)==\S+ (torch|torchvision)==\S+", run), (
        f"the torch layer should install exactly torch and torchvision, pinned: {run}"
    )
    wanted = pyproject_pins()
    found = dict(re.findall(r"\b(torch|torchvision)==(\S+)", run))
    assert found == wanted, f"Dockerfile pins {found}, pyproject.toml {wanted}"
    first_copy = min(n for n, i in enumerate(stage) if i.keyword in {"COPY", "ADD"})
    assert torch_runs[0] < first_copy, "torch must be installed before the project is copied (layer caching)"


def test_project_is_installed_with_the_service_and_app_extras(instructions):
    extras = tomllib.loads(PYPROJECT.read_text())["project"].get("optional-dependencies", {})
    assert {"app", "service", "library"} <= set(extras), "pyproject.toml lacks the [app], [service] or [library] extra"
    runs = [i.rest for i in final_stage(instructions) if i.keyword == "RUN"]
    assert any(re.search(r"pip install --no-cache-dir (-e |--editable )?[\"']?\.\[service,app\]", run) for run in runs)


def stage_named(instructions: list[Instruction], name: str) -> list[Instruction]:
    """The instructions of the stage ``FROM … AS name``."""
    starts = [n for n, i in enumerate(instructions) if i.keyword == "FROM"] + [len(instructions)]
    for start, end in zip(starts, starts[1:]):
        if instructions[start].args[-2:] == ["AS", name] or instructions[start].args[-2:] == ["as", name]:
            return instructions[start:end]
    raise AssertionError(f"no stage {name!r}")


def test_the_frontend_target_is_the_app_alone(instructions):
    """``docker build --target frontend``: the [app] extra only (no torch layer, no service, no models), a
    non-root user, port 8501, and the launcher pointed at ``LEWEL_API_URL`` as PID 1 (``exec``)."""
    stage = stage_named(instructions, "frontend")
    runs = " ".join(i.rest for i in stage if i.keyword == "RUN")
    assert re.search(r"pip install --no-cache-dir -e \"\.\[app\]\"", runs) and "torch" not in runs
    copied = {context_path(s) for i, sources, _ in copies(stage) for s in sources}
    assert {"app", "lewel", "pyproject.toml"} <= copied and not copied & {"api", "models"}
    assert [i.rest for i in stage if i.keyword == "USER"] == ["1000:1000"]
    assert [i.rest for i in stage if i.keyword == "EXPOSE"] == ["8501"]
    values = {k: v for i in stage if i.keyword == "ENV" for k, v in env_pairs(i).items()}
    assert "LEWEL_API_URL" in values
    cmd = [i for i in stage if i.keyword == "CMD"][-1].exec_form
    assert cmd[:2] == ["sh", "-c"] and cmd[2].startswith("exec python -m app --api-url \"$LEWEL_API_URL\"")


def test_apt_installs_the_stamps_without_recommends_and_cleans_up(instructions):
    runs = [i.rest for i in instructions if i.keyword == "RUN" and "apt-get install" in i.rest]
    assert runs, "no apt-get install"
    for run in runs:
        assert "--no-install-recommends" in run and "rm -rf /var/lib/apt/lists/*" in run, run
    assert any(re.search(r"\btuxpaint-stamps-default\b", run) for run in runs)


def test_no_instruction_downloads_files(instructions):
    for instruction in instructions:
        if instruction.keyword == "ADD":
            assert not any(re.match(r"[a-z]+://|git@", s) for s in instruction.args[:-1]), instruction.raw
        if instruction.keyword in {"RUN", "ADD", "COPY"}:
            text = instruction.rest
            assert not re.search(r"\b(curl|wget)\b|[a-z]+://|--index-url|--extra-index-url|--find-links", text), (
                f"line {instruction.line} downloads something: {instruction.raw}"
            )
            assert not re.search(r"torch\.hub|load_state_dict_from_url|weights=(?!None)", text), (
                f"line {instruction.line} fetches model weights: {instruction.raw}"
            )


def test_environment_of_the_app(instructions):
    values = env(instructions)
    assert values.get("PYTHONUNBUFFERED") == "1"
    assert values.get("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "").lower() == "false"


def test_cmd_runs_the_app_launcher(instructions):
    cmd = the(instructions, "CMD")
    assert cmd.exec_form, "CMD should use the JSON form so that the launcher gets SIGTERM as PID 1"
    assert cmd.exec_form[:3] == ["python", "-m", "app"], cmd.exec_form
    assert cmd_options(instructions).get("--host") == "0.0.0.0", "the ports must be reachable from outside"
    assert not any(i.keyword == "ENTRYPOINT" for i in final_stage(instructions)), "an ENTRYPOINT would wrap CMD"
    assert any("app" in [context_path(s) for s in sources] for _, sources, _ in copies(instructions)), "app/ not copied"


def test_the_cmds_module_exists():
    """``python -m app`` needs the package app/ with a __main__.py (the launcher)."""
    assert (ROOT / "app" / "__init__.py").is_file(), "app/__init__.py is missing"
    assert (ROOT / "app" / "__main__.py").is_file(), "app/__main__.py is missing"
