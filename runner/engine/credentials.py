"""Credentials a step may be given as environment variables (`credentials:` in a pipeline)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from runner.forges import github_token
from runner.forges.base import Forge
from runner.pipeline.model import Pipeline

DEFAULT_SERVER = "https://github.com"


def github_environment(
    environ: Mapping[str, str],
    *,
    repository: str | None = None,
    token_file: Path | None = None,
    token: str | None = None,
) -> dict[str, str]:
    """The variables of the `github` credential: GITHUB_TOKEN and GH_TOKEN (the same token: `token`
    when given, else from `token_file`, GITHUB_TOKEN or GH_TOKEN), GITHUB_REPOSITORY,
    GITHUB_SERVER_URL and GITHUB_API_URL (`<server>/api/v3` for GitHub Enterprise, as GitHub
    Actions sets it).

    Raises UsageError when no token can be found.
    """
    token = token or github_token(environ, token_file=token_file)
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


def load_credentials(
    pipeline: Pipeline, environ: Mapping[str, str], forge: Forge | None, token_file: Path | None
) -> dict[str, dict[str, str]]:
    """The values of the credentials some step of `pipeline` may get (named in the pipeline's or
    a step's `credentials:`), as name -> variables. `github` comes from the forge
    when there is one (its repository and API, the token it chooses, a GitHub App installation's,
    else from `token_file` or the environment);
    a local forge needs none, so none is given. Raises UsageError when a token is missing."""
    wanted = set(pipeline.credentials)
    for step in pipeline.all_steps():
        wanted |= set(step.credentials or ())
    if "github" not in wanted or getattr(forge, "name", None) == "local":
        return {}
    values = dict(environ)
    if forge is not None:
        values.setdefault("GITHUB_REPOSITORY", forge.repo)
        values["GITHUB_API_URL"] = forge.api_url
        if "GITHUB_SERVER_URL" not in values and forge.api_url.endswith("/api/v3"):
            values["GITHUB_SERVER_URL"] = forge.api_url[: -len("/api/v3")]
    token = forge.credential_token() if forge is not None else None
    github = github_environment(values, repository=values.get("GITHUB_REPOSITORY"), token_file=token_file, token=token)
    return {"github": github}
