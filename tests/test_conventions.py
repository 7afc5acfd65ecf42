"""Reading a project's own conventions (pure: files only, nothing run) and JUnit reports."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from runner.verify.conventions import conventions
from runner.verify.verification import Check, ResultsUnreadable, detect, junit_counts, output_counts


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_devcontainer_image_and_post_create_command(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {
            ".devcontainer/devcontainer.json": '{\n // a comment\n "image": "python:3.12",\n'
            ' "postCreateCommand": ["pip", "install", "-e", ".[dev]"],\n}\n',
            "pyproject.toml": "[project]\nname='x'\n",
        },
    )
    found = conventions(root, "pipe-sandbox")
    assert (found.image, found.setup) == ("python:3.12", "pip install -e '.[dev]'")


def test_python_src_layout_with_test_extra_and_requirements(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {
            "pyproject.toml": "[project]\nname='pkg'\ndependencies=['attrs']\n"
            "[project.optional-dependencies]\ntest=['pretend', 'pkg[extra]']\nextra=['rich']\n",
            "src/pkg/__init__.py": "",
            "tests/requirements.txt": "coverage\n",
        },
    )
    setup = conventions(root, "pipe-sandbox").setup
    assert 'export PYTHONPATH="$PWD/src' in setup
    assert "python3 -m pip install attrs pretend rich" in setup
    assert "python3 -m pip install -r tests/requirements.txt" in setup
    assert "-e ." not in setup  # nothing is built in the workspace


def test_dependency_group_with_include(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {"pyproject.toml": "[dependency-groups]\nlint=['ruff']\ntest=['pytest', {include-group='lint'}]\n"},
    )
    assert "python3 -m pip install pytest ruff" in conventions(root, "i").setup


def test_node_by_lock_file_and_cache_key_follows_it(tmp_path: Path) -> None:
    root = project(tmp_path, {"package.json": "{}", "package-lock.json": "{}"})
    first = conventions(root, "node")
    assert first.setup.startswith("npm ci")
    (root / "package-lock.json").write_text('{"v": 2}')
    assert conventions(root, "node").cache_key != first.cache_key


def test_agents_md_commands_are_honoured(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {
            "AGENTS.md": "# Intro\nRun `make deploy` never.\n"
            "## Testing\nRun `pytest -x tests` and lint with `ruff check .`\n"
        },
    )
    checks = {c.kind: c.command for c in conventions(root, "i").checks}
    assert checks == {"tests": 'pytest -x tests --junitxml="$PIPE_JUNIT"', "lint": "ruff check ."}


def test_junit_counts_large_and_nested() -> None:
    cases = "".join(f'<testcase name="t{i}"/>' for i in range(20000))
    report = (
        f'<testsuites><testsuite tests="20001">{cases}<testcase name="x"><failure/></testcase></testsuite></testsuites>'
    )
    assert junit_counts(io.BytesIO(report.encode())) == {"passed": 20000, "failed": 1, "errors": 0, "skipped": 0}


@pytest.mark.parametrize(
    "report",
    [b"<testsuite><testcase", b"<other/>", b'<!DOCTYPE x [<!ENTITY a "b">]><testsuite/>'],
)
def test_unreadable_junit_raises(report: bytes) -> None:
    with pytest.raises(ResultsUnreadable):
        junit_counts(io.BytesIO(report))


def test_setup_cfg_requirements_and_the_extra_it_declares_are_installed_without_a_build(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {
            "setup.cfg": "[options]\ninstall_requires = attrs\n[options.extras_require]\ntesting =\n  pytest\n",
            "setup.py": "from setuptools import setup\nsetup()\n",
            "src/pkg/__init__.py": "",
        },
    )
    setup = conventions(root, "pipe-sandbox").setup
    assert "python3 -m pip install attrs pytest" in setup
    assert "/tmp/pipe-project" not in setup  # nothing built: a version from git tags cannot mislead pip


def test_setup_py_extras_are_asked_for_only_when_declared(tmp_path: Path) -> None:
    setup_py = (
        "from setuptools import setup\nsetup(install_requires=['attrs'], extras_require={'testing': ['pytest']})\n"
    )
    setup = conventions(project(tmp_path, {"setup.py": setup_py}), "pipe-sandbox").setup
    assert 'python3 -m pip install "/tmp/pipe-project[testing]"' in setup
    plain = "from setuptools import setup\nsetup(install_requires=['attrs'])\n"
    assert 'install "/tmp/pipe-project"' in conventions(project(tmp_path / "b", {"setup.py": plain}), "i").setup


def test_go_package_without_go_mod_runs_in_gopath_mode(tmp_path: Path) -> None:
    root = project(tmp_path, {"difflib/difflib.go": "package difflib\n"})
    assert [c.command for c in detect(root, ("tests",))] == ["GO111MODULE=off go test -v ./..."]
    assert detect(project(tmp_path / "other", {"README.md": "x"}), ("tests",)) == []


def test_skipped_tests_are_counted_for_go_and_tap() -> None:
    tests = Check("tests", "tests", "go test -v ./...")
    go = "--- PASS: TestA (0.00s)\n    --- SKIP: TestB (0.00s)\n--- PASS: TestC (0.00s)\n"
    assert output_counts(tests, go) == {"passed": 2, "failed": 0, "skipped": 1}
    assert output_counts(tests, "# tests 5\n# pass  4\n# skip  1\n") == {"passed": 4, "failed": 0, "skipped": 1}


def test_cargo_results_of_every_test_binary_are_summed() -> None:
    output = (
        "test result: ok. 10 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.02s\n"
        "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 6.54s\n"
    )  # the last line alone reads like pytest's `3 passed in 6.54s`
    assert output_counts(Check("tests", "tests", "cargo test"), output) == {"passed": 13, "failed": 0, "skipped": 1}
