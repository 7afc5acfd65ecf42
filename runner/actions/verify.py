"""verify: set a project up the way it says (runner/verify/conventions.py), run its checks (tests, lint,
types) in the sandbox and summarise them.

What setup and the checks add to the workspace (node_modules, coverage reports, caches) is removed
afterwards, so it never reaches a commit; what was there before stays. Setup and checks run in one
sandbox and one shell, so what setup installs or exports (PATH, a
virtual environment) is there for every check; each check runs in a subshell of it. A check's
output goes straight to the step's output (the console and `pipe logs`) through `tee`, never
through a log file read back later. Results (exit codes, JUnit XML, the tail of each check's output)
are written into a private host directory mounted at RESULTS and read back with runner/verify/resultsdir.py
(no symlink followed, regular files, bounded), never through $PIPE_OUTPUT: a check whose results
cannot be read is `❌ ... (could not read results: why)`, never a pass or a skip. A check whose tool
is not installed is `⚠️ ... not installed` and fails only with `missing: fail` (the default for tests).

`mode: fail-fast` stops at the first failing required check (the rest are skipped);
`continue-on-error` runs them all. The step fails when a required check failed. Outputs: `ok`,
`markdown` (for a pull request description), `checks` (JSON: name, kind, status, exit_code, counts,
duration, reason) and per check `NAME` (its status), `NAME_counts` (JSON) and `NAME_duration` (s).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Literal

from runner.actions.action import action
from runner.actions.args import parse_args
from runner.actions.base import ActionContext, ActionResult, SandboxRun
from runner.verify.conventions import CACHE, Conventions, conventions
from runner.verify.resultsdir import ResultsDir, ResultsError
from runner.verify.verification import (
    Check,
    CheckResult,
    ResultsUnreadable,
    detect,
    junit_counts,
    markdown,
    output_counts,
)

RESULTS = "/run/pipe-results"
OUTPUT_TAIL = 256 * 1024  # bytes of each check's output kept for its summary line
MAX_JUNIT = 1024**3  # bytes of JUnit XML read (streamed)
CACHE_VARIABLES = {
    "PIP_CACHE_DIR": f"{CACHE}/pip",
    "npm_config_cache": f"{CACHE}/npm",
    "YARN_CACHE_FOLDER": f"{CACHE}/yarn",
    "npm_config_store_dir": f"{CACHE}/pnpm",
    "GOCACHE": f"{CACHE}/go-build",
    "GOMODCACHE": f"{CACHE}/go-mod",
    "CARGO_TARGET_DIR": f"{CACHE}/cargo-target",
}

SCRIPT = r"""set +e
R="$PIPE_RESULTS"
paths() { find . -path ./.git -prune -o -print0 2>/dev/null | LC_ALL=C sort -z; }
paths > /tmp/pipe-before || : > /tmp/pipe-before
tidy() {  # remove what setup and the checks added (node_modules, coverage/, caches), keep the rest
  [ -s /tmp/pipe-before ] || return 0
  paths | LC_ALL=C comm -z -13 /tmp/pipe-before - | xargs -0 -r rm -rf -- 2>/dev/null || :
}
if [ -n "${PIPE_SETUP:-}" ]; then
  echo "::pipe:: setup ($PIPE_SETUP_SOURCE)"
  ( set -e; eval "$PIPE_SETUP"; export -p > /tmp/pipe-setup-env )
  code=$?
  echo "$code" > "$R/setup.status"
  if [ "$code" != 0 ]; then echo "::pipe:: setup failed (exit code $code)"; tidy; exit 0; fi
  . /tmp/pipe-setup-env
fi
i=0
while [ "$i" -lt "$PIPE_CHECKS" ]; do
  eval "command=\$PIPE_CHECK_$i; setup=\${PIPE_CHECK_SETUP_$i:-}; tool=\${PIPE_CHECK_TOOL_$i:-}"
  eval "stop=\$PIPE_CHECK_STOP_$i"
  export PIPE_JUNIT="$R/junit-$i.xml"
  if [ -n "$tool" ] && ! ( eval "$tool" ) > /dev/null 2>&1; then
    echo "::pipe:: check $i: $command: not installed"
    echo missing > "$R/check-$i.status"
    i=$((i + 1))
    if [ "$stop" = missing ]; then break; fi
    continue
  fi
  echo "::pipe:: check $i: $command"
  start=$(date +%s.%N)
  { ( if [ -n "$setup" ]; then eval "$setup" || exit $?; fi; eval "$command" ) < /dev/null 2>&1
    echo "$?" > "/tmp/pipe-code-$i"; } | tee "/tmp/pipe-out-$i"
  end=$(date +%s.%N)
  code=$(cat "/tmp/pipe-code-$i")
  tail -c "$PIPE_OUTPUT_TAIL" "/tmp/pipe-out-$i" > "$R/check-$i.log"
  rm -f "/tmp/pipe-out-$i"
  echo "$code $start $end" > "$R/check-$i.status"
  i=$((i + 1))
  if [ "$code" != 0 ] && [ -n "$stop" ]; then break; fi
