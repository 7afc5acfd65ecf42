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
    `repo`, `api_url`, and for a GitHub App `app_id` (else PIPE_GITHUB_APP_ID) and `app_key_file`)
    or local (with `directory`). Raises UsageError for missing settings, token or App key, and
    ForgeError when the App's installation cannot be found."""
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
        api_url = settings.get("api_url") or environ.get("GITHUB_API_URL") or DEFAULT_API
        app_id = settings.get("app_id") or environ.get("PIPE_GITHUB_APP_ID")
        if app_id:
            from runner.forges.github_app import app_installation

            key = app_private_key(environ, settings.get("app_key_file"))
            described = {
                "app_id": app_id,
                **({"app_key_file": settings["app_key_file"]} if "app_key_file" in settings else {}),
            }
            app = app_installation(api_url, repo, app_id, key)
            return GitHubForge(repo, "", api_url, on_wait=on_wait, app=app, app_settings=described)
        token = github_token(environ, token_file=token_file)
        return GitHubForge(repo, token, api_url, on_wait=on_wait)
    raise UsageError(f"unknown forge {kind!r}; choose one of {', '.join(FORGES)}")


def app_private_key(environ: Mapping[str, str], key_file: str | None) -> str:
    """A GitHub App's private key (PEM text): the content of `key_file`, else the secret
    GITHUB_APP_PRIVATE_KEY. Raises UsageError when there is none."""
    if key_file:
        try:
            return Path(key_file).read_text()
        except OSError as error:
            raise UsageError(f"cannot read the GitHub App key file {key_file}: {error.strerror}") from None
    key = environ.get("GITHUB_APP_PRIVATE_KEY", "")
    if not key.strip():
        raise UsageError(
            "a GitHub App needs its private key: set the secret GITHUB_APP_PRIVATE_KEY or pass --github-app-key-file"
        )
    return key


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
