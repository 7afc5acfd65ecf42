"""Protected paths: globs a step's changes must not touch (default `.github/workflows/**`: a
workflow a push carries runs with the repository's secrets). The agent step checks them on what
it changed and would commit (runner/actions/agent.py); git/commit checks them again on what it
would commit and what the branch would push (runner/actions/git.py), since later steps (verify
runs code the agent wrote) can change the work tree too.

A glob is matched with `fnmatch` against the path relative to the workspace root, `*` matching
`/` as well (so `.github/workflows/**` and `.github/workflows/*` both cover the whole directory).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

PROTECT = (".github/workflows/**",)


def protected_paths(paths: Iterable[str], globs: Sequence[str] = ()) -> list[str]:
    """The paths of `paths` (workspace-relative, `/`-separated) that match one of `globs` (empty:
    PROTECT), sorted and without repeats."""
    patterns = list(globs) or list(PROTECT)
    return sorted({path for path in paths if any(fnmatch.fnmatch(path, glob) for glob in patterns)})
