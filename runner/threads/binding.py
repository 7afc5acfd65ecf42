"""Which thread a run belongs to: the pipeline's `thread:` key rendered for one run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.pipeline.expressions import Expressions
from runner.pipeline.model import ThreadBinding


@dataclass(frozen=True)
class ThreadTarget:
    """A rendered `thread:`: repository OWNER/NAME and either the issue or the pull request."""

    repo: str
    issue: int | None
    pull_request: int | None


def render_target(binding: ThreadBinding, inputs: Mapping[str, Any], default_repo: str) -> ThreadTarget:
    """Render `binding`'s repo, issue and pull-request with `inputs` (an empty repo becomes
    `default_repo`, the run's forge's repository). Raises TemplateError for a template that does
    not render, ValueError for an issue or pull request that is not a positive number or an
    empty repository."""
    expressions = Expressions({"inputs": dict(inputs)})
    repo = expressions.render(binding.repo).strip() or default_repo
    if not repo:
        raise ValueError("thread.repo is empty and the run has no forge repository")

    def number(value: int | str | None, key: str) -> int | None:
        if value is None:
            return None
        text = expressions.render(str(value)).strip()
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"thread.{key} must be a positive number, not {text!r}")
        return int(text)

    return ThreadTarget(repo, number(binding.issue, "issue"), number(binding.pull_request, "pull-request"))
