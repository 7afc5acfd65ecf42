"""A project's own conventions for setting up and checking it, read from its files (never run):
`.devcontainer/devcontainer.json` (image, postCreateCommand), then per ecosystem (Python, Node, Go,
Rust), and the test/lint commands its AGENTS.md or CLAUDE.md names.

The setup is a shell script for the verify sandbox. Python gets a virtual environment in /tmp with
the project's declared test dependencies (test extra, dependency group or requirements file), and
the workspace's code first on PYTHONPATH, so it always shadows whatever the image holds; nothing is
built or written in the workspace. Dependency downloads go to CACHE, a directory kept per
`cache_key` (a hash of the image and the lock files), so a second run does not download again.
"""

from __future__ import annotations

import configparser
import hashlib
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json5

from runner.changes.snapshot import Workspace
from runner.verify.verification import Check

CACHE = "/run/pipe-cache"
VENV = "/tmp/pipe-venv"
GROUPS = ("test", "tests", "testing", "dev")
REQUIREMENTS = (
    "requirements-test.txt",
    "requirements-tests.txt",
    "test-requirements.txt",
    "requirements_test.txt",
    "tests/requirements.txt",
    "requirements/test.txt",
    "requirements/tests.txt",
    "requirements-dev.txt",
    "dev-requirements.txt",
    "requirements/dev.txt",
)
LOCK_FILES = (
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "requirements.txt",
    *REQUIREMENTS,
    "poetry.lock",
    "uv.lock",
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "go.mod",
    "go.sum",
    "Cargo.toml",
    "Cargo.lock",
)


@dataclass(frozen=True)
class Conventions:
    """What a project's files say: `image` (from its devcontainer, else None), `setup` (a shell
    script, "" for none), `source` (where they came from, for the log), `cache_key` (hex, names the
    dependency cache) and `checks` (commands its AGENTS.md or CLAUDE.md names)."""

    image: str | None = None
    setup: str = ""
    source: str = ""
    cache_key: str = ""
    checks: tuple[Check, ...] = field(default_factory=tuple)


def _text(workspace: Workspace, path: str) -> str | None:
    try:
        data, _ = workspace.read(path)
    except OSError:
        return None
    return data.decode("utf-8", errors="replace")


def devcontainer(workspace: Workspace) -> tuple[str | None, str, str]:
    """(image, postCreateCommand as a script, file) from the project's devcontainer.json; a
    Dockerfile-based one gives no image (building it is left to the person)."""
    for path in (".devcontainer/devcontainer.json", ".devcontainer.json"):
        raw = _text(workspace, path)
        if raw is None:
            continue
        try:
            config = json5.loads(raw)
        except ValueError:
            return None, "", ""
        if not isinstance(config, dict):
            return None, "", ""
        image = config.get("image") if isinstance(config.get("image"), str) else None
        return image, _command(config.get("postCreateCommand")), path
    return None, "", ""


def _command(value: Any) -> str:
    """A devcontainer lifecycle command (string, argv list, or object of those) as a script."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return shlex.join(value)
    if isinstance(value, dict):
        return "\n".join(c for c in (_command(v) for v in value.values()) if c)
    return ""


def _requirement_list(values: Any) -> list[str]:
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def _group(groups: dict[str, Any], name: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """A PEP 735 dependency group's requirements, with `include-group` entries expanded."""
    found: list[str] = []
    for entry in groups.get(name) or []:
        if isinstance(entry, str):
            found.append(entry)
        elif isinstance(entry, dict) and isinstance(entry.get("include-group"), str):
            included = entry["include-group"]
            if included not in seen:
                found += _group(groups, included, seen | {name})
    return found


