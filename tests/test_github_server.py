"""The test GitHub server answers in GitHub's shapes (GitHub's OpenAPI description, as githubkit's
generated models), requires its token, and serves git over smart HTTP only with it."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from githubkit_schemas.latest import models

from runner.forges.github import GitHubForge
from tests.support.github_server import GitHubServer

TOKEN = "test-token-123"


def call(server: GitHubServer, method: str, path: str, body: Any = None, token: str = TOKEN) -> tuple[int, Any]:
    request = urllib.request.Request(
        server.api_url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_responses_have_githubs_shapes(tmp_path: Path) -> None:
    server = GitHubServer(tmp_path, TOKEN).start()
    try:
        repo = server.create_repo("octo/demo", {"README.md": "# demo\n"})
        repo.add_issue("A bug", "details", ("bug",))
        subprocess.run(["git", f"--git-dir={repo.git_dir}", "branch", "feature", "main"], check=True)
        forge = GitHubForge("octo/demo", TOKEN, server.api_url)
        models.FullRepository.model_validate(call(server, "GET", "/repos/octo/demo")[1])
        models.Issue.model_validate(call(server, "GET", "/repos/octo/demo/issues/1")[1])
        comment = forge.create_comment(1, "hello")
        models.IssueComment.model_validate(call(server, "GET", f"/repos/octo/demo/issues/comments/{comment.id}")[1])
        status, pull = call(server, "POST", "/repos/octo/demo/pulls", {"title": "t", "head": "feature", "base": "main"})
        assert status == 201
        models.PullRequest.model_validate(pull)
        review = call(
            server, "POST", f"/repos/octo/demo/pulls/{pull['number']}/reviews", {"body": "ok", "event": "COMMENT"}
        )[1]
        models.PullRequestReview.model_validate(review)
        release = call(server, "POST", "/repos/octo/demo/releases", {"tag_name": "v1", "name": "v1", "draft": True})[1]
        models.Release.model_validate(release)
        for label in call(server, "POST", "/repos/octo/demo/issues/1/labels", {"labels": ["x"]})[1]:
            models.Label.model_validate(label)
        assert call(server, "GET", "/repos/octo/demo/issues/1", token="wrong")[0] == 401
    finally:
        server.stop()


def test_git_over_smart_http_needs_the_token(tmp_path: Path) -> None:
    server = GitHubServer(tmp_path / "server", TOKEN).start()
    try:
        server.create_repo("octo/demo", {"README.md": "# demo\n"})
        url = f"{server.base}/octo/demo.git"
        askpass = tmp_path / "askpass"
        askpass.write_text(f"#!/bin/sh\necho {TOKEN}\n")
        wrong = tmp_path / "wrong"
        wrong.write_text("#!/bin/sh\necho not-the-token\n")
        wrong.chmod(0o700)
        askpass.chmod(0o700)
        environment = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_GLOBAL": "/dev/null"}
        refused = subprocess.run(
            ["git", "clone", "-q", url, str(tmp_path / "a")],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode != 0 and "could not read Username" in refused.stderr
        bad = subprocess.run(
            ["git", "clone", "-q", url, str(tmp_path / "c")],
            env={**environment, "GIT_ASKPASS": str(wrong)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert bad.returncode != 0 and "Authentication failed" in bad.stderr
        cloned = subprocess.run(
            ["git", "clone", "-q", url, str(tmp_path / "b")],
            env={**environment, "GIT_ASKPASS": str(askpass)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert cloned.returncode == 0, cloned.stderr
        assert (tmp_path / "b" / "README.md").read_text() == "# demo\n"
    finally:
        server.stop()
