"""Hostile input: terminal escapes never reach the terminal, expression values are literal in every
quoting context of a `run:` script, templates have a time cap, and malformed pipelines end in a
one-line error with exit code 2 (never "this is a bug in pipe")."""

from __future__ import annotations

import io
import subprocess
import time
from pathlib import Path

import pytest

from runner.errors import TemplateError
from runner.pipeline import expressions
from runner.pipeline.expressions import Expressions
from runner.reporters.console import PlainReporter, RichReporter
from runner.store import StepRecord, Store
from runner.terminal import printable
from tests.support.cli import Cli
from tests.support.github_server import GitHubServer
from tests.support.pipelines import write_pipeline

# OSC 52 (write the clipboard), a window title, and a cursor move that overwrites the line with a forged ✓.
HOSTILE_TEXT = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b]0;pwned\x07\x1b[1A\x1b[2K✓ tests: success\x9b2J\rforged\x00"


def assert_inert(text: str) -> None:
    for control in ("\x1b", "\x07", "\x9b", "\x00"):
        assert control not in text
    assert "\r" not in text.replace("\r\n", "")


# ---- 1. terminal escapes ----------------------------------------------------------------------


def test_printable_makes_controls_visible_and_keeps_lines() -> None:
    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert printable("over\rwrite") == "over\\x0dwrite"
    assert printable("\x9b\x9d\x7f\x00") == "\\x9b\\x9d\\x7f\\x00"
    assert printable("line 1\r\nline 2\n\ttab ✓") == "line 1\r\nline 2\n\ttab ✓"
    assert_inert(printable(HOSTILE_TEXT))


@pytest.mark.parametrize("reporter", [PlainReporter, RichReporter])
def test_console_reporter_neutralises_step_output_and_titles(reporter: type) -> None:
    stream = io.StringIO()
    console = reporter(stream)
    console.event("step_started", {"step": "issue"})
    console.output("issue", HOSTILE_TEXT)
    console.event("step_error", {"step": "issue", "error": HOSTILE_TEXT})
    console.event("run_finished", {"run": "r1", "status": "failed", "error": HOSTILE_TEXT, "steps": []})
    console.close()
    assert "\\x1b]52;c;" in stream.getvalue()
    assert_inert(stream.getvalue())


def _store_with_hostile_run(state: Path) -> tuple[str, Path]:
    store = Store(state)
    try:
        pipeline = store.add_pipeline("hostile", "hostile.yml", "digest", "version: 1")
        run_id = store.create_run(pipeline, {"title": HOSTILE_TEXT})
        now = time.time()
        store.update_run(run_id, status="failed", started_at=now - 1, finished_at=now, error=HOSTILE_TEXT)
        log = state / "issue.log"
        log.write_text(f"title: {HOSTILE_TEXT}\n")
        attempt = store.start_attempt(run_id, "issue", 0, 1, log, now - 1)
        store.finish_attempt(attempt, "failed", 1, now, {"title": HOSTILE_TEXT}, HOSTILE_TEXT)
        outputs = {"title": HOSTILE_TEXT}
        store.record_step(
            run_id, StepRecord("issue", 0, 0, "failure", "failure", 1, now - 1, now, outputs, HOSTILE_TEXT)
        )
    finally:
        store.close()
    return run_id, log


@pytest.mark.parametrize("command", [["show", "RUN"], ["logs", "RUN"], ["logs", "RUN", "issue"]])
def test_show_and_logs_neutralise_stored_text_but_keep_it_faithful(
    command: list[str], tmp_path: Path, cli: Cli
) -> None:
    run_id, log = _store_with_hostile_run(tmp_path / "state")
    before = log.read_bytes()
    argv = [run_id if arg == "RUN" else arg for arg in command]
    result = cli(*argv, "--state-dir", str(tmp_path / "state"))
    assert result.code == 0, result.err
    assert "\\x1b]52;c;" in result.out
    assert_inert(result.out + result.err)
    assert log.read_bytes() == before


# ---- 2. values in `run:` scripts are literal in every quoting context -------------------------

HOSTILE_VALUES = [
    "$(touch {marker})",
    "`touch {marker}`",
    '"; touch {marker}; echo "',
    "'; touch {marker}; echo '",
    "x\ntouch {marker}\n",
    "'",
    '"',
    "\\",
    "",
    'it\'s "$(touch {marker})" and `touch {marker}`',
    "$'\\x27'; touch {marker} #",
]

# (script, what printf must print for the value V)
CONTEXTS = [
    ('printf "%s|" {{ inputs.x }}', "{v}|"),
    ('printf "%s|" "{{ inputs.x }}"', "{v}|"),
    ("printf '%s|' '{{ inputs.x }}'", "{v}|"),
    ('printf "%s|" "pre {{ inputs.x }} post"', "pre {v} post|"),
    ("printf '%s|' 'pre {{ inputs.x }} post'", "pre {v} post|"),
    ("printf '%s|' $'pre\\t{{ inputs.x }} post'", "pre\t{v} post|"),
    ('printf "%s|" "$(printf "%s" "{{ inputs.x }}")"', "{v}|"),
    ('printf "%s|" --title={{ inputs.x }}', "--title={v}|"),
    ('# a comment {{ inputs.x }}\nprintf "%s|" ok', "ok|"),
    ('{% for i in range(2) %}printf "%s|" "{{ inputs.x }}"\n{% endfor %}', "{v}|{v}|"),
]


@pytest.mark.parametrize("hostile", HOSTILE_VALUES)
@pytest.mark.parametrize(("script", "expected"), CONTEXTS)
def test_a_hostile_value_is_one_literal_word_in_every_quoting_context(
    hostile: str, script: str, expected: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    value = hostile.format(marker=marker)
    rendered = Expressions({"inputs": {"x": value}}).render_script(script)
    done = subprocess.run(["bash", "-c", rendered], capture_output=True, text=True, check=False)
    assert not marker.exists(), rendered
    shown = value.rstrip("\n") if "$(printf" in script else value  # $(...) drops trailing newlines
    assert done.stdout == expected.format(v=shown), rendered


@pytest.mark.parametrize(
    ("script", "where"),
    [
        ("cat <<EOF\n{{ inputs.x }}\nEOF", "in a heredoc"),
        ("cat <<'EOF'\n{{ inputs.x }}\nEOF", "in a heredoc"),
        ("cat <<-EOF\n\t{{ inputs.x }}\n\tEOF", "in a heredoc"),
        ("echo `echo {{ inputs.x }}`", "inside backticks"),
        ('echo "${X:-{{ inputs.x }}}"', "inside ${...}"),
        ('echo "\\{{ inputs.x }}"', "after a backslash"),
        ("echo \\{{ inputs.x }}", "after a backslash"),
        ("echo ${{ inputs.x }}", "directly after '$'"),
    ],
)
def test_an_expression_where_no_quoting_is_literal_is_refused(
    script: str, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    hostile = f"EOF\n$(touch {tmp_path / 'pwned'})\n1"
    with pytest.raises(TemplateError) as raised:
        Expressions({"inputs": {"x": hostile}}).render_script(script)
    assert str(raised.value) == (
        f"expression 1 cannot be shell-quoted {where}; make it a plain word or pass it through the step's env:"
    )
    monkeypatch.chdir(tmp_path)
    indented = script.replace("\n", "\n      ")
    write_pipeline(tmp_path, HEAD + f"    run: |\n      {indented}\n", "bad.yml")
    result = cli("validate", "bad.yml")
    assert result.code == 2
    assert result.err == (
        f"bad.yml:7:10: steps[0].run: {{{{ inputs.x }}}} cannot be shell-quoted {where}; "
        "make it a plain word or pass it through the step's env:\n"
    )


def test_a_quoted_expression_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    monkeypatch.chdir(tmp_path)
    write_pipeline(tmp_path, HEAD + "    run: echo \"{{ inputs.x }}\" '{{ inputs.x }}'\n", "ok.yml")
    result = cli("validate", "ok.yml")
    assert (result.code, result.out) == (0, "ok.yml: ok (1 steps)\n")


def test_a_nul_character_in_a_value_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match=r"^the value of expression 1 contains a NUL character$"):
        Expressions({"inputs": {"x": "a\x00b"}}).render_script("echo {{ inputs.x }}")


# ---- 3. template time cap --------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "{% for a in inputs.s %}{% for b in inputs.s %}{% set c = b %}{% endfor %}{% endfor %}",
    ],
)
def test_a_slow_template_stops_at_the_time_cap(template: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expressions, "MAX_RENDER_SECONDS", 0.5)
    context = Expressions({"inputs": {"s": "x" * 100_000}})
    started = time.monotonic()
    with pytest.raises(TemplateError) as raised:
        context.render_value({"prompt": template})
    assert str(raised.value) == "with.prompt: template took longer than 0.5s to render"
    with pytest.raises(TemplateError, match=r"^template took longer than 0\.5s to render$"):
        context.render_script("echo " + template)
    assert time.monotonic() - started < 3
    time.sleep(0.7)  # the timer never fires into later work
    assert context.render("{{ 1 + 1 }}") == "2"


# ---- 4. malformed inputs: one line, exit 2 ---------------------------------------------------

HEAD = "version: 1\nname: t\ninputs:\n  x: {type: string}\nsteps:\n  - id: a\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "version: 1\nname: t\nsteps: " + "[" * 10000 + "]" * 10000 + "\n",
            "bad.yml:3:71: nested more than 64 levels deep",
        ),
        (
            HEAD + "    run: echo \x1b]52;c;eA==\x07\n",
            "bad.yml:7:15: invalid YAML: control character '\\x1b' is not allowed "
            "(write it as an escape in double quotes)",
        ),
        (
            HEAD + "    run: echo \x00\n",
            "bad.yml:7:15: invalid YAML: control character '\\x00' is not allowed "
            "(write it as an escape in double quotes)",
        ),
        (
            HEAD + "    run: echo\n    timeout: " + "9" * 5000 + "\n",
            "bad.yml:8:14: steps[0].timeout: integer has 5000 digits; the limit is 100",
        ),
        (
            "version: 1\nname: t\ninputs:\n  n: {type: integer, default: " + "9" * 5000 + "}\nsteps:\n  - id: a\n"
            "    run: echo\n",
            "bad.yml:4:31: inputs.n.default: integer has 5000 digits; the limit is 100",
        ),
        (
            HEAD + "    run: echo\n    sandbox: {image: 'UPPER CASE!!'}\n",
            "bad.yml:8:22: steps[0].sandbox.image: 'UPPER CASE!!' is not a valid image reference "
            "(e.g. pipe-sandbox, ghcr.io/owner/name:tag)",
        ),
        (
            HEAD + "    uses: agent\n    with: {command: 'true', prompt: hi, output-schema: missing.json}\n",
            "bad.yml:8:56: steps[0].with.output-schema: output-schema 'missing.json' not found "
            "(looked in TMP and pipe's schemas/)",
        ),
    ],
    ids=["deep-nesting", "esc", "nul", "long-int", "long-int-default", "image", "output-schema"],
)
@pytest.mark.parametrize("command", [["validate"], ["run", "--dry-run"]])
def test_malformed_pipeline_is_one_line_and_exit_2(
    text: str,
    message: str,
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Cli,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yml").write_text(text)
    state = ["--state-dir", str(tmp_path / "state")] if command[0] == "run" else []
    result = cli(*command, "bad.yml", *state)
    assert result.code == 2
    assert result.err == message.replace("TMP", str(tmp_path)) + "\n"
    if (tmp_path / "state").exists():
        assert Store(tmp_path / "state").runs(limit=10, status=None) == []


# ---- a real run: a hostile issue title -------------------------------------------------------

TITLE_FLOW = """\
version: 1
name: title
inputs:
  issue: {type: integer, required: true}
credentials: [github]
steps:
  - id: issue
    uses: github/issue
    with: {number: "{{ inputs.issue }}"}
  - id: say
    credentials: []
    run: |
      echo "title: {{ steps.issue.outputs.title }}"
      echo 'again: {{ steps.issue.outputs.title }}'
"""


@pytest.mark.docker
@pytest.mark.parametrize("nul", [False, True], ids=["esc", "nul"])
def test_a_hostile_issue_title_is_data_in_a_real_run(
    nul: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli, github: GitHubServer
) -> None:
    from tests.support.github import TOKEN

    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    repo = github.create_repo("octo/demo", {"README.md": "# demo\n"})
    title = HOSTILE_TEXT.replace("\x00", "") + ' $(touch /workspace/pwned) "; touch /workspace/pwned2; "'
    repo.add_issue(title + ("\x00" if nul else ""), "body")
    path = write_pipeline(tmp_path, TITLE_FLOW)
    state = tmp_path / "state"
    argv = ["run", str(path), "-i", "issue=1", "--repo", "octo/demo", "--api-url", github.api_url]
    result = cli(*argv, "--state-dir", str(state))
    assert_inert(result.out + result.err)
    store = Store(state)
    run = store.run("latest")
    assert all(attempt.status != "running" for attempt in store.attempts(run.id))
    workspace = Path(run.workspace)
    assert not (workspace / "pwned").exists() and not (workspace / "pwned2").exists()
    if nul:
        assert result.code == 1
        (say,) = [s for s in store.steps(run.id) if s.step_id == "say"]
        assert say.error == "the value of expression 1 contains a NUL character"
    else:
        assert result.code == 0, result.out + result.err
        (attempt,) = [a for a in store.attempts(run.id) if a.step_id == "say"]
        assert attempt.log_path is not None
        logged = Path(attempt.log_path).read_bytes().decode()
        assert f"title: {title}\n" in logged and f"again: {title}\n" in logged  # stored faithfully
        assert "\\x1b]52;c;" in result.out
