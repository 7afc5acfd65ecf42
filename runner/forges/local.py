"""The local forge: one repository and its issues in a directory, no credentials needed.

Layout of the forge directory:

    repo.git/        a bare repository: the origin git actions fetch from and push to, on the host
                     (runner/actions/git.py); it is never mounted into a sandbox
    issues/N.md      an issue: YAML front matter (id, title, labels, milestone, blocked_by), then the body

Pull requests, comments and releases are records in `<state>/forges/<slug>/records.json`: a pull
request is its branch in repo.git plus a record; comments are appended to the records. Records are
changed under a file lock and written atomically, so concurrent runs see each other's writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runner.changes import gitrefs
from runner.forges.base import (
    CloneSource,
    Comment,
    FileDiff,
    ForgeError,
    Issue,
    PullRequest,
    Release,
    ReviewComment,
)
from runner.forges.unsupported import WithoutReviews
from runner.pipeline import yamlsafe
from runner.statedir import StateDir


class LocalForge(WithoutReviews):
    """The forge in `directory`, with records kept under `state_dir` (no review threads or checks:
    those methods raise ForgeError, see runner/forges/unsupported.py)."""

    name = "local"
    api_url = ""  # no API: git actions fetch and push on the host, and no credential is given

    def __init__(self, directory: Path, state_dir: Path) -> None:
        self.directory = directory.resolve()
        self.git_dir = self.directory / "repo.git"
        if not (self.git_dir / "HEAD").is_file():
            raise ForgeError(
                f"local forge {self.directory}: no bare repository at repo.git (make one with "
                f"`git clone --bare YOUR_REPO {self.git_dir}`)"
            )
        self.repo = self.directory.name
        slug = hashlib.sha256(str(self.directory).encode()).hexdigest()[:12]
        self.records_path = StateDir(state_dir).forge_records(f"{self.repo}-{slug}")

    def describe(self) -> dict[str, str]:
        return {"forge": "local", "repo": self.repo, "directory": str(self.directory)}

    # ---- records -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _records(self) -> Iterator[dict[str, Any]]:
        """The records, locked for the duration; saved atomically when the block ends normally."""
        self.records_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.records_path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            records: dict[str, Any] = {"next_id": 1, "pulls": {}, "comments": [], "releases": [], "reviews": []}
            if self.records_path.exists():
                records = json.loads(self.records_path.read_text())
            yield records
            handle, temporary = tempfile.mkstemp(dir=self.records_path.parent, prefix=".records-")
            with os.fdopen(handle, "w") as stream:
                json.dump(records, stream, indent=2)
            os.replace(temporary, self.records_path)

    @staticmethod
    def _next(records: dict[str, Any]) -> int:
        value = int(records["next_id"])
        records["next_id"] = value + 1
        return value

    def _url(self, kind: str, number: int) -> str:
        return f"{self.directory.as_uri()}#{kind}-{number}"

    # ---- reads -------------------------------------------------------------------------------

    def default_branch(self) -> str:
        return gitrefs.head_branch(self.git_dir) or "main"

    def clone_source(self) -> CloneSource:
        """The bare repository's host path; no mounts (git actions fetch and push on the host)."""
        return CloneSource(url=str(self.git_dir), needs_token=False)

    def _issue_files(self) -> dict[int, Path]:
        found: dict[int, Path] = {}
        for path in sorted((self.directory / "issues").glob("*.md")):
            found[self._read_issue(path).number] = path
        return found

    def _read_issue(self, path: Path) -> Issue:
        text = path.read_text(encoding="utf-8")
        meta: dict[str, Any] = {}
        body = text
        if text.startswith("---\n"):
            header, _, body = text[4:].partition("\n---\n")
            try:
                loaded = yamlsafe.load(header).data
            except yamlsafe.LoadError as error:
                raise ForgeError(f"{path}: invalid front matter: {error}") from None
            meta = loaded if isinstance(loaded, dict) else {}
        number = int(meta.get("id", path.stem))
        labels = meta.get("labels") or []
        blocked = meta.get("blocked_by") or []
        return Issue(
            number=number,
            title=str(meta.get("title", path.stem)),
            body=body.lstrip("\n"),
            labels=tuple(str(label) for label in labels),
            author=str(meta.get("author", "local")),
            url=path.as_uri(),
            state=str(meta.get("state", "open")),
            milestone=str(meta["milestone"]) if meta.get("milestone") is not None else None,
            blocked_by=tuple(int(b) for b in (blocked if isinstance(blocked, list) else [blocked])),
        )

    def issue(self, number: int) -> Issue:
        path = self._issue_files().get(number)
        if path is None:
            raise ForgeError(f"local forge {self.directory}: no issue {number} in issues/")
        issue = self._read_issue(path)
        with self._records() as records:
            extra = records.get("labels", {}).get(str(number))
        if extra is not None:
            issue = Issue(**{**issue.__dict__, "labels": tuple(extra)})
        return issue

    def issues(self, state: str = "open") -> list[Issue]:
        found = [self.issue(number) for number in self._issue_files()]
        return [issue for issue in found if state in ("all", issue.state)]

    def comments(self, issue: int) -> list[Comment]:
        with self._records() as records:
            return [
                Comment(c["id"], c["body"], self._url("comment", c["id"]), "pipe")
                for c in records["comments"]
                if c["issue"] == issue
            ]

    def find_pull_request(self, head: str) -> PullRequest | None:
        with self._records() as records:
            for pull in records["pulls"].values():
                if pull["head"] == head and pull["state"] == "open":
                    return self._pull(pull)
        return None

    def pull_request(self, number: int) -> PullRequest:
        with self._records() as records:
            if str(number) not in records["pulls"]:
                raise ForgeError(f"local forge {self.directory}: no pull request {number}")
            return self._pull(records["pulls"][str(number)])

    def _pull(self, pull: dict[str, Any]) -> PullRequest:
        return PullRequest(
            number=pull["number"],
            url=self._url("pull", pull["number"]),
            title=pull["title"],
            body=pull["body"],
            head=pull["head"],
            base=pull["base"],
            draft=pull["draft"],
            state=pull["state"],
            labels=tuple(pull.get("labels", [])),
            head_sha=gitrefs.read_branch(self.git_dir, pull["head"]) or "",
        )

    def pull_request_files(self, number: int) -> list[FileDiff]:
        pull = self.pull_request(number)
        numstat = self._git("diff", "--numstat", f"{pull.base}...{pull.head}")
        files = []
        for line in numstat.splitlines():
            added, deleted, path = line.split("\t", 2)
            patch = self._git("diff", f"{pull.base}...{pull.head}", "--", path)
            hunks = patch[patch.find("\n@@") + 1 :] if "\n@@" in patch else ""
            files.append(
                FileDiff(
                    path, "modified", int(added) if added != "-" else 0, int(deleted) if deleted != "-" else 0, hunks
                )
            )
        return files

    def _git(self, *args: str) -> str:
        """Read-only git on repo.git with nothing configurable that could run a program."""
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_TERMINAL_PROMPT": "0",
        }
        command = (
            [
                "git",
                f"--git-dir={self.git_dir}",
                "-c",
                "core.fsmonitor=false",
                "-c",
                "diff.external=",
                *args[:1],
                "--no-ext-diff",
                "--no-textconv",
                *args[1:],
            ]
            if args[0] == "diff"
            else ["git", f"--git-dir={self.git_dir}", *args]
        )
        result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
        if result.returncode != 0:
            raise ForgeError(f"local forge {self.directory}: git {args[0]} failed: {result.stderr.strip()}")
        return result.stdout

    def releases(self) -> list[Release]:
        with self._records() as records:
            return [self._release(r) for r in records["releases"]]

    def _release(self, release: dict[str, Any]) -> Release:
        return Release(
            release["id"],
            release["tag"],
            release["name"],
            release["body"],
            release["draft"],
            self._url("release", release["id"]),
        )

    def branch_sha(self, branch: str) -> str | None:
        return gitrefs.read_branch(self.git_dir, branch)

    # ---- writes ------------------------------------------------------------------------------

    def create_issue(
        self, title: str, body: str, labels: list[str], milestone: str | None, blocked_by: list[int]
    ) -> Issue:
        """A new issues/N.md (N after every issue and pull request), written atomically."""
        import json as _json

        with self._records() as records:
            number = max([0, *self._issue_files(), *(int(n) for n in records["pulls"])]) + 1
            meta = {"id": number, "title": title, "labels": labels, "blocked_by": blocked_by}
            if milestone:
                meta["milestone"] = milestone
            header = "".join(f"{key}: {_json.dumps(value)}\n" for key, value in meta.items())
            folder = self.directory / "issues"
            folder.mkdir(exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".issue-")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(f"---\n{header}---\n{body}\n")
            os.replace(temporary, folder / f"{number}.md")
        return self.issue(number)

    def create_comment(self, issue: int, body: str) -> Comment:
        with self._records() as records:
            comment_id = self._next(records)
            records["comments"].append({"id": comment_id, "issue": issue, "body": body})
        return Comment(comment_id, body, self._url("comment", comment_id), "pipe")

    def update_comment(self, issue: int, comment_id: int, body: str) -> Comment:
        with self._records() as records:
            for comment in records["comments"]:
                if comment["id"] == comment_id:
                    comment["body"] = body
                    return Comment(comment_id, body, self._url("comment", comment_id), "pipe")
        raise ForgeError(f"local forge {self.directory}: no comment {comment_id}")

    def delete_comment(self, issue: int, comment_id: int) -> None:
        with self._records() as records:
            records["comments"] = [c for c in records["comments"] if c["id"] != comment_id]

    def create_pull_request(self, title: str, body: str, head: str, base: str, draft: bool) -> PullRequest:
        if gitrefs.read_branch(self.git_dir, head) is None:
            raise ForgeError(f"local forge {self.directory}: branch {head} does not exist in repo.git")
        issues = set(self._issue_files())
        with self._records() as records:
            if any(p["head"] == head and p["state"] == "open" for p in records["pulls"].values()):
                raise ForgeError(f"local forge {self.directory}: a pull request from {head} is already open")
            # Issues and pull requests share one numbering, as on GitHub.
            number = max([0, *issues, *(int(n) for n in records["pulls"])]) + 1
            pull = {
                "number": number,
                "title": title,
                "body": body,
                "head": head,
                "base": base,
                "draft": draft,
                "state": "open",
                "labels": [],
            }
            records["pulls"][str(number)] = pull
        return self._pull(pull)

    def update_pull_request(
        self, number: int, *, title: str | None = None, body: str | None = None, state: str | None = None
    ) -> PullRequest:
        with self._records() as records:
            pull = records["pulls"][str(number)]
            for key, value in (("title", title), ("body", body), ("state", state)):
                if value is not None:
                    pull[key] = value
        return self._pull(pull)

    def request_reviewers(self, number: int, reviewers: list[str]) -> None:
        with self._records() as records:
            records["pulls"][str(number)]["reviewers"] = reviewers

    def create_review(self, number: int, body: str, event: str, comments: list[ReviewComment]) -> int:
        with self._records() as records:
            review_id = self._next(records)
            records["reviews"].append(
                {
                    "id": review_id,
                    "pull": number,
                    "body": body,
                    "event": event,
                    "comments": [c.__dict__ for c in comments],
                }
            )
        return review_id

    def reviews(self, number: int) -> list[tuple[int, str]]:
        with self._records() as records:
            return [(r["id"], r["body"]) for r in records["reviews"] if r["pull"] == number]

    def _labels(self, number: int) -> list[str]:
        with self._records() as records:
            if str(number) in records["pulls"]:
                return list(records["pulls"][str(number)].get("labels", []))
        return list(self.issue(number).labels)

    def _set_labels(self, number: int, labels: list[str]) -> None:
        with self._records() as records:
            if str(number) in records["pulls"]:
                records["pulls"][str(number)]["labels"] = labels
            else:
                records.setdefault("labels", {})[str(number)] = labels

    def add_labels(self, issue: int, labels: list[str]) -> None:
        self._set_labels(issue, list(dict.fromkeys(self._labels(issue) + labels)))

    def remove_label(self, issue: int, label: str) -> None:
        self._set_labels(issue, [name for name in self._labels(issue) if name != label])

    def create_release(self, tag: str, name: str, body: str, draft: bool, target: str | None) -> Release:
        with self._records() as records:
            if any(r["tag"] == tag for r in records["releases"]):
                raise ForgeError(f"local forge {self.directory}: a release for {tag} exists")
            release = {"id": self._next(records), "tag": tag, "name": name, "body": body, "draft": draft}
            records["releases"].append(release)
        return self._release(release)

    def update_release(self, release_id: int, *, name: str, body: str) -> Release:
        with self._records() as records:
            for release in records["releases"]:
                if release["id"] == release_id:
                    release.update(name=name, body=body)
                    return self._release(release)
        raise ForgeError(f"local forge {self.directory}: no release {release_id}")

    def delete_release(self, release_id: int) -> None:
        with self._records() as records:
            records["releases"] = [r for r in records["releases"] if r["id"] != release_id]

    def set_branch(self, branch: str, sha: str) -> None:
        gitrefs.write_branch(self.git_dir, branch, sha)

    def delete_branch(self, branch: str) -> None:
        gitrefs.delete_branch(self.git_dir, branch)
