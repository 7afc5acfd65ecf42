"""GitHub App installation tokens: pipe acting as an App installed on the repository, so that its
pushes run the repository's own workflows (a push made with a workflow's GITHUB_TOKEN triggers
none) and its comments and replies appear as the App's bot ("<slug>[bot]").

With the App's id and private key (PEM), PyGithub signs a JWT (RS256) as the App, looks up the
App's installation on the repository (`GET /repos/{owner}/{name}/installation`) and its slug
(`GET /app`), and `Auth.AppAuth(...).get_installation_auth(installation)` then creates (and
renews before it expires, after an hour) the installation token every request uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AppInstallation:
    """The App's installation on a repository: `auth` (a PyGithub AppInstallationAuth: give it to
    `github.Github(auth=...)`), the installation `id` and the bot `login` ("<slug>[bot]")."""

    auth: Any
    id: int
    login: str


def app_installation(api_url: str, repo: str, app_id: str, private_key: str) -> AppInstallation:
    """The installation of App `app_id` (signing with `private_key`, a PEM text) on `repo`
    (OWNER/NAME) at `api_url`. Raises ForgeError when the key cannot sign, the App is not
    installed on the repository, or GitHub refuses the App's JWT."""
    import github
    import jwt

    from runner.forges.base import ForgeError

    if not private_key.strip():
        raise ForgeError(f"GitHub App {app_id}: the private key is empty")
    owner, name = repo.split("/", 1)
    try:
        app_auth = github.Auth.AppAuth(app_id, private_key)
        integration = github.GithubIntegration(auth=app_auth, base_url=api_url, retry=None, timeout=60)
        installation = integration.get_repo_installation(owner, name)
        slug = integration.get_app().slug
    except github.GithubException as error:
        data = error.data if isinstance(error.data, dict) else {}
        message = data.get("message") or str(error)
        raise ForgeError(
            f"GitHub App {app_id} on {repo}: looking up its installation failed (HTTP {error.status}): {message}"
        ) from None
    except (ValueError, TypeError, jwt.PyJWTError) as error:  # a key that is not a PEM private key
        raise ForgeError(f"GitHub App {app_id}: the private key cannot sign ({type(error).__name__})") from None
    auth = app_auth.get_installation_auth(int(installation.id))
    return AppInstallation(auth=auth, id=int(installation.id), login=f"{slug}[bot]")