done
tidy
"""


@dataclass(frozen=True)
class CheckArgs:
    """One item of `with: checks`: its command (`auto` to detect it) and how it counts."""

    run: str
    name: str = ""
    kind: str = ""
    setup: str = ""
    required: bool = True
    missing: str = ""
    junit: bool = False


@dataclass(frozen=True)
class VerifyArgs:
    """verify's `with:`; `checks` a list of CheckArgs mappings (parsed by the action)."""

    checks: Any
    setup: str = ""
    image: str = ""
    test_command: str = ""
    mode: Literal["fail-fast", "continue-on-error"] = "fail-fast"


def _check_specs(ctx: ActionContext, args: VerifyArgs) -> list[CheckArgs]:
    """`with: checks` parsed (raises ArgumentError naming the item and key)."""
    items = args.checks if isinstance(args.checks, (list, tuple)) else [args.checks]
    return [parse_args(CheckArgs, item, ctx.step_id, f"with.checks[{index}]") for index, item in enumerate(items)]


def _checks(ctx: ActionContext, args: VerifyArgs, found: Conventions) -> list[Check]:
    """The checks to run: each spec's command, or for `auto` the commands the project's AGENTS.md
    names, else those its files show (runner/verify/verification.py); `test-command` replaces the tests'."""
    checks: list[Check] = []
    for index, spec in enumerate(_check_specs(ctx, args)):
        command, kind, required, missing, setup = spec.run.strip(), spec.kind, spec.required, spec.missing, spec.setup
        if command == "auto":
            kinds = (kind,) if kind else ("tests", "lint", "types")
            named = [c for c in found.checks if c.kind in kinds]
            detected = named + [c for c in detect(ctx.workspace, kinds) if c.kind not in {n.kind for n in named}]
            detected.sort(key=lambda c: kinds.index(c.kind))
            if not detected and kind:
                checks.append(Check(spec.name or kind, kind, "", required))
            for one in detected:
                name = spec.name or one.name
                checks.append(Check(name, one.kind, one.command, required, one.junit, one.tool, missing, setup))
        else:
            name = spec.name or kind or f"check{index + 1}"
            checks.append(Check(name, kind or "other", command, required, spec.junit, "", missing, setup))
    test_command = args.test_command.strip()
    if test_command:
        others = [c for c in checks if c.kind != "tests"]
        junit = "$PIPE_JUNIT" in test_command
        checks = [Check("tests", "tests", test_command, True, junit), *others]
    return checks


def _setup(args: VerifyArgs, found: Conventions) -> tuple[str, str]:
    """(script, where it came from): `setup: auto` takes the project's conventions."""
    setup = args.setup.strip()
    if setup == "auto":
        return found.setup, found.source or "nothing to set up"
    return setup, "the pipeline's setup"


def _image(args: VerifyArgs, found: Conventions) -> str | None:
    """The image the checks run in: `with: image`, the project's for `auto`, else the step's (None)."""
    image = args.image.strip()
    if image == "auto":
        return found.image
    return image or None


def _cache(ctx: ActionContext, key: str) -> str | None:
    """The host directory holding dependency downloads for `key`, made for the sandbox user;
    None when the run has no state directory."""
    if not key or ctx.state_dir is None:
        return None
    path = ctx.state_dir.verify_cache(key)
    path.mkdir(parents=True, exist_ok=True)
    uid, gid = ctx.sandbox_user
    if os.geteuid() == 0 and os.lstat(path).st_uid != uid:
        os.lchown(path, uid, gid)
    return str(path)


def _why(ran: SandboxRun) -> str:
    """Why a result is absent, from how the sandbox ended."""
    status = ran.result.status.value
    if status == "succeeded":
        return "no exit status was written"
    detail = f": {ran.result.detail}" if ran.result.detail else ""
    return {"timeout": "the step timed out", "oom": "the sandbox ran out of memory"}.get(status, status + detail)


