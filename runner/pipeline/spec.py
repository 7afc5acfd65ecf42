"""Loading a pipeline file: safe YAML, schema and semantic validation, typed records.

`load_pipeline` is the only way a pipeline enters pipe; past it nothing handles raw dicts.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

from runner.errors import Diagnostic, ValidationFailed
from runner.pipeline import yamlsafe
from runner.pipeline.egress import from_network, parse_policy
from runner.pipeline.expressions import to_text
from runner.pipeline.model import (
    Backoff,
    Concurrency,
    Input,
    IssueCommentReport,
    OnFailure,
    Pipeline,
    Repeat,
    Report,
    RetryPolicy,
    SandboxSettings,
    Secret,
    Step,
    ThreadBinding,
    WebhookReport,
    frozen_mapping,
)
from runner.pipeline.validation import check_schema, check_semantics, format_path
from runner.units import parse_duration, parse_size


def load_pipeline(path: str | os.PathLike[str]) -> Pipeline:
    """Read, validate and build the pipeline at `path`.

    Raises ValidationFailed carrying every problem (file:line:col: key.path: message); a file over
    yamlsafe.MAX_FILE_BYTES is refused before it is read. OSError propagates for unreadable files.
    """
    return parse_pipeline(_read(path), str(path))


def _read(path: str | os.PathLike[str]) -> bytes:
    size = os.stat(path).st_size
    if size > yamlsafe.MAX_FILE_BYTES:
        message = f"file is {size} bytes; the limit is {yamlsafe.MAX_FILE_BYTES} bytes"
        raise ValidationFailed([Diagnostic(str(path), 1, 1, "", message)])
    with open(path, "rb") as handle:
        return handle.read(yamlsafe.MAX_FILE_BYTES + 1)


def parse_pipeline(raw: bytes, file: str) -> Pipeline:
    """Validate and build a pipeline from the bytes of a file named `file` (for messages)."""
    if len(raw) > yamlsafe.MAX_FILE_BYTES:
        message = f"file is {len(raw)} bytes; the limit is {yamlsafe.MAX_FILE_BYTES} bytes"
        raise ValidationFailed([Diagnostic(file, 1, 1, "", message)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValidationFailed([Diagnostic(file, 1, 1, "", f"not UTF-8 text ({error.reason})")]) from None
    try:
        doc = yamlsafe.load(text)
    except yamlsafe.LoadError as error:
        raise ValidationFailed(
            [Diagnostic(file, p.mark.line, p.mark.column, format_path(p.path), p.message) for p in error.problems]
        ) from None
    if not isinstance(doc.data, dict):
        raise ValidationFailed([Diagnostic(file, 1, 1, "", "a pipeline must be a mapping")])
    problems = check_schema(file, doc) + check_semantics(file, doc)
    if problems:
        raise ValidationFailed(problems)
    return _build_pipeline(doc, file, text, hashlib.sha256(raw).hexdigest())


def _build_pipeline(doc: yamlsafe.Document, file: str, text: str, digest: str) -> Pipeline:
    data: dict[str, Any] = doc.data
    concurrency = data.get("concurrency")
    if isinstance(concurrency, str):
        concurrency = {"group": concurrency}
    report = data.get("report", {})
    on_failure = data.get("on-failure", {})
    return Pipeline(
        version=data["version"],
        name=data["name"],
        description=data.get("description", ""),
        steps=tuple(_build_step(s, doc, ("steps", i)) for i, s in enumerate(data["steps"])),
        path=file,
        source=text,
        digest=digest,
        inputs=tuple(
            Input(
                name=name,
                type=spec.get("type", "string"),
                required=spec.get("required", False),
                default=spec.get("default"),
                enum=tuple(spec["enum"]) if "enum" in spec else None,
                description=spec.get("description", ""),
            )
            for name, spec in data.get("inputs", {}).items()
        ),
        env=_env(data.get("env")),
        secrets=tuple(
            Secret(name, spec.get("description", ""), spec.get("required", True))
            for name, spec in data.get("secrets", {}).items()
        ),
        sandbox=_sandbox(data.get("sandbox")) or SandboxSettings(),
        credentials=tuple(data.get("credentials", ())),
        concurrency=Concurrency(concurrency["group"], concurrency.get("if-running", "wait")) if concurrency else None,
        on_failure=OnFailure(on_failure.get("rollback", "none"), on_failure.get("steps")),
        report=Report(
            issue_comment=IssueCommentReport(
                report["issue-comment"]["issue"], _duration(report["issue-comment"].get("interval"), 10.0)
            )
            if "issue-comment" in report
            else None,
            webhook=WebhookReport(report["webhook"]["url"], _duration(report["webhook"].get("interval"), 10.0))
            if "webhook" in report
            else None,
        ),
        thread=_thread(data.get("thread")),
    )


def _thread(data: Mapping[str, Any] | None) -> ThreadBinding | None:
    if data is None:
        return None
    return ThreadBinding(data["repo"], data.get("issue"), data.get("pull-request"), data.get("instructions"))


def _duration(value: Any, default: float) -> float:
    return default if value is None else parse_duration(value)


def _env(values: Mapping[str, Any] | None) -> Mapping[str, str]:
    return frozen_mapping({k: to_text(v) for k, v in (values or {}).items()})


def _sandbox(data: Mapping[str, Any] | None) -> SandboxSettings | None:
    if data is None:
        return None
    egress = parse_policy(data["egress"]) if "egress" in data else None
    if egress is None and "network" in data:
        egress = from_network(data["network"])  # the short form
    return SandboxSettings(
        image=data.get("image"),
        network=egress.network if egress else None,
        egress=egress,
        memory=parse_size(data["memory"]) if "memory" in data else None,
        cpus=float(data["cpus"]) if "cpus" in data else None,
        pids=data.get("pids"),
        timeout=parse_duration(data["timeout"]) if "timeout" in data else None,
        read_only=data.get("read-only"),
        workdir=data.get("workdir"),
        runtime=data.get("runtime"),
    )


def _retry(data: Mapping[str, Any] | None) -> RetryPolicy:
    if data is None:
        return RetryPolicy()
    backoff = data.get("backoff", {})
    return RetryPolicy(
        attempts=data["attempts"],
        backoff=Backoff(
            initial=_duration(backoff.get("initial"), 1.0),
            factor=float(backoff.get("factor", 2.0)),
            max=parse_duration(backoff["max"]) if "max" in backoff else None,
        ),
        on=frozenset(data.get("on", ("failure", "timeout"))),
    )


def _build_step(data: Mapping[str, Any], doc: yamlsafe.Document, path: yamlsafe.Path) -> Step:
    repeat = data.get("repeat")
    return Step(
        id=data["id"],
        line=doc.mark(path).line,
        name=data.get("name"),
        run=data.get("run"),
        uses=data.get("uses"),
        with_=frozen_mapping(data.get("with")),
        repeat=Repeat(
            max=repeat["max"],
            until=repeat.get("until"),
            steps=tuple(_build_step(s, doc, path + ("repeat", "steps", i)) for i, s in enumerate(repeat["steps"])),
        )
        if repeat is not None
        else None,
        condition=data.get("if"),
        env=_env(data.get("env")),
        timeout=parse_duration(data["timeout"]) if "timeout" in data else None,
        retry=_retry(data.get("retry")),
        continue_on_error=data.get("continue-on-error", False),
        credentials=tuple(data["credentials"]) if "credentials" in data else None,
        sandbox=_sandbox(data.get("sandbox")),
    )
