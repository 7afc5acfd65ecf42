"""Red team: forms of a secret a step prints or records that reach the state directory unmasked."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import CliResult
from tests.support.leaks import leaks
from tests.support.pipelines import write_pipeline

Cli = Callable[..., CliResult]

pytestmark = pytest.mark.docker

# A GitHub-token-shaped secret: letters, digits and `_`, so it is also a valid output name.
SECRET = "ghp_R3dTeamS3cretValue0123456789abcdefAB"


def _run(cli: Cli, tmp_path: Path, script: str) -> Path:
    pipeline = write_pipeline(
        tmp_path,
        "version: 1\nname: leak\nsecrets: {MYSECRET: {required: true}}\nsandbox: {network: none}\n"
        'steps:\n  - id: leak\n    env: {MYSECRET: "{{ secrets.MYSECRET }}"}\n    run: |\n'
        + "".join(f"      {line}\n" for line in script.splitlines()),
    )
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"MYSECRET={SECRET}\n")
    secrets.chmod(0o600)
    state = tmp_path / "state"
    result = cli("run", str(pipeline), "--secret-file", str(secrets), "--state-dir", str(state))
    assert result.code in (0, 1), result.out + result.err
    return state


def test_redteam_a_secret_used_as_an_output_name_is_stored_unmasked(cli: Cli, tmp_path: Path) -> None:
    """Outputs are masked by value only: a secret written as an output's *name* lands raw in state.db."""
    state = _run(cli, tmp_path, 'echo "$MYSECRET=1" >> "$PIPE_OUTPUT"')
    assert leaks(state, SECRET) == []


def test_redteam_a_secret_in_wrapped_base64_output_is_not_masked(cli: Cli, tmp_path: Path) -> None:
    """coreutils `base64` wraps at 76 columns; a secret whose encoding crosses a wrap is in the log, recoverable."""
    # 30 bytes before the secret put its encoding across the first line break (column 76).
    state = _run(cli, tmp_path, 'printf "%s%s\\n" "config: user=someone; token=" "$MYSECRET" | base64')
    logs = list((state / "runs").glob("*/logs/leak.1.log"))
    assert logs, "the attempt's log"
    text = logs[0].read_text()
    joined = "".join(re.findall(r"^[A-Za-z0-9+/=]+$", text, re.MULTILINE))
    decoded = base64.b64decode(joined + "=" * (-len(joined) % 4)).decode(errors="replace")
    assert SECRET not in decoded, f"the log holds the secret, base64 across two lines:\n{text}"
