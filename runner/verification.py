"""Finding a project's checks (`run: auto`) and reading their results: counts from JUnit XML where
the tool writes it, else from its summary line; the markdown a pull request description shows."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from runner.snapshot import Workspace

KINDS = ("tests", "lint", "types")
TITLES = {"tests": "Tests", "lint": "Lint", "types": "Types", "other": "Check"}
JUNIT = "/tmp/pipe-junit.xml"


@dataclass(frozen=True)
class Check:
    """One check: `kind` tests|lint|types|other, the command, whether it must pass, and `junit`
    when the command writes JUnit XML to JUNIT."""

    name: str
    kind: str
    command: str
    required: bool = True
    junit: bool = False


@dataclass
class CheckResult:
    """How a check ended: `status` passed|failed|error|skipped; `counts` such as passed, failed,
    errors, skipped (tests) or issues (lint, types); `duration` in seconds."""

    check: Check
    status: str
    exit_code: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    duration: float = 0.0

    def summary(self) -> str:
        """`42 passed, 0 failed`, `no issues`, `2 errors`, or the status."""
        if self.status == "skipped":
            return "skipped"
        counts = self.counts
        if self.check.kind == "tests" and ("passed" in counts or "failed" in counts):
            text = f"{counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed"
            extra = [f"{counts[k]} {k}" for k in ("errors", "skipped") if counts.get(k)]
            return ", ".join([text, *extra])
        if "issues" in counts:
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
    package = {}
    if (raw := _read(workspace, "package.json")) is not None:
        try:
            package = json.loads(raw)
        except json.JSONDecodeError:
            package = {}
    makefile = _read(workspace, "Makefile") or ""
    exists = {
        name: workspace.lstat(name) is not None
        for name in (
            "tests",
            "test",
            "pytest.ini",
            "conftest.py",
            "go.mod",
            "Cargo.toml",
            "ruff.toml",
            ".ruff.toml",
            ".flake8",
            "mypy.ini",
            ".mypy.ini",
            "tsconfig.json",
            "setup.py",
        )
    }
    eslint = any(
        workspace.lstat(name) is not None
        for name in (
            ".eslintrc",
            ".eslintrc.js",
            ".eslintrc.json",
            ".eslintrc.yml",
            ".eslintrc.cjs",
            "eslint.config.js",
            "eslint.config.mjs",
            "eslint.config.cjs",
        )
    )
    found: list[Check] = []
    if "tests" in kinds:
        python = pyproject or setup_cfg or exists["setup.py"] or exists["pytest.ini"]
        if (
            "pytest" in tools
            or exists["pytest.ini"]
            or "[tool:pytest]" in setup_cfg
            or "[pytest]" in tox_ini
            or (python and (exists["tests"] or exists["test"] or exists["conftest.py"]))
        ):
            found.append(
                Check("tests", "tests", f"python3 -m pytest -q -p no:cacheprovider --junitxml={JUNIT}", junit=True)
            )
        elif isinstance(package.get("scripts"), dict) and "test" in package["scripts"]:
            found.append(Check("tests", "tests", "npm test --silent"))
        elif exists["go.mod"]:
            found.append(Check("tests", "tests", "go test -v ./..."))
        elif exists["Cargo.toml"]:
            found.append(Check("tests", "tests", "cargo test"))
        elif re.search(r"^test\s*:", makefile, re.MULTILINE):
            found.append(Check("tests", "tests", "make test"))
    if "lint" in kinds:
        if "ruff" in tools or exists["ruff.toml"] or exists[".ruff.toml"]:
            found.append(Check("lint", "lint", "ruff check --output-format concise ."))
        elif exists[".flake8"] or "[flake8]" in setup_cfg or "[flake8]" in tox_ini:
            found.append(Check("lint", "lint", "flake8 ."))
        elif eslint:
            found.append(Check("lint", "lint", "npx --no-install eslint ."))
    if "types" in kinds:
        if "mypy" in tools or exists["mypy.ini"] or exists[".mypy.ini"] or "[mypy]" in setup_cfg:
            found.append(Check("types", "types", "mypy ."))
        elif exists["tsconfig.json"]:
            found.append(Check("types", "types", "npx --no-install tsc --noEmit"))
    return found


_TEST_WORDS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)")


def parse_counts(check: Check, output: str, junit: str | None) -> dict[str, int]:
    """Counts from JUnit XML when given, else from the tool's summary line; {} when unknown."""
    if junit:
        try:
            root = ElementTree.fromstring(junit)
        except ElementTree.ParseError:
            root = None
        if root is not None:
            suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
            total = {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}
            failed = total["failures"]
            return {
                "passed": total["tests"] - failed - total["errors"] - total["skipped"],
                "failed": failed,
                "errors": total["errors"],
                "skipped": total["skipped"],
            }
    if check.kind == "tests":
        return _test_counts(output)
    if check.kind in ("lint", "types"):
        return _issue_counts(output)
    return {}


def _test_counts(output: str) -> dict[str, int]:
    lines = output.splitlines()
    for line in reversed(lines):  # pytest: "=== 1 failed, 42 passed in 0.12s ==="
        found = _TEST_WORDS.findall(line)
        if found and ("passed" in line or "failed" in line):
            counts: dict[str, int] = {}
            for number, word in found:
                key = {"error": "errors", "warning": "warnings"}.get(word, word)
                counts[key] = counts.get(key, 0) + int(number)
            counts.setdefault("passed", 0)
            counts.setdefault("failed", 0)
            return counts
    if match := re.search(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", output):  # cargo
        return {"passed": int(match[1]), "failed": int(match[2]), "skipped": int(match[3])}
    if match := re.search(r"Tests:\s+(?:(\d+) failed, )?(?:(\d+) skipped, )?(?:(\d+) passed, )?\d+ total", output):
        return {"failed": int(match[1] or 0), "skipped": int(match[2] or 0), "passed": int(match[3] or 0)}  # jest
    passing, failing = re.search(r"(\d+) passing", output), re.search(r"(\d+) failing", output)  # mocha
    if passing or failing:
        return {"passed": int(passing[1]) if passing else 0, "failed": int(failing[1]) if failing else 0}
    go_pass, go_fail = len(re.findall(r"^\s*--- PASS", output, re.M)), len(re.findall(r"^\s*--- FAIL", output, re.M))
    if go_pass or go_fail:
        return {"passed": go_pass, "failed": go_fail}
    return {}


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


def markdown(results: list[CheckResult]) -> str:
    """The block a pull request description shows:

    ## Verification
    ✅ Tests: 42 passed, 0 failed
    ❌ Types: 2 errors
    """
    lines = ["## Verification"]
    for result in results:
        mark = {"passed": "✅", "skipped": "⏭️"}.get(result.status, "❌")
        title = TITLES.get(result.check.kind, "Check")
        label = title if result.check.name in (result.check.kind, "") else f"{title} ({result.check.name})"
        lines.append(f"{mark} {label}: {result.summary()}")
    return "\n".join(lines)
