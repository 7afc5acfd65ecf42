"""GitHub Apps on the test GitHub server: an App registered by a test (with a fresh RSA key),
installed on some repositories; the App authenticates with a JWT it signs (RS256, checked against
its public key with PyJWT) to look up its installation and create installation tokens; those
tokens work for the REST and GraphQL APIs and git's smart HTTP, and what is done with them is
done as the App's bot, "<slug>[bot]" (writes through the API, and pushes: `pushes` records who
moved which ref).

Endpoints: `GET /app`, `GET /repos/{owner}/{name}/installation`, `GET /app/installations/{id}`,
`POST /app/installations/{id}/access_tokens` (JWT only), answered in GitHub's shapes.
"""

from __future__ import annotations

import base64
import itertools
import re
import secrets
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.github_server import git_http
from tests.support.github_server.shapes import STAMP, ApiError, app, timestamp, user

if TYPE_CHECKING:
    from tests.support.github_server.server import GitHubServer

TOKEN_LIFETIME = 3600.0  # seconds, as GitHub's installation tokens
PERMISSIONS = {"contents": "write", "pull_requests": "write", "issues": "write", "checks": "read", "statuses": "read"}
_JWT_DOCS = "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"
_ids = itertools.count(900)
_APP_PATH = re.compile(r"^/api/v3/(app(/installations/\d+(/access_tokens)?)?|repos/[^/]+/[^/]+/installation)$")


def is_app_path(path: str) -> bool:
    """Whether `path` is an App endpoint (authenticated by the App's JWT, not a token)."""
    return _APP_PATH.match(path) is not None


@dataclass
class App:
    """A registered App: `id`, `slug`, its private key (PEM, for the test to give pipe), and its one
    installation (`installation_id`) on the repositories `repos` (owner/name)."""

    id: int
    slug: str
    private_key: str
    public_key: Any
    installation_id: int
    repos: set[str] = field(default_factory=set)

    @property
    def login(self) -> str:
        """The App's bot as REST shows it."""
        return f"{self.slug}[bot]"


@dataclass(frozen=True)
class Push:
    """A ref moved by a git push: `repo` (owner/name), `ref`, SHAs `before` ("" when new) and
    `after` ("" when deleted), and who pushed (`actor`: the token's user, or an App's bot)."""

    repo: str
    ref: str
    before: str
    after: str
    actor: str


