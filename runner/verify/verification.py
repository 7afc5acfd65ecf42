"""Finding a project's checks (`run: auto`) and reading their results: counts from JUnit XML where
the tool writes it (parsed with defusedxml, streamed, of any size), else from its summary line; the
markdown a pull request description shows. A result that cannot be read is an error, never a pass."""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, iterparse

from runner.changes.snapshot import Workspace

KINDS = ("tests", "lint", "types")
TITLES = {"tests": "Tests", "lint": "Lint", "types": "Types", "other": "Check", "setup": "Setup"}
MARKS = {"passed": "✅", "skipped": "⏭️", "missing": "⚠️"}
PYTEST = 'python3 -m pytest -q -p no:cacheprovider --junitxml="$PIPE_JUNIT"'


@dataclass(frozen=True)
class Check:
    """One check: `kind` tests|lint|types|other, the command, whether it must pass, `junit` when
    the command writes JUnit XML to $PIPE_JUNIT (then a missing or unreadable report is an error),
    `tool` a shell test that the program it needs is there (run first: an absent tool makes the
    check `missing`, not failed) and `missing` what an absent tool means: `warn` (the default for
    lint and types) or `fail` (the default for tests); `setup` a command run just before it."""

    name: str
    kind: str
    command: str
    required: bool = True
    junit: bool = False
    tool: str = ""
    missing: str = ""
    setup: str = ""

    @property
    def missing_fails(self) -> bool:
        """Whether an absent tool fails the check."""
        return (self.missing or ("fail" if self.kind == "tests" else "warn")) == "fail"

    @property
    def program(self) -> str:
        """The program's name, for `ruff not installed`."""
        words = self.command.split()
        if words[:2] == ["python3", "-m"] and len(words) > 2:
            return words[2]
        if words[:2] == ["npx", "--no-install"] and len(words) > 2:
            return words[2]
        return words[0] if words else self.name


@dataclass
class CheckResult:
    """How a check ended: `status` passed|failed|error|missing|skipped (`error`: its results could
    not be read, `reason` says why); `counts` such as passed, failed, errors, skipped (tests) or
    issues (lint, types); `duration` in seconds."""

    check: Check
    status: str
    exit_code: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    duration: float = 0.0
    reason: str = ""

    @property
    def failing(self) -> bool:
        """Whether this result fails the verification (a required check not shown to pass)."""
        if not self.check.required:
            return False
        return self.status in ("failed", "error") or (self.status == "missing" and self.check.missing_fails)

    def summary(self) -> str:
        """`42 passed, 0 failed`, `1 failed, 14999 passed`, `no issues`, `2 errors`, `ruff not
        installed`, `not verified (could not read results: why)`, or the status."""
        if self.status == "skipped":
            return "skipped" + (f" ({self.reason})" if self.reason else "")
        if self.status == "missing":
            return f"{self.check.program} not installed"
        if self.status == "error":
            done = "not verified" if self.exit_code in (None, 0) else f"failed (exit code {self.exit_code})"
            return f"{done} (could not read results: {self.reason})"
        counts = self.counts
        if self.check.kind == "tests" and ("passed" in counts or "failed" in counts):
            passed, failed = counts.get("passed", 0), counts.get("failed", 0)
            text = f"{failed} failed, {passed} passed" if failed else f"{passed} passed, {failed} failed"
            extra = [f"{counts[k]} {k}" for k in ("errors", "skipped") if counts.get(k)]
            if self.status == "failed" and not failed and not counts.get("errors"):
                extra.append(f"exit code {self.exit_code}")
            return ", ".join([text, *extra])
        if "issues" in counts and not (self.status == "failed" and counts["issues"] == 0):
            noun = "errors" if self.check.kind == "types" else "issues"
            if counts["issues"] == 0:
                return "no issues"
            return f"{counts['issues']} {noun[:-1] if counts['issues'] == 1 else noun}"
        return "passed" if self.status == "passed" else f"failed (exit code {self.exit_code})"


def _read(workspace: Workspace, path: str) -> str | None:
    try:
        data, _ = workspace.read(path)
    except OSError:
        return None
    return data.decode("utf-8", errors="replace")


def _exists(workspace: Workspace, *names: str) -> bool:
    return any(workspace.lstat(name) is not None for name in names)


def _has_tool(tool: str) -> str:
    return f"command -v {tool}"


def _go_files(root: Path) -> bool:
    """Whether `root` or a directory right under it holds a .go file (names only: nothing is
    opened, no link followed)."""
    try:
        with os.scandir(root) as entries:
            top = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    except OSError:
        return False
    if any(name.endswith(".go") for name, is_dir in top if not is_dir):
        return True
    for name, is_dir in top:
        if is_dir and not name.startswith("."):
            try:
                with os.scandir(root / name) as entries:
                    if any(e.name.endswith(".go") and e.is_file(follow_symlinks=False) for e in entries):
                        return True
            except OSError:
                continue
    return False


