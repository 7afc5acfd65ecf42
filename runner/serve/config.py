"""The configuration of `pipe serve`: a YAML file checked against schemas/serve.schema.json, every
problem reported as FILE:LINE:COL: key.path: message (as pipeline files are), loaded with the
project's safe YAML loader (runner/pipeline/yamlsafe.py).

    secret: {env: PIPE_WEBHOOK_SECRET}        # or {file: PATH}
    github: {api-url: URL, token: {env: GITHUB_TOKEN}, bot: LOGIN}
    state-dir: .pipe
    repositories: [OWNER/NAME]
    allow: [OWNER, MEMBER, COLLABORATOR]
    max-processes: 4
    rules:
      - {on: issue-labeled, label: pipe, pipeline: issue-to-pr, inputs: {agent: claude}}
      - {on: changes-requested, pipeline: pr-feedback}
      - {on: mention, pipeline: pr-feedback}

Secrets and tokens are read once, when the file is loaded; relative paths are relative to the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import Diagnostic, UsageError, ValidationFailed
from runner.pipeline import yamlsafe
from runner.pipeline.validation import check_schema, format_path
from runner.serve.slots import DEFAULT_LIMIT

SCHEMA = "serve.schema.json"
DEFAULT_API = "https://api.github.com"
DEFAULT_ALLOW = ("OWNER", "MEMBER", "COLLABORATOR")
RULE_EVENTS = ("issue-labeled", "changes-requested", "mention")


@dataclass(frozen=True)
class Rule:
    """One rule: on `on` (one of RULE_EVENTS; `label` for issue-labeled) start `pipeline` (a path,
    or a shipped pipeline's name) with `inputs` (strings are templates, see runner/serve/events.py)
    and, when given, `sandbox_image`."""

    on: str
    pipeline: str
    label: str | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    sandbox_image: str | None = None


@dataclass(frozen=True)
class ServeConfig:
    """A loaded configuration. `secret` is the webhook secret (bytes); `token` the GitHub token
    runs get, `token_file` set when it came from a file (runs then read the same file); `bot`
    None means look it up with the token (runner/serve/identity.py). `secret_names` are the
    environment variables the secret and the token were read from (never passed on to runs);
    `max_processes` caps the processes serve runs at once (runner/serve/slots.py)."""

    path: Path
    secret: bytes
    rules: tuple[Rule, ...]
    api_url: str = DEFAULT_API
    token: str = ""
    token_file: Path | None = None
    bot: str | None = None
    state_dir: Path | None = None
    repositories: frozenset[str] = frozenset()
    allow: frozenset[str] = frozenset(DEFAULT_ALLOW)
    secret_names: frozenset[str] = frozenset()
    max_processes: int = DEFAULT_LIMIT

    def rules_for(self, on: str) -> list[Rule]:
        """The rules of event kind `on` (one of RULE_EVENTS), in file order."""
        return [rule for rule in self.rules if rule.on == on]

    def watches(self, repo: str) -> bool:
        """Whether events of repository `repo` (OWNER/NAME) may start anything."""
        return not self.repositories or repo.lower() in self.repositories


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> ServeConfig:
    """Read and check the configuration at `path`; read the secret and token it names from
    `environ` (default: os.environ) or their files.

    Raises ValidationFailed with every problem of the file (file, line, column, key path), and
    UsageError for an unreadable file or a secret or token that is missing or empty.
    """
    environ = os.environ if environ is None else environ
    file = str(path)
    try:
        raw = path.read_bytes()[: yamlsafe.MAX_FILE_BYTES + 1]
    except OSError as error:
        raise UsageError(f"{file}: cannot read: {error.strerror}") from None
    doc = _parse(raw, file)
    problems = check_schema(file, doc, SCHEMA)
    if problems:
        raise ValidationFailed(problems)
    data: dict[str, Any] = doc.data
    base = path.resolve().parent
    github = data.get("github") or {}
    secret = _read_source(data["secret"], base, environ, doc, ("secret",), file)
    token_source = github.get("token") or {"env": "GITHUB_TOKEN"}
    token = _read_source(token_source, base, environ, doc, ("github", "token"), file)
    token_file = _resolve(base, token_source["file"]) if "file" in token_source else None
    state_dir = _resolve(base, data["state-dir"]) if data.get("state-dir") else None
    return ServeConfig(
        path=path,
        secret=secret.encode(),
        rules=tuple(_rule(rule, base) for rule in data["rules"]),
        api_url=str(github.get("api-url") or DEFAULT_API).rstrip("/"),
        token=token,
        token_file=token_file,
        bot=github.get("bot"),
        state_dir=state_dir,
        repositories=frozenset(name.lower() for name in data.get("repositories") or ()),
        allow=frozenset(data.get("allow") or DEFAULT_ALLOW),
        secret_names=frozenset(source["env"] for source in (data["secret"], token_source) if "env" in source),
        max_processes=int(data.get("max-processes") or DEFAULT_LIMIT),
    )


def _parse(raw: bytes, file: str) -> yamlsafe.Document:
    if len(raw) > yamlsafe.MAX_FILE_BYTES:
        message = f"file is over the limit of {yamlsafe.MAX_FILE_BYTES} bytes"
        raise ValidationFailed([Diagnostic(file, 1, 1, "", message)])
    try:
        doc = yamlsafe.load(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ValidationFailed([Diagnostic(file, 1, 1, "", f"not UTF-8 text ({error.reason})")]) from None
    except yamlsafe.LoadError as error:
        raise ValidationFailed(
            [Diagnostic(file, p.mark.line, p.mark.column, format_path(p.path), p.message) for p in error.problems]
        ) from None
    if not isinstance(doc.data, dict):
        raise ValidationFailed([Diagnostic(file, 1, 1, "", "a serve configuration must be a mapping")])
    return doc


def _resolve(base: Path, name: str) -> Path:
    path = Path(os.path.expanduser(name))
    return path if path.is_absolute() else base / path


def _read_source(
    source: Mapping[str, str],
    base: Path,
    environ: Mapping[str, str],
    doc: yamlsafe.Document,
    where: yamlsafe.Path,
    file: str,
) -> str:
    """The value a `{env: NAME}` or `{file: PATH}` names, stripped; UsageError when it is empty
    or unreadable, naming the file, line and key."""
    mark = doc.mark(where)
    place = f"{file}:{mark.line}:{mark.column}: {format_path(where)}"
    if "env" in source:
        value = environ.get(source["env"], "").strip()
        if not value:
            raise UsageError(f"{place}: the environment variable {source['env']} is not set or empty")
        return value
    path = _resolve(base, source["file"])
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise UsageError(f"{place}: cannot read {path}: {error.strerror}") from None
    if not value:
        raise UsageError(f"{place}: {path} is empty")
    return value


def _rule(data: Mapping[str, Any], base: Path) -> Rule:
    pipeline = str(data["pipeline"])
    local = _resolve(base, pipeline)
    return Rule(
        on=data["on"],
        pipeline=str(local) if local.is_file() else pipeline,
        label=data.get("label"),
        inputs=dict(data.get("inputs") or {}),
        sandbox_image=data.get("sandbox-image"),
    )
