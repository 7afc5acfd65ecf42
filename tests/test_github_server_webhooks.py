"""The test GitHub server's repository webhooks: hooks made through the REST API, signed deliveries
of what users do (labels, comments, reviews, review comments, closing and merging), payloads and
hooks checked against GitHub's published descriptions (githubkit's webhook and REST models), and
`PUT .../pulls/{n}/merge` merging in the bare repository."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from githubkit.webhooks import parse_obj
from githubkit_schemas.latest import models

from tests.support.github_server import GitHubServer
from tests.test_github_server_reviews import TOKEN, call

SECRET = "hook-secret"


class Receiver:
    """A tiny HTTP server keeping every request it gets: (headers by lowercase name, raw body)."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                answer = b'{"status": "ok"}'
                self.send_response(202)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/webhook"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHubServer]:
    found = GitHubServer(tmp_path, TOKEN).start()
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.http.shutdown()
        found.http.server_close()


def test_events_are_delivered_signed_in_githubs_shapes(server: GitHubServer, receiver: Receiver) -> None:
    repo = server.create_repo("octo/app", {"calc.py": "def add(a, b):\n    return a - b\n"})
    status, hook, _ = call(
        server, "POST", "/repos/octo/app/hooks", {"config": {"url": receiver.url, "secret": SECRET}, "events": ["*"]}
    )
    assert status == 201
    models.Hook.model_validate(hook)
    assert hook["config"]["secret"] == "********"
    assert [h["id"] for h in call(server, "GET", "/repos/octo/app/hooks")[1]] == [hook["id"]]

    issue = repo.add_issue("Fix add", "add subtracts")
    server.label_issue("octo/app", issue["number"], "pipe", by="octocat")
    server.comment_as("octo/app", issue["number"], "/pipe retry", "octocat")
    repo.commit_to("fix", {"calc.py": "def add(a, b):\n    return a + b\n"}, "fix add")
    pull = call(server, "POST", "/repos/octo/app/pulls", {"title": "Fix", "head": "fix", "base": "main"})[1]
    server.review(
        "octo/app",
        pull["number"],
        "reviewer",
        event="REQUEST_CHANGES",
        comments=[{"path": "calc.py", "line": 2, "body": "name it sum"}],
    )
    server.review_comment("octo/app", pull["number"], "reviewer", "@pipe-bot also this", path="calc.py", line=2)
    merged = call(server, "PUT", f"/repos/octo/app/pulls/{pull['number']}/merge", {"sha": repo.sha("fix")})
    assert merged[0] == 200 and merged[1]["merged"] is True
    deliveries = server.webhooks.wait()

    assert [(d.event, d.action) for d in deliveries] == [
        ("ping", None),
        ("issues", "labeled"),
        ("issue_comment", "created"),
        ("pull_request_review", "submitted"),
        ("pull_request_review_comment", "created"),
        ("pull_request_review_comment", "created"),
        ("pull_request", "closed"),
    ]
    assert all(d.status == 202 for d in deliveries)
    assert len(receiver.got) == len(deliveries)
    for headers, body in receiver.got:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-hub-signature-256"] == expected
        assert headers["user-agent"].startswith("GitHub-Hookshot/")
        assert len(headers["x-github-delivery"]) == 36
        parse_obj(headers["x-github-event"], json.loads(body))  # GitHub's webhook description
    payloads = [json.loads(body) for _, body in receiver.got]
    assert payloads[1]["label"]["name"] == "pipe" and payloads[1]["sender"]["login"] == "octocat"
    assert payloads[3]["review"]["state"] == "changes_requested"
    assert payloads[6]["pull_request"]["merged"] is True
    assert payloads[6]["sender"]["login"] == "pipe-bot"  # merged through the API with the token
    assert repo.contains(repo.sha("fix") or "", repo.sha("main") or "")
    assert call(server, "PUT", f"/repos/octo/app/pulls/{pull['number']}/merge", {})[0] == 405


def test_a_redelivery_keeps_its_id_and_writes_by_the_token_are_sent_as_its_user(
    server: GitHubServer, receiver: Receiver
) -> None:
    repo = server.create_repo("octo/app", {"a.txt": "a\n"})
    server.webhooks.add_hook(repo, receiver.url, SECRET, ["issue_comment"])
    issue = repo.add_issue("Hi", "")
    assert call(server, "POST", f"/repos/octo/app/issues/{issue['number']}/comments", {"body": "hello"})[0] == 201
    ping, first = server.webhooks.wait()
    assert ping.event == "ping"  # sent whatever the hook's events
    server.webhooks.redeliver(first)
    second = server.webhooks.wait()[-1]
    assert second.guid == first.guid and second.payload == first.payload
    assert first.payload["sender"]["login"] == "pipe-bot"
    assert "pull_request" not in first.payload["issue"]