def detect(root: Path, kinds: tuple[str, ...] = KINDS) -> list[Check]:
    """The checks a project configures, read from its files (never run): a test runner (pytest,
    npm test, go test, cargo test, make test), a linter (ruff, flake8, eslint) and a type checker
    (mypy, tsc), each only when the project shows it uses one."""
    workspace = Workspace(root)
    pyproject = _read(workspace, "pyproject.toml") or ""
    try:
        tools = tomllib.loads(pyproject).get("tool", {}) if pyproject else {}
    except tomllib.TOMLDecodeError:
        tools = {}
    setup_cfg = _read(workspace, "setup.cfg") or ""
    tox_ini = _read(workspace, "tox.ini") or ""
    package: dict[str, object] = {}
    if (raw := _read(workspace, "package.json")) is not None:
        try:
            loaded = json.loads(raw)
        except json.JSONDecodeError:
            loaded = {}
        package = loaded if isinstance(loaded, dict) else {}
    makefile = _read(workspace, "Makefile") or ""
    scripts = package.get("scripts")
    found: list[Check] = []
    if "tests" in kinds:
        python = pyproject or setup_cfg or _exists(workspace, "setup.py", "pytest.ini")
        if (
            "pytest" in tools
            or _exists(workspace, "pytest.ini")
            or "[tool:pytest]" in setup_cfg
            or "[pytest]" in tox_ini
            or (python and _exists(workspace, "tests", "test", "conftest.py"))
        ):
            found.append(Check("tests", "tests", PYTEST, junit=True, tool="python3 -c 'import pytest'"))
        elif isinstance(scripts, dict) and "test" in scripts:
            found.append(Check("tests", "tests", "npm test", tool=_has_tool("npm")))
        elif _exists(workspace, "go.mod"):
            found.append(Check("tests", "tests", "go test -v ./...", tool=_has_tool("go")))
        elif _go_files(root):  # a GOPATH-era package (no go.mod): module mode would refuse it
            found.append(Check("tests", "tests", "GO111MODULE=off go test -v ./...", tool=_has_tool("go")))
        elif _exists(workspace, "Cargo.toml"):
            found.append(Check("tests", "tests", "cargo test", tool=_has_tool("cargo")))
        elif re.search(r"^test\s*:", makefile, re.MULTILINE):
            found.append(Check("tests", "tests", "make test", tool=_has_tool("make")))
    if "lint" in kinds:
        if "ruff" in tools or _exists(workspace, "ruff.toml", ".ruff.toml"):
            found.append(Check("lint", "lint", "ruff check --output-format concise .", tool=_has_tool("ruff")))
        elif _exists(workspace, ".flake8") or "[flake8]" in setup_cfg or "[flake8]" in tox_ini:
            found.append(Check("lint", "lint", "flake8 .", tool=_has_tool("flake8")))
        elif _exists(
            workspace,
            ".eslintrc",
            ".eslintrc.js",
            ".eslintrc.json",
            ".eslintrc.yml",
            ".eslintrc.cjs",
            "eslint.config.js",
            "eslint.config.mjs",
            "eslint.config.cjs",
        ):
            found.append(Check("lint", "lint", "npx --no-install eslint .", tool="test -x node_modules/.bin/eslint"))
    if "types" in kinds:
        if "mypy" in tools or _exists(workspace, "mypy.ini", ".mypy.ini") or "[mypy]" in setup_cfg:
            found.append(Check("types", "types", "mypy .", tool=_has_tool("mypy")))
        elif _exists(workspace, "tsconfig.json"):
            found.append(Check("types", "types", "npx --no-install tsc --noEmit", tool="test -x node_modules/.bin/tsc"))
    return found


class ResultsUnreadable(Exception):
    """A results file could not be parsed (the message says why)."""


