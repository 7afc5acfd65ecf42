"""Values bash reads as numbers must be integers; values never reach a command that runs them as code;
comments are recognised only where bash starts one (runner/shellcontext.py, runner/shellcommands.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runner.errors import TemplateError
from runner.pipeline.expressions import Expressions
from tests.support.cli import Cli, CliResult
from tests.support.pipelines import write_pipeline

HEAD = "version: 1\nname: t\ninputs:\n  x: {type: string}\nsteps:\n  - id: a\n"
NOT_AN_INTEGER = (
    "expression 1 ({{ inputs.x }}): value used as a number by bash must be an integer "
    "(pass text through the step's env:)"
)


def _bash(script: str, value: str) -> subprocess.CompletedProcess[str]:
    rendered = Expressions({"inputs": {"x": value}}).render_script(script)
    return subprocess.run(["bash", "-c", rendered], capture_output=True, text=True, check=False)


def _validate(tmp_path: Path, script: str, cli: Cli) -> CliResult:
    indented = script.replace("\n", "\n      ")
    write_pipeline(tmp_path, HEAD + f"    run: |\n      {indented}\n", "p.yml")
    return cli("validate", str(tmp_path / "p.yml"))


# (script, what it prints with x=3)
NUMERIC = [
    ("if [[ {{ inputs.x }} -gt 0 ]]; then echo more; fi", "more\n"),
    ('if [[ "{{ inputs.x }}" -eq 3 ]]; then echo three; fi', "three\n"),
    ("[[ 1 -lt {{ inputs.x }} && -n x ]] && echo lt", "lt\n"),
    ("[[ ( {{ inputs.x }} -ge 1 ) ]] && echo ge", "ge\n"),
    ("a=(x y z w); [[ -v a[{{ inputs.x }}] ]] && echo set", "set\n"),
    ("[ {{ inputs.x }} -ne 1 ] && echo ne", "ne\n"),
    ("test '{{ inputs.x }}' -le 3 && echo le", "le\n"),
    ("pages[{{ inputs.x }}]=done; echo ${pages[3]}", "done\n"),
    ("declare -i count={{ inputs.x }}; echo $count", "3\n"),
    ("f() { local -i n={{ inputs.x }}; echo $n; }; f", "3\n"),
    ("declare -i n; n={{ inputs.x }}; echo $n", "3\n"),
    ("declare -ai arr=({{ inputs.x }}); echo ${arr[0]}", "3\n"),
    ("arr=([{{ inputs.x }}]=c); echo ${!arr[@]}", "3\n"),
    ("let n={{ inputs.x }}+1; echo $n", "4\n"),
    ("(( n = {{ inputs.x }} )); echo $n", "3\n"),
    ("echo $(( {{ inputs.x }} + 1 ))", "4\n"),
    ('echo "$(( $(echo {{ inputs.x }}) * 2 ))"', "6\n"),
    ("echo $[ {{ inputs.x }} + 2 ]", "5\n"),
    ("for ((i={{ inputs.x }}; i<4; i++)); do echo $i; done", "3\n"),
    ("read a[{{ inputs.x }}] <<<v; echo ${a[3]}", "v\n"),
    ("printf -v a[{{ inputs.x }}] %s v; echo ${a[3]}", "v\n"),
    ("declare {{ inputs.x }}=1 2>/dev/null || echo refused", "refused\n"),
]


@pytest.mark.parametrize(("script", "expected"), NUMERIC)
def test_an_integer_passes_where_bash_reads_a_number(script: str, expected: str) -> None:
    done = _bash(script, "3")
    assert done.stdout == expected, done.stderr


@pytest.mark.parametrize("value", ["1+1", "a[$(touch {marker})]", "3 ", "x", "", "0x1f", "3\n"])
@pytest.mark.parametrize(("script", "_expected"), NUMERIC)
def test_anything_but_an_integer_is_refused_where_bash_reads_a_number(
    script: str, _expected: str, value: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(TemplateError) as raised:
        _bash(script, value.format(marker=marker))
    assert str(raised.value) == NOT_AN_INTEGER
    assert not marker.exists()


@pytest.mark.parametrize(
    "script",
    ["if [[ {{ inputs.x }} -gt 0 ]]; then echo more; fi", "echo $(( {{ inputs.x }} + 1 ))", "pages[{{ inputs.x }}]=1"],
)
def test_validate_accepts_a_number_it_cannot_check_yet(script: str, tmp_path: Path, cli: Cli) -> None:
    result = _validate(tmp_path, script, cli)
    assert (result.code, result.err) == (0, "")


# Values that stay text: the same words in places bash does not evaluate.
TEXT = [
    ('[[ "{{ inputs.x }}" == "$(echo {{ inputs.x }})" ]] && echo same', "same\n"),
    ('x={{ inputs.x }}; echo "$x"', "{v}\n"),
    ('f() { local x={{ inputs.x }}; echo "$x"; }; f', "{v}\n"),
    ("args=(--t {{ inputs.x }}); printf '%s|' \"${args[@]}\"", "--t|{v}|"),
    ('echo "items[{{ inputs.x }}]"', "items[{v}]\n"),
    ("read -p {{ inputs.x }} v <<<in 2>/dev/null; echo $v", "in\n"),
    ("printf '%s\\n' {{ inputs.x }} 2>&1", "{v}\n"),
    ("bash -s <<<'echo ok'; printf '%s\\n' {{ inputs.x }} | cat", "ok\n{v}\n"),
]


@pytest.mark.parametrize(("script", "expected"), TEXT)
def test_text_values_stay_literal_where_bash_reads_text(script: str, expected: str, tmp_path: Path) -> None:
    value = f"a[$(touch {tmp_path / 'pwned'})] and `id`"
    done = _bash(script, value)
    assert done.stdout == expected.format(v=value), done.stderr
    assert not (tmp_path / "pwned").exists()


# ---- commands that run their arguments as code ---------------------------------------------

CODE = [
    ("eval echo {{ inputs.x }}", "in the arguments of 'eval', which runs them as code"),
    ('bash -c "echo {{ inputs.x }}"', "in a 'bash' command line, which runs its arguments or input as code"),
    ("sh -ec 'echo \"$1\"' sh {{ inputs.x }}", "in a 'sh' command line, which runs its arguments or input as code"),
    ("su nobody -c {{ inputs.x }}", "in the arguments of 'su', which runs them as code"),
    ("trap {{ inputs.x }} EXIT", "in the arguments of 'trap', which runs them as code"),
    ("alias a={{ inputs.x }}", "in the arguments of 'alias', which runs them as code"),
    ("ls | xargs -I{} sh -c {{ inputs.x }}", "in a 'sh' command line, which runs its arguments or input as code"),
    ("find . -exec sh -c {{ inputs.x }} \\;", "in a 'sh' command line, which runs its arguments or input as code"),
    ("timeout 5 /bin/bash -c {{ inputs.x }}", "in a 'bash' command line, which runs its arguments or input as code"),
    ("ssh host {{ inputs.x }}", "in the arguments of 'ssh', which runs them as code"),
    ("sudo -u root bash -c {{ inputs.x }}", "in a 'bash' command line, which runs its arguments or input as code"),
    ("source <(echo {{ inputs.x }})", "in the arguments of 'source', which runs them as code"),
    (". {{ inputs.x }}", "in the arguments of '.', which runs them as code"),
    ("echo {{ inputs.x }} | grep . | bash", "in a 'bash' command line, which runs its arguments or input as code"),
    ("bash <<< {{ inputs.x }}", "in a 'bash' command line, which runs its arguments or input as code"),
    ("python3 -c {{ inputs.x }}", "in a 'python3' command line, which runs its arguments or input as code"),
    ("export PS4={{ inputs.x }}; set -x", "in the value of PS4, which bash expands as code"),
]


@pytest.mark.parametrize(("script", "reason"), CODE)
def test_a_value_given_to_a_command_that_runs_code_is_refused(
    script: str, reason: str, tmp_path: Path, cli: Cli
) -> None:
    with pytest.raises(TemplateError) as raised:
        Expressions({"inputs": {"x": "1"}}).render_script(script)
    suffix = "; pass it through the step's env: and read the variable"
    assert str(raised.value) == f"expression 1 cannot be placed {reason}{suffix}"
    result = _validate(tmp_path, script, cli)
    assert result.code == 2
    assert result.err.endswith(f"steps[0].run: {{{{ inputs.x }}}} cannot be placed {reason}{suffix}\n")


def test_a_script_file_given_to_bash_takes_values_as_data(tmp_path: Path) -> None:
    (tmp_path / "s.sh").write_text('printf "%s\\n" "$1"\n')
    value = f"$(touch {tmp_path / 'pwned'})"
    done = _bash(f"bash {tmp_path / 's.sh'} {{{{ inputs.x }}}}", value)
    assert done.stdout == value + "\n"
    assert not (tmp_path / "pwned").exists()


# ---- comments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("echo issue\\\n#{{ inputs.x }}", "issue#{v}\n"),  # a continuation joins the words
        ("echo label:\\ #{{ inputs.x }}", "label: #{v}\n"),
        ("echo a#{{ inputs.x }}", "a#{v}\n"),
        ("echo a \\\n#{{ inputs.x }}\necho b", "a\nb\n"),  # a real comment
        ("echo c # {{ inputs.x }}\necho d", "c\nd\n"),
    ],
)
def test_a_hash_starts_a_comment_only_where_bash_starts_one(script: str, expected: str, tmp_path: Path) -> None:
    value = f"$(touch {tmp_path / 'pwned'})\ntouch {tmp_path / 'pwned'}"
    done = _bash(script, value)
    assert done.stdout == expected.format(v=value), done.stderr
    assert not (tmp_path / "pwned").exists()


def test_a_value_in_a_comment_is_quoted_and_on_one_line() -> None:
    rendered = Expressions({"inputs": {"x": "$(id)\nid"}}).render_script("# {{ inputs.x }}")
    assert rendered == "# '$(id) id'"
