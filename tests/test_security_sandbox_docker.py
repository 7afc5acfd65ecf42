"""Attacks on the boundary between a sandbox and the host, run for real: a step that tries to make
the host read its files through the control channel, to exhaust its memory, to find credentials in
the container's configuration, and a runner killed mid-step that must leave no secret on disk and
resume cleanly. Each of these was seen to work against an earlier version of pipe."""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.store import Store
from tests.support.cli import Cli
from tests.support.leaks import leaks
from tests.support.pipelines import containers_left, write_pipeline
from tests.support.records import present

pytestmark = pytest.mark.docker

PIPE = [sys.executable, "-m", "runner"]


def _host_secret(tmp_path: Path) -> tuple[Path, str]:
    """A root-only file on the host whose content a step must never see."""
    secret = "host-only-" + os.urandom(12).hex()
    path = tmp_path / "host-secret.txt"
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return path, secret


def test_a_step_cannot_make_the_host_read_a_host_file_through_the_channel(cli: Cli, tmp_path: Path) -> None:
    host_file, secret = _host_secret(tmp_path)
    path = write_pipeline(
        tmp_path,
        f"""\
        version: 1
        name: swap-channel
        steps:
          - id: swap
            run: |
              for dir in /pipe /run/pipe; do
                for name in log status output result go env script; do
                  rm -f "$dir/$name" 2>/dev/null || true
                  ln -sf {host_file} "$dir/$name" 2>/dev/null || true
                done
              done
              echo swapped
          - id: after
            run: echo after
        """,
    )
    state = tmp_path / "state"
    result = cli("run", str(path), "--state-dir", str(state))
    assert secret not in result.out + result.err
    assert leaks(state, secret) == []
    record = Store(state).run("latest")
    assert "swapped" in result.out and "after | after" in result.out, result.out + result.err
    assert record.status == "succeeded"


def test_a_channel_pointed_at_dev_zero_does_not_exhaust_the_host(tmp_path: Path) -> None:
    path = write_pipeline(
        tmp_path,
        """\
        version: 1
        name: zero
        steps:
          - id: zero
            run: |
              for dir in /pipe /run/pipe; do
                for name in log status output result; do
                  rm -f "$dir/$name" 2>/dev/null || true
                  ln -sf /dev/zero "$dir/$name" 2>/dev/null || true
                done
              done
              echo "x=1" >> "$PIPE_OUTPUT" || true
        """,
    )

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))

    done = subprocess.run(  # noqa: PLW1510 (the exit code is asserted)
        [*PIPE, "run", str(path), "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_memory,
    )
    assert "MemoryError" not in done.stderr and "bug in pipe" not in done.stderr, done.stderr[-2000:]
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]
    record = Store(tmp_path / "state").run("latest")
    assert record.status in ("succeeded", "failed")
    assert all(a.status != "running" for a in Store(tmp_path / "state").attempts(record.id))


# Runs argv[2:], then writes the peak RSS (KiB) of what it ran to the file argv[1]; exits with its code.
PEAK_RSS = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(code)"
)


