"""The review-feedback and CI methods of the Forge protocol for a forge that keeps neither review
threads nor checks (the local forge): each raises ForgeError saying so."""

from __future__ import annotations

from runner.forges.base import CheckState, ForgeError, ReviewThread, ThreadReply


class WithoutReviews:
    """Mixin: review threads, reviewers and checks are not supported (ForgeError), and the forge
    chooses no credential token."""

    def _unsupported(self, what: str) -> ForgeError:
        return ForgeError(f"{what} is not supported by the local forge (review threads and checks live on GitHub)")

    def viewer_login(self) -> str:
        raise self._unsupported("the forge user")

    def review_threads(self, number: int) -> list[ReviewThread]:
        raise self._unsupported("reading review threads")

    def reply_to_thread(self, number: int, thread: str, body: str) -> ThreadReply:
        raise self._unsupported("replying in a review thread")

    def delete_review_comment(self, comment_id: int) -> None:
        raise self._unsupported("deleting a review comment")

    def resolve_thread(self, thread: str) -> None:
        raise self._unsupported("resolving a review thread")

    def unresolve_thread(self, thread: str) -> None:
        raise self._unsupported("unresolving a review thread")

    def reviewers(self, number: int) -> list[str]:
        raise self._unsupported("listing reviewers")

    def checks(self, sha: str) -> list[CheckState]:
        raise self._unsupported("reading checks")

    def credential_token(self) -> str | None:
        return None
