"""Templates cannot escape Jinja2's sandbox, and values reach the shell as literal words."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runner.errors import SecurityError, TemplateError
from runner.pipeline.expressions import Expressions
from tests.support.cli import Cli

HEAD = "version: 1\nname: t\ninputs:\n  x: {type: string}\nsteps:\n  - id: a\n"


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("{{ ''.__class__.__mro__ }}", "security: access to '__mro__' is not allowed"),
        ("{{ inputs.x|attr('format') }}", "security: the 'attr' filter is not allowed"),
        ("{{ inputs['__class__'] }}", "security: access to '__class__' is not allowed"),
    ],
)
def test_sandbox_escapes_fail_validation_as_security_errors(
    script: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.yml").write_text(HEAD + f'    run: "echo {script}"\n')
    result = cli("validate", "bad.yml")
    assert result.code == 2
    assert f"bad.yml:7:10: steps[0].run: {message}" in result.err.splitlines()


@pytest.mark.parametrize(
    "template",
    ["{{ ''.__class__.__mro__ }}", "{{ 'a'|attr('format') }}", "{{ 'x' * 1000000 }}", "{{ 2 ** 100000 }}"],
)
def test_sandbox_escapes_fail_at_render_time_too(template: str) -> None:
    with pytest.raises(SecurityError):
        Expressions({}).render(template)


def test_rendered_size_is_capped() -> None:
    big = "x" * 600_000
    with pytest.raises(TemplateError, match="rendered text exceeds"):
        Expressions({"inputs": {"big": big}}).render("{{ inputs.big }}{{ inputs.big }}")


def test_injected_shell_reaches_bash_as_one_literal_argument(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f'"; touch {marker} #'
    script = Expressions({"inputs": {"x": hostile}}).render_script(
        "printf '%s\\n' {{ inputs.x }} > " + str(tmp_path / "out") + "\nprintf '%s' $# {{ inputs.x }} | head -c0"
    )
    subprocess.run(["bash", "-e", "-c", script], check=True)
    assert not marker.exists()
    assert (tmp_path / "out").read_text() == hostile + "\n"


def test_values_with_template_syntax_are_never_rendered_again() -> None:
    issue_body = "Please {{ 7 * 7 }} and {% for x in range(3) %}{{ x }}{% endfor %}"
    rendered = Expressions({"inputs": {"body": issue_body}}).render("Body: {{ inputs.body }}")
    assert rendered == f"Body: {issue_body}"


def test_shell_raw_is_an_explicit_opt_out() -> None:
    expressions = Expressions({"inputs": {"flags": "-l -a"}})
    assert expressions.render_script("ls {{ inputs.flags }}") == "ls '-l -a'"
    assert expressions.render_script("ls {{ inputs.flags | shell_raw }}") == "ls -l -a"
