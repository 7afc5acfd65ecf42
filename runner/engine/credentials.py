"""Credentials a step may be given as environment variables (`credentials:` in a pipeline)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from runner.errors import UsageError

DEFAULT_SERVER = "https://github.com"


def github_environment(
    environ: Mapping[str, str], *, repository: str | None = None, token_file: Path | None = None
) -> dict[str, str]:
    """The variables of the `github` credential: GITHUB_TOKEN and GH_TOKEN (the same token, from
    `token_file`, GITHUB_TOKEN or GH_TOKEN), GITHUB_REPOSITORY, GITHUB_SERVER_URL and GITHUB_API_URL
    (`<server>/api/v3` for GitHub Enterprise, as GitHub Actions sets it).

    Raises UsageError when no token can be found.
    """
    if token_file is not None:
        token = token_file.read_text().strip()
    else:
        token = environ.get("GITHUB_TOKEN") or environ.get("GH_TOKEN") or ""
    if not token:
        raise UsageError("the github credential needs a token: set GITHUB_TOKEN or GH_TOKEN, or pass --token-file")
    server = environ.get("GITHUB_SERVER_URL", DEFAULT_SERVER).rstrip("/")
    default_api = "https://api.github.com" if server == DEFAULT_SERVER else f"{server}/api/v3"
    result = {
        "GITHUB_TOKEN": token,
        "GH_TOKEN": token,
        "GITHUB_SERVER_URL": server,
        "GITHUB_API_URL": environ.get("GITHUB_API_URL", default_api).rstrip("/"),
    }
    repository = repository or environ.get("GITHUB_REPOSITORY")
    if repository:
        result["GITHUB_REPOSITORY"] = repository
    return result
