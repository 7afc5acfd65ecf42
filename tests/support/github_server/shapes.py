"""Shared shapes of the test GitHub server: users and apps as GitHub describes them, the fixed
timestamp of objects made at setup, errors answered as GitHub answers them, and paged lists."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

STAMP = "2026-01-01T00:00:00Z"
VIEWER = "pipe-bot"  # the login the server's token belongs to


class ApiError(Exception):
    """An answer other than success: `status` (e.g. 404, 422) with GitHub's JSON `payload`."""

    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("message", status))
        self.status = status
        self.payload = payload


def unprocessable(*errors: str, documentation: str = "") -> ApiError:
    """GitHub's 422 for a request it understood but refuses, with its error sentences."""
    found: dict[str, Any] = {"message": "Unprocessable Entity", "errors": list(errors)}
    if documentation:
        found["documentation_url"] = f"https://docs.github.com/rest/{documentation}"
    return ApiError(422, found)


def validation_failed(resource: str, field: str, code: str = "invalid") -> ApiError:
    """GitHub's 422 "Validation Failed" naming the `field` of `resource` that was refused."""
    return ApiError(
        422, {"message": "Validation Failed", "errors": [{"resource": resource, "field": field, "code": code}]}
    )


def user(login: str, base: str) -> dict[str, Any]:
    """A SimpleUser for `login`; a login ending in "[bot]" is a Bot (as GitHub Apps appear in REST)."""
    api = f"{base}/api/v3/users/{login}"
    return {
        "login": login,
        "id": abs(hash(login)) % 100000,
        "node_id": f"U_{login}",
        "avatar_url": f"{base}/avatars/{login}",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{base}/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": "Bot" if login.endswith("[bot]") else "User",
        "site_admin": False,
    }


def app(slug: str, base: str) -> dict[str, Any]:
    """An Integration (GitHub App) named `slug`, as check runs carry it."""
    return {
        "id": abs(hash(slug)) % 100000,
        "slug": slug,
        "node_id": f"A_{slug}",
        "owner": user("octo", base),
        "name": slug,
        "description": None,
        "external_url": f"{base}/apps/{slug}",
        "html_url": f"{base}/apps/{slug}",
        "created_at": STAMP,
        "updated_at": STAMP,
        "permissions": {"checks": "write", "statuses": "write"},
        "events": [],
    }


def association(login: str, owner: str) -> str:
    """The author_association GitHub gives `login` in a repository owned by `owner`."""
    if login == owner:
        return "OWNER"
    return "MEMBER" if login == VIEWER else "COLLABORATOR"


def timestamp(at: float) -> str:
    """`at` (seconds since the epoch) as GitHub writes times: ISO 8601 in UTC, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def encode(value: Any) -> bytes:
    """`value` as JSON bytes."""
    return json.dumps(value).encode()


@dataclass
class Page:
    """A list answered a page at a time (`per_page`, default 30, at most 100; `page` from 1) with
    a Link header; `key` wraps the page as {"total_count": n, key: [...]} as the checks API does."""

    items: list[Any]
    key: str | None = None

    def render(self, url: str, query: dict[str, list[str]]) -> tuple[Any, dict[str, str]]:
        """The page asked for by `query` on `url` (the path without its query), and its headers."""
        per_page = max(1, min(100, int(query.get("per_page", ["30"])[0])))
        number = max(1, int(query.get("page", ["1"])[0]))
        last = max(1, -(-len(self.items) // per_page))
        chosen = self.items[(number - 1) * per_page : number * per_page]
        rest = {k: v[0] for k, v in query.items() if k not in ("page", "per_page")}

        def link(page: int) -> str:
            return f"<{url}?{urlencode({**rest, 'per_page': per_page, 'page': page})}>"

        links = []
        if number < last:
            links += [f'{link(number + 1)}; rel="next"', f'{link(last)}; rel="last"']
        if number > 1:
            links += [f'{link(1)}; rel="first"', f'{link(number - 1)}; rel="prev"']
        headers = {"Link": ", ".join(links)} if links else {}
        payload = {"total_count": len(self.items), self.key: chosen} if self.key else chosen
        return payload, headers
