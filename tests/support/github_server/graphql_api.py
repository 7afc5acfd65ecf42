"""GitHub's GraphQL API (`POST /api/graphql` as GitHub Enterprise serves it, or `/graphql`) over
the test GitHub server's state: the schema in schema.graphql (a subset of GitHub's public schema),
parsed, validated and executed by graphql-core, with errors shaped as GitHub shapes them."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphql import GraphQLAbstractType, GraphQLSchema, build_schema, graphql_sync

from tests.support.github_server import reviews
from tests.support.github_server.graphql_views import (
    ActorView,
    CommentView,
    Info,
    Problem,
    RepositoryView,
    ThreadView,
)

if TYPE_CHECKING:
    from tests.support.github_server.repo import Repo
    from tests.support.github_server.reviews import ReviewThread
    from tests.support.github_server.server import GitHubServer

PATHS = ("/api/graphql", "/graphql")


@cache
def schema() -> GraphQLSchema:
    """The schema, built once from schema.graphql next to this module."""
    return build_schema((Path(__file__).parent / "schema.graphql").read_text())


class Root:
    """The Query and Mutation fields, for the token's user (the viewer)."""

    def __init__(self, server: GitHubServer) -> None:
        self.server = server

    def viewer(self, info: Info) -> ActorView:
        """The token's user."""
        return ActorView(self.server, self.server.actor)

    def repository(self, info: Info, owner: str, name: str, followRenames: bool = True) -> RepositoryView:
        """The repository `owner`/`name`; NOT_FOUND when the server has none."""
        repo = self.server.repos.get(f"{owner}/{name}")
        if repo is None:
            raise Problem("NOT_FOUND", f"Could not resolve to a Repository with the name '{owner}/{name}'.")
        return RepositoryView(self.server, repo)

    def node(self, info: Info, id: str) -> ThreadView | CommentView | None:
        """A review thread or review comment by its global id; NOT_FOUND otherwise."""
        for repo in self.server.repos.values():
            for thread in repo.threads.values():
                if thread.node_id == id:
                    return ThreadView(self.server, repo, thread)
            for comment in repo.review_comments.values():
                if comment.node_id == id:
                    return CommentView(self.server, repo, comment)
        raise Problem("NOT_FOUND", f"Could not resolve to a node with the global id of '{id}'")

    def _thread(self, node_id: str) -> tuple[Repo, ReviewThread]:
        for repo in self.server.repos.values():
            for thread in repo.threads.values():
                if thread.node_id == node_id:
                    return repo, thread
        raise Problem(
            "NOT_FOUND", f"Could not resolve to PullRequestReviewThread node with the global id of '{node_id}'."
        )

    def resolveReviewThread(self, info: Info, input: dict[str, Any]) -> dict[str, Any]:
        """Mark the thread resolved by the viewer."""
        repo, thread = self._thread(input["threadId"])
        thread.resolved_by = self.server.actor
        return {"clientMutationId": input.get("clientMutationId"), "thread": ThreadView(self.server, repo, thread)}

    def unresolveReviewThread(self, info: Info, input: dict[str, Any]) -> dict[str, Any]:
        """Mark the thread unresolved."""
        repo, thread = self._thread(input["threadId"])
        thread.resolved_by = None
        return {"clientMutationId": input.get("clientMutationId"), "thread": ThreadView(self.server, repo, thread)}

    def addPullRequestReviewThreadReply(self, info: Info, input: dict[str, Any]) -> dict[str, Any]:
        """Reply in the thread as the viewer (a COMMENTED review, as on GitHub)."""
        repo, thread = self._thread(input["pullRequestReviewThreadId"])
        if not input["body"].strip():
            raise Problem("UNPROCESSABLE", "Body can't be blank")
        comment = reviews.reply(self.server, repo, thread.number, self.server.actor, input["body"], thread.comments[0])
        # GitHub delivers the reply like one made over REST (serve must see, and ignore, its own).
        rendered = reviews.render(self.server, repo, comment)
        self.server.webhooks.review_comment(repo, thread.number, rendered, self.server.actor)
        return {"clientMutationId": input.get("clientMutationId"), "comment": CommentView(self.server, repo, comment)}


def _type_of(value: Any, info: Info, abstract: GraphQLAbstractType) -> str | None:
    return getattr(value, "typename", None)


def execute(server: GitHubServer, request: dict[str, Any]) -> dict[str, Any]:
    """Answer one GraphQL request ({"query", "variables", "operationName"}) as GitHub does: HTTP 200
    with `data` and, when something failed, `errors` carrying GitHub's `type` where it gives one."""
    if not isinstance(request.get("query"), str):
        return {"errors": [{"message": "A query attribute must be specified and must be a string."}]}
    root = Root(server)
    result = graphql_sync(
        schema(),
        request["query"],
        root_value=root,
        variable_values=request.get("variables") or None,
        operation_name=request.get("operationName"),
        type_resolver=_type_of,
    )
    answer: dict[str, Any] = {}
    if result.data is not None or not result.errors:
        answer["data"] = result.data
    if result.errors:
        answer["errors"] = [_shaped(e.formatted) for e in result.errors]
    return answer


def _shaped(error: Any) -> dict[str, Any]:
    found = dict(error)
    extensions = dict(found.pop("extensions", None) or {})
    if "type" in extensions:
        found = {"type": extensions.pop("type"), **found}
    if extensions:
        found["extensions"] = extensions
    return found