class Apps:
    """The server's Apps, their installation tokens, and the pushes made (see the module docstring)."""

    def __init__(self, server: GitHubServer) -> None:
        self.server = server
        self.apps: dict[int, App] = {}
        self.tokens: dict[str, tuple[App, float]] = {}  # token -> (App, expires at)
        self.pushes: list[Push] = []

    def register(self, slug: str, repos: list[str]) -> App:
        """A new App `slug` with a fresh 2048-bit RSA key, installed on `repos`."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()
        found = App(next(_ids), slug, pem, key.public_key(), next(_ids) * 10, set(repos))
        self.apps[found.id] = found
        return found

    def actor(self, token: str) -> str | None:
        """The bot an unexpired installation token acts as, else None."""
        found = self.tokens.get(token)
        if found is None or found[1] < time.time():
            return None
        return found[0].login

    def pushed_by(self, full_name: str, ref: str) -> str | None:
        """Who last pushed `ref` (e.g. "refs/heads/fix") of `full_name`, None when nobody did over git."""
        found = [p.actor for p in self.pushes if p.repo == full_name and p.ref == ref]
        return found[-1] if found else None

    # ---- git over HTTP ------------------------------------------------------------------------

    def serve_git(
        self, request: BaseHTTPRequestHandler, method: str, path: str, query: str, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer a git smart HTTP request whose basic-auth password is the server's token or an
        installation token (git_http.serve), recording the refs a push moved and who pushed."""
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        password = ""
        if scheme.lower() == "basic":
            password = base64.b64decode(value).decode(errors="replace").partition(":")[2]
        actor = self.server.actor_of(password) if password else None
        accepted = password if actor is not None else self.server.token
        full_name = path.split(".git/", 1)[0].strip("/")
        pushing = actor is not None and method == "POST" and path.endswith("/git-receive-pack")
        before = self._refs(full_name) if pushing else {}
        answer = git_http.serve(self.server.root, accepted, request, method, path, query, body)
        if pushing and actor is not None:
            after = self._refs(full_name)
            with self.server.lock:
                for ref in sorted(set(before) | set(after)):
                    if before.get(ref) != after.get(ref):
                        self.pushes.append(Push(full_name, ref, before.get(ref, ""), after.get(ref, ""), actor))
        return answer

    def _refs(self, full_name: str) -> dict[str, str]:
        """ref -> SHA of a repository's bare git directory ({} for an unknown repository)."""
        repo = self.server.repos.get(full_name)
        if repo is None:
            return {}
        listed = repo.git("for-each-ref", "--format=%(refname) %(objectname)")
        return dict(line.split(" ", 1) for line in listed.splitlines() if line)

    # ---- the endpoints -----------------------------------------------------------------------

    def route(self, method: str, path: str, authorization: str) -> tuple[int, Any] | None:
        """Answer an App endpoint (see the module docstring), or None for any other path. Raises
        ApiError 401 as GitHub does for a missing or bad JWT, 404 for an unknown installation."""
        repo = re.fullmatch(r"/api/v3/repos/([^/]+/[^/]+)/installation", path)
        if repo and method == "GET":
            found = self._app(authorization)
            if repo.group(1) not in found.repos:
                raise ApiError(404, {"message": "Not Found", "documentation_url": _JWT_DOCS})
            return 200, self._installation(found)
        if path == "/api/v3/app" and method == "GET":
            found = self._app(authorization)
            return 200, {**app(found.slug, self.server.base), "id": found.id, "node_id": f"A_{found.id}"}
        installation = re.fullmatch(r"/api/v3/app/installations/(\d+)(/access_tokens)?", path)
        if installation is None:
            return None
        found = self._app(authorization)
        if int(installation.group(1)) != found.installation_id:
            raise ApiError(404, {"message": "Not Found"})
        if installation.group(2) and method == "POST":
            token = "ghs_" + secrets.token_hex(18)
            expires = self.server.clock() + TOKEN_LIFETIME
            self.tokens[token] = (found, expires)
            return 201, {
                "token": token,
                "expires_at": timestamp(expires),
                "permissions": PERMISSIONS,
                "repository_selection": "selected",
            }
        if not installation.group(2) and method == "GET":
            return 200, self._installation(found)
        return None

    def _app(self, authorization: str) -> App:
        """The App whose JWT (`Bearer <jwt>`) signs the request; ApiError 401 otherwise."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token.count(".") != 2:
            raise ApiError(401, {"message": "A JSON web token could not be decoded", "documentation_url": _JWT_DOCS})
        try:
            issuer = str(jwt.decode(token, options={"verify_signature": False}).get("iss"))
            found = self.apps.get(int(issuer)) if issuer.isdigit() else None
            if found is None:
                raise ApiError(401, {"message": f"Integration not found: {issuer}", "documentation_url": _JWT_DOCS})
            jwt.decode(token, found.public_key, algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]})
        except jwt.PyJWTError as error:
            raise ApiError(401, {"message": f"'{error}'", "documentation_url": _JWT_DOCS}) from None
        return found

    def _installation(self, found: App) -> dict[str, Any]:
        """The App's installation in GitHub's shape."""
        base, owner = self.server.base, sorted(found.repos)[0].split("/")[0] if found.repos else "octo"
        api = f"{base}/api/v3"
        return {
            "id": found.installation_id,
            "account": user(owner, base),
            "repository_selection": "selected",
            "access_tokens_url": f"{api}/app/installations/{found.installation_id}/access_tokens",
            "repositories_url": f"{api}/installation/repositories",
            "html_url": f"{base}/settings/installations/{found.installation_id}",
            "app_id": found.id,
            "app_slug": found.slug,
            "target_id": user(owner, base)["id"],
            "target_type": "User",
            "permissions": PERMISSIONS,
            "events": ["pull_request", "pull_request_review", "issues", "issue_comment"],
            "created_at": STAMP,
            "updated_at": STAMP,
            "single_file_name": None,
            "suspended_by": None,
            "suspended_at": None,
        }
