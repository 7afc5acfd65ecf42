"""Forges: where issues and pull requests live. `open_forge` builds one from its settings; FORGES
lists the kinds."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from runner.errors import UsageError
from runner.forges.base import Forge

FORGES = ("github", "local")


def open_forge(
    settings: Mapping[str, str],
    *,
    state_dir: Path,
    environ: Mapping[str, str] | None = None,
    token_file: Path | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Forge:
    """The forge `settings` describe (as `Forge.describe()` returns them): `forge` github (with
    `repo`, `api_url`) or local (with `directory`). Raises UsageError for missing settings or token."""
    environ = os.environ if environ is None else environ
    kind = settings.get("forge", "github")
    if kind == "local":
        from runner.forges.local import LocalForge

        if not settings.get("directory"):
            raise UsageError("the local forge needs a directory (--forge-dir)")
        return LocalForge(Path(settings["directory"]), state_dir)
    if kind == "github":
        from runner.forges.github import DEFAULT_API, GitHubForge

        repo = settings.get("repo") or environ.get("GITHUB_REPOSITORY")
        if not repo or "/" not in repo:
            raise UsageError(
                "the github forge needs a repository OWNER/NAME (--repo, the `repo` input or GITHUB_REPOSITORY)"
            )
        token = github_token(environ, token_file=token_file)
        api_url = settings.get("api_url") or environ.get("GITHUB_API_URL") or DEFAULT_API
        return GitHubForge(repo, token, api_url, on_wait=on_wait)
    raise UsageError(f"unknown forge {kind!r}; choose one of {', '.join(FORGES)}")


def github_token(environ: Mapping[str, str], *, token_file: Path | None = None) -> str:
    """The GitHub token: the content of `token_file` (stripped), else GITHUB_TOKEN or GH_TOKEN.
    Raises UsageError when there is none."""
    if token_file is not None:
        token = token_file.read_text().strip()
    else:
        token = environ.get("GITHUB_TOKEN") or environ.get("GH_TOKEN") or ""
    if not token:
        raise UsageError("the github credential needs a token: set GITHUB_TOKEN or GH_TOKEN, or pass --token-file")
    return token
