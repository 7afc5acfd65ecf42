"""The GitHub forge, on PyGithub. The base URL is configurable (GitHub Enterprise's `/api/v3`, or a
test server); the token comes from the caller (GITHUB_TOKEN / GH_TOKEN / --token-file).

Retries (tenacity, PyGithub's own turned off): reads are retried on 5xx and connection errors with
backoff; a rate-limit answer (403/429) waits for `retry-after`, else until `x-ratelimit-reset`, else
at least a minute, with backoff (GitHub's documented rules for primary and secondary rate limits).
Writes are retried only after a rate-limit answer, when nothing was written: a write that failed
otherwise may have happened, so callers look for their marker before writing again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import tenacity

from runner.forges.base import (
    CloneSource,
    Comment,
    FileDiff,
    ForgeError,
    Issue,
    PullRequest,
    Release,
    ReviewComment,
    blocked_by,
)
from runner.forges.github_reviews import GitHubReviews

if TYPE_CHECKING:
    from runner.forges.github_app import AppInstallation

T = TypeVar("T")
DEFAULT_API = "https://api.github.com"
MAX_ATTEMPTS = 5
MAX_RATE_LIMIT_WAIT = 15 * 60.0


def _rate_limit_wait(error: BaseException, attempt: int, now: float) -> float | None:
    """Seconds to wait when `error` is a rate-limit answer, else None."""
    status = getattr(error, "status", None)
    if status not in (403, 429):
        return None
    headers = {k.lower(): v for k, v in (getattr(error, "headers", None) or {}).items()}
    message = str(getattr(error, "data", "") or "").lower()
    if "retry-after" in headers:
        return float(headers["retry-after"])
    if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
        return max(float(headers["x-ratelimit-reset"]) - now, 1.0)
    if status == 429 or "rate limit" in message:
        return 60.0 * 2.0 ** (attempt - 1)
    return None


def _transient(error: BaseException) -> bool:
    import requests

    if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return True
    status = getattr(error, "status", None)
    return isinstance(status, int) and status >= 500


class GitHubForge(GitHubReviews):
    """One repository (`owner/name`) on GitHub or GitHub Enterprise at `api_url`, with `token`, or
    as the GitHub App installation `app` (runner/forges/github_app.py; then `token` is unused and
    `describe()` names the App's id and key file, `app_settings`, so a resume can act as it again).

    `on_wait(message)` is told about rate-limit waits. Raises ForgeError for answers that are not
    retried (404, 422, ...) with the method, path and GitHub's message.
    """

    name = "github"

    def __init__(
        self,
        repo: str,
        token: str,
        api_url: str = DEFAULT_API,
        on_wait: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        *,
        app: AppInstallation | None = None,
        app_settings: dict[str, str] | None = None,
    ) -> None:
        import github

        self.repo = repo
        self.api_url = api_url.rstrip("/")
        self._on_wait = on_wait or (lambda message: None)
        self._sleep = sleep
        self._app = app
        self._app_settings = dict(app_settings or {})
        self._app_login = app.login if app is not None else None
        self._login: str | None = None
        self._client = github.Github(
            auth=app.auth if app is not None else github.Auth.Token(token),
            base_url=self.api_url,
            retry=None,
            timeout=60,
            per_page=100,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        self._repo: Any = None

    def describe(self) -> dict[str, str]:
        return {"forge": "github", "repo": self.repo, "api_url": self.api_url, **self._app_settings}

    def credential_token(self) -> str | None:
        """The App installation token (renewed by PyGithub before it expires), None without an App."""
        return str(self._app.auth.token) if self._app is not None else None

    # ---- retrying ----------------------------------------------------------------------------

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        assert error is not None
        wait = _rate_limit_wait(error, state.attempt_number, time.time())
        if wait is None:
            return min(2.0 ** (state.attempt_number - 1), 30.0)
        self._on_wait(f"GitHub rate limit: waiting {wait:.0f}s")
        return min(wait, MAX_RATE_LIMIT_WAIT)

    def _call(self, what: str, function: Callable[[], T], *, write: bool = False) -> T:
        def retryable(error: BaseException) -> bool:
            if _rate_limit_wait(error, 1, time.time()) is not None:
                return True
            return not write and _transient(error)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(MAX_ATTEMPTS),
            wait=self._wait,
            retry=tenacity.retry_if_exception(retryable),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(function)
        except Exception as error:
            raise self._error(what, error) from None

    def _error(self, what: str, error: Exception) -> ForgeError:
        status = getattr(error, "status", None)
        data = getattr(error, "data", None)
        message = data.get("message") if isinstance(data, dict) else str(error)
        if isinstance(data, dict) and not message and data.get("errors"):  # GraphQL's errors
            message = "; ".join(str(found.get("message")) for found in data["errors"] if isinstance(found, dict))
        code = f"HTTP {status}" if status else type(error).__name__
        return ForgeError(f"GitHub {self.repo}: {what} failed ({code}): {message}")

    @property
    def _repository(self) -> Any:
        if self._repo is None:
            self._repo = self._call("reading the repository", lambda: self._client.get_repo(self.repo))
        return self._repo

    # ---- reads -------------------------------------------------------------------------------

    def default_branch(self) -> str:
        return str(self._repository.default_branch)

    def clone_source(self) -> CloneSource:
        return CloneSource(url=str(self._repository.clone_url))

    def issue(self, number: int) -> Issue:
        found = self._call(f"reading issue #{number}", lambda: self._repository.get_issue(number))
        return _issue(found)

    def issues(self, state: str = "open") -> list[Issue]:
        found = self._call("listing issues", lambda: list(self._repository.get_issues(state=state)))
        return [_issue(item) for item in found if item.pull_request is None]

    def comments(self, issue: int) -> list[Comment]:
        found = self._call(
            f"listing comments of #{issue}", lambda: list(self._repository.get_issue(issue).get_comments())
        )
        return [_comment(item) for item in found]

    def find_pull_request(self, head: str) -> PullRequest | None:
        owner = self.repo.split("/")[0]
        found = self._call(
            f"looking for a pull request from {head}",
            lambda: list(self._repository.get_pulls(state="open", head=f"{owner}:{head}")),
        )
        return _pull(found[0]) if found else None

    def pull_request(self, number: int) -> PullRequest:
        return _pull(self._call(f"reading pull request #{number}", lambda: self._repository.get_pull(number)))

    def pull_request_files(self, number: int) -> list[FileDiff]:
        found = self._call(
            f"listing the files of #{number}", lambda: list(self._repository.get_pull(number).get_files())
        )
        return [FileDiff(f.filename, f.status, f.additions, f.deletions, f.patch or "") for f in found]

    def releases(self) -> list[Release]:
        found = self._call("listing releases", lambda: list(self._repository.get_releases()))
        return [_release(item) for item in found]

    def branch_sha(self, branch: str) -> str | None:
        import github

        try:
            ref = self._repository.get_git_ref(f"heads/{branch}")
        except github.UnknownObjectException:
            return None
        except github.GithubException as error:
            raise self._error(f"reading branch {branch}", error) from None
        return str(ref.object.sha)

    # ---- writes ------------------------------------------------------------------------------

    def create_issue(
        self, title: str, body: str, labels: list[str], milestone: str | None, blocked_by: list[int]
    ) -> Issue:
        if blocked_by:
            body = body.rstrip() + "\n\nBlocked by " + ", ".join(f"#{n}" for n in blocked_by) + "\n"
        if milestone:
            body = body.rstrip() + f"\n\nMilestone: {milestone}\n"
        return _issue(
            self._call(
                "opening an issue",
                lambda: self._repository.create_issue(title=title, body=body, labels=labels),
                write=True,
            )
        )

    def create_comment(self, issue: int, body: str) -> Comment:
        return _comment(
            self._call(
                f"commenting on #{issue}", lambda: self._repository.get_issue(issue).create_comment(body), write=True
            )
        )

    def update_comment(self, issue: int, comment_id: int, body: str) -> Comment:
        def edit() -> Any:
            comment = self._repository.get_issue(issue).get_comment(comment_id)
            comment.edit(body)
            return comment

        return _comment(self._call(f"editing comment {comment_id}", edit, write=True))

    def delete_comment(self, issue: int, comment_id: int) -> None:
        self._call(
            f"deleting comment {comment_id}",
            lambda: self._repository.get_issue(issue).get_comment(comment_id).delete(),
            write=True,
        )

    def create_pull_request(self, title: str, body: str, head: str, base: str, draft: bool) -> PullRequest:
        return _pull(
            self._call(
                f"opening a pull request from {head}",
                lambda: self._repository.create_pull(title=title, body=body, head=head, base=base, draft=draft),
                write=True,
            )
        )

    def update_pull_request(
        self, number: int, *, title: str | None = None, body: str | None = None, state: str | None = None
    ) -> PullRequest:
        changes = {k: v for k, v in (("title", title), ("body", body), ("state", state)) if v is not None}

        def edit() -> Any:
            pull = self._repository.get_pull(number)
            pull.edit(**changes)
            return self._repository.get_pull(number)

        return _pull(self._call(f"editing pull request #{number}", edit, write=True))

    def request_reviewers(self, number: int, reviewers: list[str]) -> None:
        self._call(
            f"requesting reviewers on #{number}",
            lambda: self._repository.get_pull(number).create_review_request(reviewers=reviewers),
            write=True,
        )

    def create_review(self, number: int, body: str, event: str, comments: list[ReviewComment]) -> int:
        inline = [{"path": c.path, "line": c.line, "body": c.body} for c in comments]
        review = self._call(
            f"reviewing #{number}",
            lambda: self._repository.get_pull(number).create_review(body=body, event=event, comments=inline),
            write=True,
        )
        return int(review.id)

    def reviews(self, number: int) -> list[tuple[int, str]]:
        found = self._call(
            f"listing the reviews of #{number}", lambda: list(self._repository.get_pull(number).get_reviews())
        )
        return [(int(item.id), item.body or "") for item in found]

    def add_labels(self, issue: int, labels: list[str]) -> None:
        self._call(f"labelling #{issue}", lambda: self._repository.get_issue(issue).add_to_labels(*labels), write=True)

    def remove_label(self, issue: int, label: str) -> None:
        self._call(
            f"unlabelling #{issue}", lambda: self._repository.get_issue(issue).remove_from_labels(label), write=True
        )

    def create_release(self, tag: str, name: str, body: str, draft: bool, target: str | None) -> Release:
        options: dict[str, Any] = {"draft": draft}
        if target:
            options["target_commitish"] = target
        return _release(
            self._call(
                f"drafting release {tag}",
                lambda: self._repository.create_git_release(tag, name, body, **options),
                write=True,
            )
        )

    def update_release(self, release_id: int, *, name: str, body: str) -> Release:
        def edit() -> Any:
            release = self._repository.get_release(release_id)
            return release.update_release(name=name, message=body, draft=release.draft)

        return _release(self._call(f"editing release {release_id}", edit, write=True))

    def delete_release(self, release_id: int) -> None:
        self._call(
            f"deleting release {release_id}",
            lambda: self._repository.get_release(release_id).delete_release(),
            write=True,
        )

    def set_branch(self, branch: str, sha: str) -> None:
        self._call(
            f"moving branch {branch}",
            lambda: self._repository.get_git_ref(f"heads/{branch}").edit(sha, force=True),
            write=True,
        )

    def delete_branch(self, branch: str) -> None:
        self._call(
            f"deleting branch {branch}", lambda: self._repository.get_git_ref(f"heads/{branch}").delete(), write=True
        )


def _issue(item: Any) -> Issue:
    labels = tuple(label.name for label in item.labels)
    return Issue(
        number=item.number,
        title=item.title or "",
        body=item.body or "",
        labels=labels,
        author=item.user.login if item.user else "",
        url=item.html_url,
        state=item.state,
        milestone=item.milestone.title if item.milestone else None,
        blocked_by=blocked_by(item.body or "", labels),
    )


def _comment(item: Any) -> Comment:
    return Comment(id=item.id, body=item.body or "", url=item.html_url, author=item.user.login if item.user else "")


def _pull(item: Any) -> PullRequest:
    return PullRequest(
        number=item.number,
        url=item.html_url,
        title=item.title or "",
        body=item.body or "",
        head=item.head.ref,
        base=item.base.ref,
        draft=bool(item.draft),
        state=item.state,
        labels=tuple(label.name for label in item.labels),
        head_sha=item.head.sha,
    )


def _release(item: Any) -> Release:
    return Release(
        id=item.id, tag=item.tag_name, name=item.name or "", body=item.body or "", draft=item.draft, url=item.html_url
    )