def test_output_is_cut_at_the_log_limit_with_a_marker_and_memory_stays_bounded(tmp_path: Path) -> None:
    path = write_pipeline(
        tmp_path,
        """\
        version: 1
        name: flood
        steps:
          - id: flood
            run: head -c 200000000 /dev/zero | tr '\\0' 'a'; echo; echo the end
        """,
    )
    state = tmp_path / "state"
    errors, peak = tmp_path / "stderr", tmp_path / "peak"
    with errors.open("wb") as stderr:
        # pipe's own peak, measured by a small parent of its own: a child forked from this test
        # process starts with this process's resident pages, which would count as its peak
        done = subprocess.run(  # noqa: PLW1510 (the exit code is asserted)
            [sys.executable, "-c", PEAK_RSS, str(peak), *PIPE, "run", str(path), "--state-dir", str(state)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            timeout=300,
            env={**os.environ, "PIPE_MAX_LOG": str(8 * 1024**2)},
        )
    peak_kib = int(peak.read_text())
    assert done.returncode == 0, errors.read_text(errors="replace")[-2000:]
    store = Store(state)
    attempt = store.attempts(store.run("latest").id)[0]
    log = Path(present(attempt.log_path, "log path"))
    assert log.stat().st_size < 8 * 1024**2 + 64 * 1024
    assert b"[pipe: output cut at 8388608 bytes; the rest was discarded]" in log.read_bytes()[-4096:]
    assert peak_kib < 300 * 1024, f"pipe's peak RSS was {peak_kib // 1024} MiB (200 MB were written)"


def test_credentials_never_appear_in_the_containers_configuration(tmp_path: Path) -> None:
    secret = "s3cr3t-" + os.urandom(12).hex()
    secret_file = tmp_path / "secrets.env"
    secret_file.write_text(f"TOKEN={secret}\n")
    path = write_pipeline(
        tmp_path,
        """\
        version: 1
        name: inspect
        secrets:
          TOKEN: {required: true}
        env:
          FROM_PIPELINE: "{{ secrets.TOKEN }}"
        steps:
          - id: wait
            run: sleep 3
          - id: use
            env: {FROM_STEP: "{{ secrets.TOKEN }}"}
            run: |
              test -n "$FROM_PIPELINE" && test "$FROM_PIPELINE" = "$FROM_STEP"
              printf '%s' "$FROM_STEP" | sha256sum
        """,
    )
    seen: list[str] = []
    stop = threading.Event()

    def inspect_containers() -> None:
        import docker

        client = docker.from_env()
        try:
            while not stop.is_set():
                for container in client.containers.list(
                    all=True, filters={"label": "pipe.pipeline=inspect"}, ignore_removed=True
                ):
                    try:
                        config = container.attrs["Config"]
                    except Exception:
                        continue
                    seen.append("\n".join(config.get("Env") or []) + "\n" + " ".join(config.get("Cmd") or []))
                time.sleep(0.2)
        finally:
            client.close()

    watcher = threading.Thread(target=inspect_containers)
    watcher.start()
    try:
        done = subprocess.run(  # noqa: PLW1510 (the exit code is asserted)
            [*PIPE, "run", str(path), "--state-dir", str(tmp_path / "state"), "--secret-file", str(secret_file)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        stop.set()
        watcher.join()
    assert done.returncode == 0, done.stdout + done.stderr
    import hashlib

    assert hashlib.sha256(secret.encode()).hexdigest() in done.stdout
    assert seen, "no container was seen while the run went on"
    assert not [config for config in seen if secret in config]
    assert any("PIPE_WORKDIR=" in config for config in seen)


def _wait_for(predicate: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGTERM])
def test_a_runner_killed_mid_step_leaves_no_secret_on_disk_and_resumes(tmp_path: Path, signal_number: int) -> None:
    secret = "k1ll-" + os.urandom(12).hex()
    secret_file = tmp_path / "secrets.env"
    secret_file.write_text(f"TOKEN={secret}\n")
    path = write_pipeline(
        tmp_path,
        """\
        version: 1
        name: killed
        secrets:
          TOKEN: {required: true}
        steps:
          - id: first
            run: |
              echo "the token is {{ secrets.TOKEN }}"
              echo "started $PIPE_ATTEMPT"
              if [ "$PIPE_ATTEMPT" = 1 ]; then sleep 60; fi
              echo "file" > made-by-first.txt
          - id: second
            run: echo "second saw $(cat made-by-first.txt)"
        """,
    )
    state = tmp_path / "state"
    process = subprocess.Popen(
        [*PIPE, "run", str(path), "--state-dir", str(state), "--secret-file", str(secret_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    output = process.stdout
    assert output is not None
    reader = threading.Thread(target=lambda: seen.extend(output))
    reader.start()
    _wait_for(lambda: any("started 1" in line for line in seen), 90)
    process.send_signal(signal_number)
    process.wait(timeout=60)
    reader.join(timeout=10)
    output.close()
    assert leaks(state, secret) == [], "a secret survived on disk after the runner died"
    done = subprocess.run(  # noqa: PLW1510 (the exit code is asserted)
        [*PIPE, "resume", "latest", "--state-dir", str(state), "--secret-file", str(secret_file)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "second saw file" in done.stdout
    store = Store(state)
    record = store.run("latest")
    assert record.status == "succeeded"
    assert all(a.status != "running" for a in store.attempts(record.id))
    assert leaks(state, secret) == []
    assert containers_left("pipe.run", record.id) == []
    assert re.search(r"the token is \*\*\*", Path(present(store.attempts(record.id)[-2].log_path)).read_text())


def _first_certificate() -> str:
    bundle = Path("/etc/ssl/certs/ca-certificates.crt").read_text()
    match = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n", bundle, re.DOTALL)
    assert match
    return match.group(0)


def test_a_pipeline_cannot_name_a_host_file_to_mount(cli: Cli, tmp_path: Path) -> None:
    path = write_pipeline(
        tmp_path,
        """\
        version: 1
        name: steal
        sandbox: {ca-bundle: /root/.ssh/id_rsa}
        steps:
          - id: read
            run: cat /etc/pipe/ca-bundle.crt
        """,
    )
    result = cli("validate", str(path))
    assert result.code == 2
    assert (
        f"{path}:3:22: sandbox.ca-bundle: a pipeline cannot name a host file; give the CA bundle to "
        "`pipe run --ca-bundle FILE` (or PIPE_CA_BUNDLE) instead"
    ) in result.err + result.out


def test_the_ca_bundle_is_checked_and_only_its_certificates_are_copied_in(cli: Cli, tmp_path: Path) -> None:
    key = (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
    )
    path = write_pipeline(
        tmp_path,
        """\
        version: 1
        name: ca
        steps:
          - id: look
            run: |
              grep -c 'BEGIN CERTIFICATE' "$SSL_CERT_FILE"
              if grep -q PRIVATE "$SSL_CERT_FILE"; then echo "key leaked"; exit 1; fi
              python3 -c "import ssl, os; ssl.create_default_context(cafile=os.environ['SSL_CERT_FILE']); print('ok')"
        """,
    )
    state = tmp_path / "state"
    not_pem = tmp_path / "id_rsa"
    not_pem.write_text(key)
    refused = cli("run", str(path), "--state-dir", str(state), "--ca-bundle", str(not_pem))
    assert refused.code == 2
    assert f"CA bundle {not_pem}: no PEM certificate in it" in refused.err
    assert not (state / "ca").exists() or not list((state / "ca").iterdir())
    bundle = tmp_path / "corporate.pem"
    bundle.write_text(_first_certificate() + key)
    result = cli("run", str(path), "--state-dir", str(state), "--ca-bundle", str(bundle))
    assert result.code == 0, result.out + result.err
    assert "look | 1" in result.out and "look | ok" in result.out