def _read(results: ResultsDir, index: int, check: Check, ran: SandboxRun) -> CheckResult:
    """One check's result from the results directory; `error` when it cannot be read."""
    try:
        status = results.read(f"check-{index}.status", 4096).decode("ascii", errors="replace").split()
    except ResultsError as problem:
        return CheckResult(check, "error", reason=f"{problem}: {_why(ran)}")
    if status == ["missing"]:
        return CheckResult(check, "missing")
    try:
        code, duration = int(status[0]), round(float(status[2]) - float(status[1]), 3)
    except (IndexError, ValueError):
        return CheckResult(check, "error", reason=f"check-{index}.status is malformed")
    try:
        output = results.tail(f"check-{index}.log", OUTPUT_TAIL).decode("utf-8", errors="replace")
    except ResultsError:
        output = ""
    counts: dict[str, int] = {}
    junit = f"junit-{index}.xml"
    if check.junit or results.exists(junit):
        try:
            with results.open(junit, MAX_JUNIT) as (handle, _):
                counts = junit_counts(handle)
        except (ResultsError, ResultsUnreadable) as problem:
            if code == 0 or results.exists(junit):
                return CheckResult(check, "error", code, duration=duration, reason=str(problem))
    else:
        counts = output_counts(check, output)
    failed = code != 0 or counts.get("failed", 0) > 0 or counts.get("errors", 0) > 0
    if code == 127 and not counts and "not found" in output[-2000:]:
        return CheckResult(check, "missing", code, duration=duration)
    return CheckResult(check, "failed" if failed else "passed", code, counts, duration)


def _outputs(results: list[CheckResult], setup: CheckResult | None) -> dict[str, Any]:
    ok = not any(r.failing for r in results) and (setup is None or setup.status == "passed")
    outputs: dict[str, Any] = {
        "ok": "true" if ok else "false",
        "markdown": markdown(results, setup),
        "checks": json.dumps(
            [
                {
                    "name": r.check.name,
                    "kind": r.check.kind,
                    "status": r.status,
                    "exit_code": r.exit_code,
                    "counts": r.counts,
                    "duration": r.duration,
                    "required": r.check.required,
                    "reason": r.reason,
                }
                for r in results
            ]
        ),
    }
    for r in results:
        outputs[r.check.name] = r.status
        outputs[f"{r.check.name}_counts"] = json.dumps(r.counts)
        outputs[f"{r.check.name}_duration"] = str(r.duration)
    return outputs


@action("verify", VerifyArgs)
def verify(ctx: ActionContext, args: VerifyArgs) -> ActionResult:
    """Set the project up, run its checks and summarise them (see the module docstring)."""
    found = conventions(ctx.workspace, args.image)
    checks = _checks(ctx, args, found)
    mode = args.mode
    setup, source = _setup(args, found)
    image = _image(args, found)
    runnable = [c for c in checks if c.command]
    env = {
        "PIPE_CHECKS": str(len(runnable)),
        "PIPE_RESULTS": RESULTS,
        "PIPE_OUTPUT_TAIL": str(OUTPUT_TAIL),
        "PIPE_SETUP": setup,
        "PIPE_SETUP_SOURCE": source,
    }
    for index, check in enumerate(runnable):
        env[f"PIPE_CHECK_{index}"] = check.command
        env[f"PIPE_CHECK_SETUP_{index}"] = check.setup
        env[f"PIPE_CHECK_TOOL_{index}"] = check.tool
        stop = check.required and mode == "fail-fast"
        env[f"PIPE_CHECK_STOP_{index}"] = ("missing" if check.missing_fails else "failed") if stop else ""
    uid, gid = ctx.sandbox_user
    results = ResultsDir(uid, gid)
    try:
        mounts = [(results.path, RESULTS)]
        compiles = any(re.search(r"\b(go|cargo)\b", c.command) for c in runnable)  # their build caches too
        cache = _cache(ctx, found.cache_key) if setup or compiles else None
        if cache is not None:
            mounts.append((cache, CACHE))
            env.update(CACHE_VARIABLES)
        if image:
            ctx.log(f"verify: image {image}")
        ran: SandboxRun = ctx.run_in_sandbox(SCRIPT, env, tuple(mounts), credentials=False, image=image)
        setup_result = _setup_result(results, ran, source) if setup else None
        read: list[CheckResult] = []
        setup_failed = setup_result is not None and setup_result.status != "passed"
        stopped = setup_failed
        for check in checks:
            if not check.command or stopped:
                why = "setup failed" if setup_failed and check.command else ""
                read.append(CheckResult(check, "skipped", reason=why))
                continue
            result = _read(results, runnable.index(check), check, ran)
            read.append(result)
            stopped = mode == "fail-fast" and result.failing
    finally:
        results.close()
    outputs = _outputs(read, setup_result)
    ctx.log(outputs["markdown"])
    failed = [r.check.name for r in read if r.failing]
    if setup_result is not None and setup_result.status != "passed":
        failed.insert(0, "setup")
    return ActionResult(outputs, error=f"verify: {', '.join(failed)} failed" if failed else None)


def _setup_result(results: ResultsDir, ran: SandboxRun, source: str) -> CheckResult:
    check = Check("setup", "setup", source)
    try:
        code = int(results.read("setup.status", 64).strip() or b"x")
    except ResultsError as problem:
        return CheckResult(check, "error", reason=f"{problem}: {_why(ran)}")
    except ValueError:
        return CheckResult(check, "error", reason="setup.status is malformed")
    return CheckResult(check, "passed" if code == 0 else "failed", code)