def _extra(project: dict[str, Any], name: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """An extra's requirements, with references to the project's own extras expanded."""
    own = re.escape(str(project.get("name") or "\0"))
    found: list[str] = []
    for requirement in _requirement_list((project.get("optional-dependencies") or {}).get(name)):
        match = re.match(rf"^\s*{own}\s*\[([^\]]+)\]\s*$", requirement, re.IGNORECASE)
        if match:
            for extra in (e.strip() for e in match[1].split(",")):
                if extra not in seen:
                    found += _extra(project, extra, seen | {name})
        else:
            found.append(requirement)
    return found


def _setup_text(workspace: Workspace) -> str:
    return (_text(workspace, "setup.py") or "") + (_text(workspace, "setup.cfg") or "")


def _setup_cfg_requirements(workspace: Workspace) -> tuple[list[str], str] | None:
    """(requirements, extra) a setup.cfg declares statically: [options] install_requires and the
    first extra of GROUPS; None when it declares none, or setup.py may compute more (then only a
    build can tell)."""
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read_string(_text(workspace, "setup.cfg") or "")
    except configparser.Error:
        return None
    if re.search(r"install_requires|extras_require", _text(workspace, "setup.py") or ""):
        return None
    install = config.get("options", "install_requires", fallback="")
    extras = dict(config.items("options.extras_require")) if config.has_section("options.extras_require") else {}
    if not install and not extras:
        return None
    extra = next((g for g in GROUPS if g in extras), "")
    lines = (install + "\n" + extras.get(extra, "")).splitlines()
    requirements = [line.split("#")[0].strip() for line in lines]
    if any(r.startswith("file:") for r in requirements):
        return None
    return [r for r in requirements if r], extra


def _declared_extra(workspace: Workspace, project: dict[str, Any]) -> str:
    """The first of GROUPS the project declares as an extra, in pyproject's table, setup.cfg's
    [options.extras_require] or setup.py's `extras_require` keys; "" when it declares none."""
    names = set((project.get("optional-dependencies") or {}) if project else {})
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read_string(_text(workspace, "setup.cfg") or "")
    except configparser.Error:
        pass
    else:
        if config.has_section("options.extras_require"):
            names |= set(config.options("options.extras_require"))
    setup_py = _text(workspace, "setup.py") or ""
    if "extras_require" in setup_py:
        names |= set(re.findall(r"[\"']([\w.-]+)[\"']\s*:", setup_py))
    return next((g for g in GROUPS if g in names), "")


def python_setup(workspace: Workspace) -> tuple[str, str]:
    """(setup script, what it installs) for a Python project; ("", "") when it is not one."""
    pyproject_text = _text(workspace, "pyproject.toml")
    has_setup = workspace.lstat("setup.py") is not None or workspace.lstat("setup.cfg") is not None
    requirements = [p for p in ("requirements.txt", *REQUIREMENTS) if workspace.lstat(p) is not None]
    if pyproject_text is None and not has_setup and not requirements:
        return "", ""
    try:
        pyproject = tomllib.loads(pyproject_text) if pyproject_text else {}
    except tomllib.TOMLDecodeError:
        pyproject = {}
    project = pyproject.get("project") if isinstance(pyproject.get("project"), dict) else {}
    assert isinstance(project, dict)
    lines = [
        f"python3 -m venv --system-site-packages --without-pip {VENV}",
        f". {VENV}/bin/activate",
    ]
    source = "src" if workspace.lstat("src") is not None and workspace.lstat("src/__init__.py") is None else "."
    lines.append(
        f'export PYTHONPATH="$PWD/{source}${{PYTHONPATH:+:$PYTHONPATH}}"'
        if source != "."
        else 'export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"'
    )
    what: list[str] = []
    packages: list[str] = []
    dynamic = set(project.get("dynamic") or []) if project else set()
    if project and "dependencies" not in dynamic and "optional-dependencies" not in dynamic:
        packages += _requirement_list(project.get("dependencies"))
        extras = project.get("optional-dependencies") or {}
        extra = next((g for g in GROUPS if g in extras), None)
        if extra:
            packages += _extra(project, extra)
            what.append(f"extra [{extra}]")
    elif (declared := _setup_cfg_requirements(workspace)) is not None:
        packages += declared[0]
        what.append(f"setup.cfg's requirements{f' and extra [{declared[1]}]' if declared[1] else ''}")
    elif project or re.search(r"install_requires|extras_require", _setup_text(workspace)):
        # Metadata only a build can tell: install the project from a copy (never building in the
        # workspace), then the workspace's code still comes first on PYTHONPATH.
        lines.append("rm -rf /tmp/pipe-project && mkdir /tmp/pipe-project")
        lines.append("tar -c --exclude=.git --exclude=node_modules . | tar -x -C /tmp/pipe-project")
        extra = _declared_extra(workspace, project)
        lines.append(f'python3 -m pip install "/tmp/pipe-project{f"[{extra}]" if extra else ""}"')
        what.append("the project (built from a copy)" + (f" with extra [{extra}]" if extra else ""))
    groups = pyproject.get("dependency-groups")
    if isinstance(groups, dict):
        group = next((g for g in GROUPS if g in groups), None)
        if group:
            packages += _group(groups, group)
            what.append(f"dependency group {group}")
    if packages:
        lines.append("python3 -m pip install " + " ".join(shlex.quote(p) for p in packages))
        what.insert(0, "its dependencies")
    for path in requirements:
        lines.append(f"python3 -m pip install -r {shlex.quote(path)}")
        what.append(path)
    return "\n".join(lines), ", ".join(what) or "no dependencies"


def node_setup(workspace: Workspace) -> tuple[str, str]:
    """(setup script, lock file) for a Node project with a lock file; ("", "") otherwise."""
    if workspace.lstat("package.json") is None:
        return "", ""
    for lock, command in (
        ("pnpm-lock.yaml", "corepack pnpm install --frozen-lockfile"),
        ("yarn.lock", "corepack yarn install --frozen-lockfile"),
        ("package-lock.json", "npm ci --no-audit --no-fund"),
        ("npm-shrinkwrap.json", "npm ci --no-audit --no-fund"),
    ):
        if workspace.lstat(lock) is not None:
            return command, lock
    return "npm install --no-audit --no-fund --no-package-lock", "package.json"


def agent_checks(workspace: Workspace) -> tuple[Check, ...]:
    """The test, lint and type-check commands AGENTS.md (else CLAUDE.md) names: commands in code
    (inline or fenced) under a heading about testing, linting, checks or types."""
    for path in ("AGENTS.md", "CLAUDE.md"):
        text = _text(workspace, path)
        if text is not None:
            return _commands(text)
    return ()


_COMMAND = re.compile(
    r"^(?:pytest|python3? -m \w+|tox|nox|make \w+|npm (?:run )?\w+|pnpm \w+|yarn \w+|go (?:test|vet)|cargo \w+|"
    r"ruff|mypy|flake8|eslint|npx \w+|tsc|pyright|uv run|hatch run|just \w+)"
)


def _kind(command: str) -> str:
    if re.search(r"\b(ruff|flake8|eslint|lint|clippy|pylint|golangci)\b", command):
        return "lint"
    if re.search(r"\b(mypy|tsc|pyright|typecheck|types?)\b", command):
        return "types"
    return "tests"


def _commands(text: str) -> tuple[Check, ...]:
    found: dict[str, Check] = {}
    relevant = False
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced and line.startswith("#"):
            relevant = bool(re.search(r"test|lint|check|type|verif|ci\b", line, re.IGNORECASE))
            continue
        if not relevant:
            continue
        candidates = [line.strip().removeprefix("$ ")] if fenced else re.findall(r"`([^`]+)`", line)
        for candidate in candidates:
            if _COMMAND.match(candidate):
                kind = _kind(candidate)
                if kind not in found:
                    junit = kind == "tests" and re.match(r"^(pytest|python3? -m pytest)\b", candidate) is not None
                    command = f'{candidate} --junitxml="$PIPE_JUNIT"' if junit else candidate
                    found[kind] = Check(kind, kind, command, junit=junit)
    return tuple(found.values())


def cache_key(workspace: Workspace, image: str) -> str:
    """A hash of `image` and the project's manifest and lock files (hex, 16 characters)."""
    digest = hashlib.sha256(image.encode())
    for path in LOCK_FILES:
        try:
            data, _ = workspace.read(path)
        except OSError:
            continue
        digest.update(f"\0{path}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:16]


def conventions(root: Path, image: str) -> Conventions:
    """What the project at `root` says about its setup, for a sandbox of `image` (which the
    devcontainer's image replaces)."""
    workspace = Workspace(root)
    found_image, setup, source = devcontainer(workspace)
    if not setup:
        for ecosystem in (python_setup, node_setup):
            script, what = ecosystem(workspace)
            if script:
                setup, source = script, f"{ecosystem.__name__.split('_')[0]}: {what}"
                break
    return Conventions(
        image=found_image,
        setup=setup,
        source=source,
        cache_key=cache_key(workspace, found_image or image),
        checks=agent_checks(workspace),
    )
