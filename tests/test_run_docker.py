"""`pipe run` for real: steps in Docker sandboxes, outputs, retries, timeouts, hardening, masking,
cancellation. Every step here takes milliseconds, so the suite stays fast."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from runner.store import RunRecord, Store
from tests.support.cli import Cli, CliResult
from tests.support.pipelines import containers_left, write_pipeline
from tests.support.records import present

pytestmark = pytest.mark.docker


def run(cli: Cli, tmp_path: Path, text: str, *args: str) -> tuple[CliResult, Store, RunRecord]:
    path = write_pipeline(tmp_path, text)
    result = cli("run", str(path), "--state-dir", str(tmp_path / "state"), *args)
    store = Store(tmp_path / "state")
    return result, store, store.run("latest")


def test_five_steps_pass_outputs_including_multiline(cli: Cli, tmp_path: Path) -> None:
    result, store, record = run(
        cli,
        tmp_path,
        """\
        version: 1
        name: five
        steps:
          - id: one
            run: echo "n=1" >> "$PIPE_OUTPUT"
          - id: two
            run: |
              n={{ steps.one.outputs.n }}
              echo "n=$((n + 1))" >> "$PIPE_OUTPUT"
              printf 'text<<END\\nfirst line\\nsecond line\\nEND\\n' >> "$PIPE_OUTPUT"
          - id: three
            run: |
              text={{ steps.two.outputs.text }}
              echo "lines=$(printf '%s\\n' "$text" | wc -l)" >> "$PIPE_OUTPUT"
          - id: four
            env: {TOTAL: "{{ steps.two.outputs.n | int + steps.three.outputs.lines | int }}"}
            run: echo "total=$TOTAL" >> "$PIPE_OUTPUT"
          - id: five
            run: test {{ steps.four.outputs.total }} = 4 && echo "all good"
        """,
    )
    assert result.code == 0, result.out + result.err
    assert record.status == "succeeded"
    steps = {s.step_id: s for s in store.steps(record.id)}
    assert steps["two"].outputs == {"n": "2", "text": "first line\nsecond line"}
    assert steps["three"].outputs == {"lines": "2"}
    assert steps["four"].outputs == {"total": "4"}
    assert "five | all good" in result.out
    shown = subprocess.run(
        [sys.executable, "-m", "runner", "show", record.id, "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for step_id in ("one", "two", "three", "four", "five"):
        assert f"{step_id}: outcome success, conclusion success, 1 attempt(s)" in shown
    assert shown.count("attempt 1: succeeded, exit code 0") == 5
    attempts = store.attempts(record.id)
    assert all(a.exit_code == 0 and a.finished_at and a.finished_at >= a.started_at for a in attempts)
    assert containers_left("pipe.run", record.id) == []


def test_retry_succeeds_on_third_attempt_with_backoff(cli: Cli, tmp_path: Path) -> None:
    result, store, record = run(
        cli,
        tmp_path,
        """\
        version: 1
        name: flaky
        steps:
          - id: flaky
            retry: {attempts: 4, backoff: {initial: 0.4s, factor: 2}}
            run: |
              count=$(cat tries 2>/dev/null || echo 0)
              echo $((count + 1)) > tries
              echo "try $((count + 1)), attempt $PIPE_ATTEMPT"
              [ "$count" -ge 2 ]
        """,
    )
    assert result.code == 0, result.out + result.err
    attempts = store.attempts(record.id)
    assert [(a.number, a.status, a.exit_code) for a in attempts] == [
        (1, "failed", 1),
        (2, "failed", 1),
        (3, "succeeded", 0),
    ]
    gaps = [attempts[i + 1].started_at - present(attempts[i].finished_at) for i in range(2)]
    assert gaps[0] >= 0.4 and gaps[1] >= 0.8, gaps
    assert store.steps(record.id)[0].attempts == 3


def test_retry_only_on_listed_exit_codes(cli: Cli, tmp_path: Path) -> None:
    result, store, record = run(
        cli,
        tmp_path,
        """\
        version: 1
        name: codes
        steps:
          - id: no-retry
            retry: {attempts: 3, backoff: {initial: 0.1s}, on: [75]}
            run: exit 3
        """,
    )
    assert result.code == 1
    assert [a.exit_code for a in store.attempts(record.id)] == [3]


def test_timeout_kills_the_step_and_leaves_no_container(cli: Cli, tmp_path: Path) -> None:
    started = time.monotonic()
    result, store, record = run(
        cli,
        tmp_path,
        """\
        version: 1
        name: slow
        steps:
          - id: slow
            timeout: 2s
            run: sleep 600
          - id: after
            if: always()
            run: echo after
        """,
    )
    elapsed = time.monotonic() - started
    assert result.code == 1
    attempt = store.attempts(record.id)[0]
    assert (attempt.status, attempt.error) == ("timeout", "timed out after 2s")
    assert 2.0 <= present(attempt.finished_at) - attempt.started_at < 10
    assert elapsed < 30
    assert "after | after" in result.out
    assert containers_left("pipe.run", record.id) == []


def test_continue_on_error_and_failure_conditions(cli: Cli, tmp_path: Path) -> None:
    result, store, record = run(
        cli,
        tmp_path,
        """\
        version: 1
        name: outcomes
        steps:
          - id: soft
            continue-on-error: true
            run: exit 4
          - id: check
            run: test {{ steps.soft.outcome }} = failure && test {{ steps.soft.conclusion }} = success
          - id: hard
            run: exit 5
          - id: skipped
            run: echo never
          - id: cleanup
            if: failure()
            run: echo "failed at {{ run.failed_step }}"
        """,
    )
    assert result.code == 1
    steps = {s.step_id: (s.outcome, s.conclusion) for s in store.steps(record.id)}
    assert steps == {
        "soft": ("failure", "success"),
        "check": ("success", "success"),
        "hard": ("failure", "failure"),
        "skipped": ("skipped", "skipped"),
        "cleanup": ("success", "success"),
    }
    assert "cleanup | failed at hard" in result.out
    assert record.status == "failed"


def test_sandbox_is_hardened(cli: Cli, tmp_path: Path) -> None:
    result, store, record = run(
        cli,
        tmp_path,
        """\
        version: 1
        name: hardened
        sandbox: {network: none, pids: 64, memory: 128m}
        steps:
          - id: identity
            run: |
              echo "uid=$(id -u)" >> "$PIPE_OUTPUT"
              echo "capeff=$(awk '/^CapEff/ {print $2}' /proc/self/status)" >> "$PIPE_OUTPUT"
              echo "nnp=$(awk '/^NoNewPrivs/ {print $2}' /proc/self/status)" >> "$PIPE_OUTPUT"
              echo "socket=$(test -e /var/run/docker.sock && echo present || echo absent)" >> "$PIPE_OUTPUT"
          - id: network
            run: |
              if curl -sS -m 3 -o /dev/null http://1.1.1.1/ 2>/dev/null; then reached=yes; else reached=no; fi
              echo "reached=$reached" >> "$PIPE_OUTPUT"
              echo "routes=$(tail -n +2 /proc/net/route | wc -l)" >> "$PIPE_OUTPUT"
          - id: forks
            run: |
              python3 - <<'EOF' >> "$PIPE_OUTPUT"
              import os, signal, time
              children = []
              try:
                  while len(children) < 1000:
                      pid = os.fork()
                      if pid == 0:
                          time.sleep(30)
                          os._exit(0)
                      children.append(pid)
                  print("refused=no")
              except OSError as error:
                  print(f"refused=yes after {len(children)}")
              for pid in children:
                  os.kill(pid, signal.SIGKILL)
              EOF
          - id: memory
            continue-on-error: true
            run: python3 -c "blocks = [bytearray(16 * 1024 * 1024) for _ in range(64)]"
          - id: readonly
            sandbox: {read-only: true}
            run: |
              if touch /should-fail 2>/dev/null; then root=writable; else root=read-only; fi
              echo "root=$root" >> "$PIPE_OUTPUT"
              touch /tmp/fine && echo "tmp=writable" >> "$PIPE_OUTPUT"
        """,
    )
    assert result.code == 0, result.out + result.err
    steps = {s.step_id: s for s in store.steps(record.id)}
    identity = steps["identity"].outputs
    assert identity["uid"] != "0"
    assert identity["capeff"] == "0000000000000000"
    assert identity["nnp"] == "1"
    assert identity["socket"] == "absent"
    assert steps["network"].outputs == {"reached": "no", "routes": "0"}
    refused = steps["forks"].outputs["refused"]
    assert refused.startswith("yes after ") and int(refused.split()[-1]) < 64
    assert (steps["memory"].outcome, steps["memory"].conclusion) == ("failure", "success")
    memory_attempt = next(a for a in store.attempts(record.id) if a.step_id == "memory")
    assert memory_attempt.status == "oom"
    assert memory_attempt.error == "killed: out of memory (limit 134217728 bytes)"
    assert steps["readonly"].outputs == {"root": "read-only", "tmp": "writable"}


def test_credentials_reach_only_allowed_steps(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_OnlyForAllowedSteps123")
    monkeypatch.setenv("GITHUB_REPOSITORY", "octo/demo")
    result, _, _ = run(
        cli,
        tmp_path,
        """\
        version: 1
        name: creds
        credentials: [github]
        steps:
          - id: allowed
            run: |
              test -n "$GITHUB_TOKEN" && test "$GH_TOKEN" = "$GITHUB_TOKEN"
              echo "repo=$GITHUB_REPOSITORY api=$GITHUB_API_URL server=$GITHUB_SERVER_URL"
          - id: denied
            credentials: []
            run: |
              echo "token=${GITHUB_TOKEN:-none} gh=${GH_TOKEN:-none}"
        """,
    )
    assert result.code == 0, result.out + result.err
    assert "allowed | repo=octo/demo api=https://api.github.com server=https://github.com" in result.out
    assert "denied | token=none gh=none" in result.out


def test_token_is_masked_in_console_logs_and_store(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "ghp_Zq8/Secret+Token=Value 42"
    monkeypatch.setenv("GITHUB_TOKEN", token)
    monkeypatch.setenv("API_KEY", "multi line secret first\nsecond secret line")
    result, store, record = run(
        cli,
        tmp_path,
        """\
        version: 1
        name: leak
        credentials: [github]
        secrets: {API_KEY: {}}
        steps:
          - id: leak
            env: {API_KEY: "{{ secrets.API_KEY }}"}
            run: |
              echo "plain: $GITHUB_TOKEN"
              echo "base64: $(printf '%s' "$GITHUB_TOKEN" | base64 -w0)"
              echo "base64 with newline: $(echo "$GITHUB_TOKEN" | base64 -w0)"
              quote='import os, urllib.parse; print(urllib.parse.quote(os.environ["GITHUB_TOKEN"], safe=""))'
              echo "url: $(python3 -c "$quote")"
              echo "$API_KEY"
              echo "leaked=$GITHUB_TOKEN" >> "$PIPE_OUTPUT"
              exit 3
        """,
    )
    assert result.code == 1
    forms = [
        token,
        base64.b64encode(token.encode()).decode(),
        base64.b64encode((token + "\n").encode()).decode()[:-4],
        urllib.parse.quote(token, safe=""),
        "multi line secret first",
        "second secret line",
    ]
    logs = "".join(p.read_text() for p in (tmp_path / "state").rglob("*.log"))
    for form in forms:
        assert form not in result.out, form
        assert form not in logs, form
        for path in (tmp_path / "state").rglob("*"):
            if path.is_file():
                assert form.encode() not in path.read_bytes(), (form, path)
    assert "leak | plain: ***" in result.out
    assert store.steps(record.id)[0].outputs == {"leaked": "***"}


def test_sigint_cancels_the_run_and_removes_its_container(tmp_path: Path) -> None:
    path = write_pipeline(
        tmp_path,
        """\
        version: 1
        name: interrupted
        steps:
          - id: long
            run: echo started; sleep 600
          - id: never
            run: echo never
        """,
    )
    state = tmp_path / "state"
    with subprocess.Popen(
        [sys.executable, "-m", "runner", "run", str(path), "--state-dir", str(state), "--json"],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        for line in process.stdout:
            if json.loads(line).get("line") == "started":
                break
            assert time.monotonic() < deadline
        process.send_signal(signal.SIGINT)
        remaining = process.stdout.read()
        assert process.wait(timeout=60) == 130
    store = Store(state)
    record = store.run("latest")
    assert record.status == "cancelled"
    assert [a.status for a in store.attempts(record.id)] == ["cancelled"]
    assert '"event": "run_finished"' in remaining
    assert containers_left("pipe.run", record.id) == []


def test_missing_engine_is_exit_4(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    path = write_pipeline(tmp_path, "version: 1\nname: t\nsteps:\n  - id: a\n    run: echo\n")
    result = cli("run", str(path), "--state-dir", str(tmp_path / "state"))
    assert result.code == 4
    assert result.err.startswith(f"the Docker engine at unix://{tmp_path}/no-such.sock does not answer")
    assert "DOCKER_HOST" in result.err
