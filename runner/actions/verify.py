"""verify: run a project's checks (tests, lint, types) in the sandbox and summarise them.

Setup and checks run in one sandbox and one shell, so what setup installs or exports (PATH, a
virtual environment) is there for every check; each check runs in a subshell of it. `mode:
fail-fast` stops at the first failing required check (the rest are skipped); `continue-on-error`
runs them all. The step fails when a required check failed. Outputs: `ok`, `markdown` (for a pull
request description), `checks` (JSON: name, kind, status, exit_code, counts, duration) and per check
`NAME` (its status), `NAME_counts` (JSON) and `NAME_duration` (seconds).
"""

from __future__ import annotations

import json
from typing import Any

from runner.actions import ActionContext, ActionResult
from runner.verification import JUNIT, Check, CheckResult, detect, markdown, parse_counts

LOG_LINES = 400

SCRIPT = r"""set +e
if [ -n "${PIPE_SETUP:-}" ]; then
  echo "::pipe:: setup: $PIPE_SETUP"
  eval "$PIPE_SETUP"
  status=$?
  if [ "$status" != 0 ]; then echo "setup_failed=true" >> "$PIPE_OUTPUT"; exit 0; fi
fi
i=0
while [ "$i" -lt "$PIPE_CHECKS" ]; do
  eval "command=\$PIPE_CHECK_$i; setup=\${PIPE_CHECK_SETUP_$i:-}; required=\$PIPE_CHECK_REQUIRED_$i"
  echo "::pipe:: check $i: $command"
  rm -f "$PIPE_JUNIT"
  start=$(date +%s.%N)
  ( if [ -n "$setup" ]; then eval "$setup" || exit $?; fi; eval "$command" ) \
    < /dev/null > "/tmp/pipe-check-$i.log" 2>&1 &
  tail -f --pid=$! "/tmp/pipe-check-$i.log" 2>/dev/null
  wait $!; echo $? > "/tmp/pipe-code-$i"
  code=$(cat "/tmp/pipe-code-$i")
  end=$(date +%s.%N)
  {
    echo "check_${i}_code=$code"
    echo "check_${i}_start=$start"
    echo "check_${i}_end=$end"
    echo "check_${i}_log<<PIPE_EOF_$i"; tail -n "$PIPE_LOG_LINES" "/tmp/pipe-check-$i.log"; echo; echo "PIPE_EOF_$i"
    if [ -f "$PIPE_JUNIT" ]; then echo "check_${i}_junit<<PIPE_EOF_$i"; cat "$PIPE_JUNIT"; echo; echo "PIPE_EOF_$i"; fi
  } >> "$PIPE_OUTPUT"
  i=$((i + 1))
  if [ "$code" != 0 ] && [ "$required" = true ] && [ "$PIPE_MODE" = fail-fast ]; then break; fi
done
"""


def _checks(ctx: ActionContext) -> list[Check]:
    checks: list[Check] = []
    for index, spec in enumerate(ctx.args.get("checks") or []):
        command = str(spec["run"]).strip()
        kind = str(spec.get("kind") or "")
        required = bool(spec.get("required", True))
        if command == "auto":
            detected = detect(ctx.workspace, (kind,) if kind else ("tests", "lint", "types"))
            if not detected and kind:
                checks.append(Check(str(spec.get("name") or kind), kind, "", required))
            for found in detected:
                checks.append(
                    Check(str(spec.get("name") or found.name), found.kind, found.command, required, found.junit)
                )
        else:
            name = str(spec.get("name") or kind or f"check{index + 1}")
            checks.append(Check(name, kind or "other", command, required))
    return checks


def verify(ctx: ActionContext) -> ActionResult:
    checks = _checks(ctx)
    mode = str(ctx.args.get("mode") or "fail-fast")
    runnable = [c for c in checks if c.command]
    env = {
        "PIPE_CHECKS": str(len(runnable)),
        "PIPE_MODE": mode,
        "PIPE_JUNIT": JUNIT,
        "PIPE_LOG_LINES": str(LOG_LINES),
        "PIPE_SETUP": str(ctx.args.get("setup") or ""),
    }
    specs = {c.name: s for c in checks for s in ctx.args.get("checks") or [] if (s.get("name") or "") == c.name}
    for index, check in enumerate(runnable):
        env[f"PIPE_CHECK_{index}"] = check.command
        env[f"PIPE_CHECK_SETUP_{index}"] = str((specs.get(check.name) or {}).get("setup") or "")
        env[f"PIPE_CHECK_REQUIRED_{index}"] = "true" if check.required else "false"
    ran = ctx.run_in_sandbox(SCRIPT, env, ())
    if ran.output_error is not None:  # never a pass or a skip when the results cannot be read
        return ActionResult(
            {"ok": "false", "markdown": f"## Verification\n❌ could not read the results: {ran.output_error}"},
            error=f"verify: could not read the results: {ran.output_error}",
        )
    outputs = ran.outputs
    if outputs.get("setup_failed") == "true":
        return ActionResult(
            {"ok": "false", "markdown": "## Verification\n❌ Setup failed"},
            error=f"verify: setup failed: {ctx.args.get('setup')}",
        )
    results: list[CheckResult] = []
    for check in checks:
        if not check.command:
            results.append(CheckResult(check, "skipped"))
            continue
        index = runnable.index(check)
        if f"check_{index}_code" not in outputs:
            results.append(CheckResult(check, "skipped"))
            continue
        code = int(outputs[f"check_{index}_code"])
        duration = float(outputs[f"check_{index}_end"]) - float(outputs[f"check_{index}_start"])
        counts = parse_counts(check, outputs.get(f"check_{index}_log", ""), outputs.get(f"check_{index}_junit"))
        results.append(CheckResult(check, "passed" if code == 0 else "failed", code, counts, round(duration, 3)))
    ok = all(r.status != "failed" for r in results if r.check.required)
    result_outputs: dict[str, Any] = {
        "ok": "true" if ok else "false",
        "markdown": markdown(results),
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
                }
                for r in results
            ]
        ),
    }
    for r in results:
        result_outputs[r.check.name] = r.status
        result_outputs[f"{r.check.name}_counts"] = json.dumps(r.counts)
        result_outputs[f"{r.check.name}_duration"] = str(r.duration)
    ctx.log(result_outputs["markdown"])
    failed = [r.check.name for r in results if r.status == "failed" and r.check.required]
    error = f"verify: {', '.join(failed)} failed" if failed else None
    return ActionResult(result_outputs, error=error)