def junit_counts(source: BinaryIO) -> dict[str, int]:
    """passed/failed/errors/skipped of a JUnit XML report, streamed (memory does not grow with the
    number of tests) through defusedxml (no entities, no DTD). Test cases are counted one by one;
    a report without any uses its top element's totals. Raises ResultsUnreadable."""
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    cases = 0
    top: dict[str, str] = {}
    try:
        for event, element in iterparse(source, events=("start", "end"), forbid_dtd=True):
            if event == "start":
                if not top and element.tag in ("testsuites", "testsuite"):
                    top = dict(element.attrib) or {"tag": element.tag}
                continue
            if element.tag != "testcase":
                continue
            cases += 1
            tags = {child.tag for child in element}
            if "failure" in tags:
                counts["failed"] += 1
            elif "error" in tags:
                counts["errors"] += 1
            elif "skipped" in tags:
                counts["skipped"] += 1
            else:
                counts["passed"] += 1
            element.clear()
    except (ParseError, DefusedXmlException) as error:
        raise ResultsUnreadable(f"the JUnit report is not valid XML ({error})") from None
    if not top:
        raise ResultsUnreadable("the JUnit report has no testsuite")
    if cases == 0:
        try:
            total = {k: int(top.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        except ValueError:
            raise ResultsUnreadable("the JUnit report's totals are not numbers") from None
        counts = {
            "passed": total["tests"] - total["failures"] - total["errors"] - total["skipped"],
            "failed": total["failures"],
            "errors": total["errors"],
            "skipped": total["skipped"],
        }
    return counts


_TEST_WORDS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)")


def output_counts(check: Check, output: str) -> dict[str, int]:
    """Counts from the tool's summary line in `output`; {} when none is recognised."""
    if check.kind == "tests":
        return _test_counts(output)
    if check.kind in ("lint", "types"):
        return _issue_counts(output)
    return {}


def _test_counts(output: str) -> dict[str, int]:
    cargo = re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", output)
    if cargo:  # one line per test binary (first: each also reads like pytest's `... in 0.01s`)
        return {
            "passed": sum(int(c[0]) for c in cargo),
            "failed": sum(int(c[1]) for c in cargo),
            "skipped": sum(int(c[2]) for c in cargo),
        }
    lines = output.splitlines()
    for line in reversed(lines):  # pytest: "=== 1 failed, 42 passed in 0.12s ==="
        found = _TEST_WORDS.findall(line)
        if found and ("passed" in line or "failed" in line) and " in " in line:
            counts: dict[str, int] = {}
            for number, word in found:
                key = {"error": "errors", "warning": "warnings"}.get(word, word)
                counts[key] = counts.get(key, 0) + int(number)
            counts.setdefault("passed", 0)
            counts.setdefault("failed", 0)
            return counts
    if match := re.search(r"Tests:\s+(?:(\d+) failed, )?(?:(\d+) skipped, )?(?:(\d+) passed, )?\d+ total", output):
        return {"failed": int(match[1] or 0), "skipped": int(match[2] or 0), "passed": int(match[3] or 0)}  # jest
    tap_pass, tap_fail = re.search(r"^# pass\s+(\d+)", output, re.M), re.search(r"^# fail\s+(\d+)", output, re.M)
    if tap_pass or tap_fail:  # node --test, tape
        tap_skip = re.search(r"^# skip\s+(\d+)", output, re.M)
        return {
            "passed": int(tap_pass[1]) if tap_pass else 0,
            "failed": int(tap_fail[1]) if tap_fail else 0,
            "skipped": int(tap_skip[1]) if tap_skip else 0,
        }
    passing, failing = re.search(r"(\d+) passing", output), re.search(r"(\d+) failing", output)  # mocha
    if passing or failing:
        return {"passed": int(passing[1]) if passing else 0, "failed": int(failing[1]) if failing else 0}
    go = {key: len(re.findall(rf"^\s*--- {word}", output, re.M)) for word, key in _GO_WORDS}  # go test -v
    if go["passed"] or go["failed"]:
        return go
    return {}


_GO_WORDS = (("PASS", "passed"), ("FAIL", "failed"), ("SKIP", "skipped"))


def _issue_counts(output: str) -> dict[str, int]:
    if re.search(r"All checks passed!|Success: no issues found", output):
        return {"issues": 0}
    for pattern in (
        r"Found (\d+) errors? in \d+ files?",
        r"Found (\d+) errors?\.?",
        r"(\d+) problems?",
        r"Found (\d+) errors?",
    ):
        if match := re.search(pattern, output):
            return {"issues": int(match[1])}
    located = re.findall(r"^[^\s:]+:\d+:\d+: ", output, re.M)  # flake8 and friends
    return {"issues": len(located)} if located or not output.strip() else {}


def markdown(results: list[CheckResult], setup: CheckResult | None = None) -> str:
    """The block a pull request description shows:

    ## Verification
    ✅ Tests: 42 passed, 0 failed
    ⚠️ Lint: ruff not installed
    ❌ Types: 2 errors
    """
    lines = ["## Verification"]
    for result in ([setup] if setup is not None and setup.status != "passed" else []) + results:
        mark = MARKS.get(result.status, "❌")
        title = TITLES.get(result.check.kind, "Check")
        label = title if result.check.name in (result.check.kind, "") else f"{title} ({result.check.name})"
        lines.append(f"{mark} {label}: {result.summary()}")
    return "\n".join(lines)
