"""Inputs from the event that triggered a GitHub Actions workflow (GITHUB_EVENT_PATH).

An issues or issue_comment event gives `issue` (and `pr` when the issue is a pull request), a
pull_request or pull_request_review event gives `pr`, and every event gives `repo`; each fills the
pipeline input of that name only when the pipeline declares it and the command line did not set it.
The whole payload is the `github.event` of templates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.errors import UsageError


def load_event(environ: Mapping[str, str]) -> dict[str, Any]:
    """The event payload, or {} outside GitHub Actions. Raises UsageError for an unreadable file."""
    path = environ.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(f"GITHUB_EVENT_PATH {path}: cannot read the event: {error}") from None
    return payload if isinstance(payload, dict) else {}


def event_inputs(event: Mapping[str, Any]) -> dict[str, Any]:
    """`issue`, `pr` and `repo` as the event tells them."""
    found: dict[str, Any] = {}
    issue = event.get("issue")
    if isinstance(issue, dict) and "number" in issue:
        found["issue"] = issue["number"]
        if issue.get("pull_request"):
            found["pr"] = issue["number"]
    pull = event.get("pull_request")
    if isinstance(pull, dict) and "number" in pull:
        found["pr"] = pull["number"]
    repository = event.get("repository")
    if isinstance(repository, dict) and repository.get("full_name"):
        found["repo"] = repository["full_name"]
    return found
