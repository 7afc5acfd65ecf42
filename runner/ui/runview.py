"""The run page's summaries, read from what a run stored: the header (the issue it worked on, the
branch and pull request it produced, verification badges, agent cost), repeat groups nested with
their iterations, git internals folded into one line of changes, and the timeline (Gantt) of
attempts as SVG geometry.

Steps are recognised by what they output (an issue: number, title and url; a pull request: number,
url and created; a checkout: branch, base and mode; verify: checks), so a pipeline of any name
gets its header. Repeat groups come from the pipeline definition the run stored.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import yaml

from runner.store import AttemptRecord, ChangeRecord, RunRecord, Store

TIMELINE_WIDTH = 760  # px of the time axis in the Gantt
ROW = 22  # px per row of the Gantt


def header(run: RunRecord, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """What the run worked on and produced: {"issue": {number, title, url} | None, "pr": {number,
    url, created} | None, "branch": str, "badges": [{name, status}], "cost": str}."""
    issue = pr = None
    branch, badges, cost = "", [], 0.0
    for step in steps:
        out = step["outputs"]
        if {"number", "title", "url", "body"} <= out.keys() and issue is None:
            issue = {"number": out["number"], "title": out["title"], "url": out["url"]}
        elif {"number", "url", "created"} <= out.keys() and out.get("url"):
            pr = {"number": out["number"], "url": out["url"], "created": out["created"] == "true"}
        if {"branch", "base", "mode"} <= out.keys():
            branch = out["branch"]
        if "checks" in out:
            badges = [
                {"name": str(check.get("name", "?")), "status": str(check.get("status", "?"))}
                for check in _json_list(out["checks"])
                if isinstance(check, dict)
            ]
        with contextlib.suppress(ValueError):
            cost += float(out.get("cost_usd") or 0)
    if issue is None and isinstance(run.inputs.get("issue"), (str, int)):
        issue = {"number": str(run.inputs["issue"]), "title": "", "url": ""}
    return {"issue": issue, "pr": pr, "branch": branch, "badges": badges, "cost": f"${cost:.4f}" if cost else ""}


def _json_list(text: str) -> list[Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def repeat_groups(store: Store, run_id: str) -> dict[str, str]:
    """Inner step id -> its repeat group's id, from the pipeline definition the run stored."""
    try:
        document = yaml.safe_load(store.pipeline_definition(run_id))
    except (yaml.YAMLError, Exception):  # an old or odd definition: no nesting, never a page error
        return {}
    groups: dict[str, str] = {}
    for step in document.get("steps", []) if isinstance(document, dict) else []:
        repeat = step.get("repeat") if isinstance(step, dict) else None
        if isinstance(repeat, dict):
            for inner in repeat.get("steps", []):
                if isinstance(inner, dict) and isinstance(inner.get("id"), str):
                    groups[inner["id"]] = str(step.get("id"))
    return groups


def nest(steps: list[dict[str, Any]], groups: dict[str, str]) -> list[dict[str, Any]]:
    """Steps in order with each repeat group's inner steps moved under it as `iterations`
    ([{number, steps}]); a group's own record (or, while it runs, a stand-in) comes first."""
    top: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for step in steps:
        group = groups.get(step["id"])
        if group is None:
            step.setdefault("iterations", [])
            by_id.setdefault(step["id"], step)
            top.append(step)
            continue
        parent = by_id.get(group)
        if parent is None:
            parent = {**_stand_in(group), "iterations": []}
            by_id[group] = parent
            top.append(parent)
        iterations = parent["iterations"]
        if not iterations or iterations[-1]["number"] != step["iteration"]:
            iterations.append({"number": step["iteration"], "steps": []})
        iterations[-1]["steps"].append(step)
    for step in top:
        step["iterations"].sort(key=lambda item: item["number"])
    return top


def _stand_in(group: str) -> dict[str, Any]:
    return {
        "id": group,
        "iteration": 0,
        "outcome": "running",
        "conclusion": "running",
        "error": "",
        "outputs": {},
        "changes": [],
        "attempts": [],
    }


def fold_git(changes: list[ChangeRecord]) -> tuple[list[ChangeRecord], str]:
    """(changes outside git's internals, one line for the rest: "git: 54 internal files · refs:
    +fix/issue-1"); the line is "" when there were none."""
    kept: list[ChangeRecord] = []
    internal, refs, commits = 0, [], []
    for change in changes:
        name = str(change.data.get("ref") or change.target).removeprefix("refs/heads/").removeprefix("refs/remotes/")
        if change.type == "commit":
            commits.append(name)
        elif change.type in ("branch_create", "branch_delete", "ref_update"):
            if name != "HEAD":  # HEAD follows the branch checked out: its move says nothing more
                refs.append({"branch_create": "+", "branch_delete": "-"}.get(change.type, "~") + name)
        elif change.target == ".git" or change.target.startswith(".git/"):
            internal += 1
        else:
            kept.append(change)
    parts = [f"git: {internal} internal file(s)"] if internal else []
    parts += [f"refs: {' '.join(refs)}"] if refs else []
    parts += [f"commit on {' '.join(commits)}"] if commits else []
    return kept, " · ".join(parts)


def timeline(
    attempts: list[AttemptRecord], waits: list[tuple[str, int, float, float | None]], now: float
) -> dict[str, Any]:
    """The Gantt of a run: a row per step (and iteration), a bar per attempt (x, width in px of
    TIMELINE_WIDTH; its status and number, so a retry shows as a second bar) and a hatched bar per
    wait (`waits`: step, iteration, start, end or None). Times in seconds since the first start."""
    starts = [a.started_at for a in attempts] + [w[2] for w in waits]
    if not starts:
        return {"rows": [], "width": TIMELINE_WIDTH, "height": 0, "span": 0.0, "ticks": []}
    origin = min(starts)
    ends = [a.finished_at or now for a in attempts] + [w[3] or now for w in waits]
    span = max(max(ends) - origin, 0.001)
    scale = TIMELINE_WIDTH / span
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for attempt in attempts:
        row = rows.setdefault(
            (attempt.step_id, attempt.iteration),
            {"label": attempt.step_id + (f" #{attempt.iteration}" if attempt.iteration else ""), "bars": []},
        )
        start = attempt.started_at - origin
        end = (attempt.finished_at or now) - origin
        row["bars"].append(
            {
                "x": round(start * scale, 1),
                "width": max(round((end - start) * scale, 1), 2.0),
                "status": attempt.status,
                "title": f"{attempt.step_id} attempt {attempt.number}: {attempt.status}, {end - start:.1f} s",
                "number": attempt.number,
                "kind": "attempt",
            }
        )
    for step, iteration, begin, finish in waits:
        row = rows.setdefault((step, iteration), {"label": step + (f" #{iteration}" if iteration else ""), "bars": []})
        start, end = begin - origin, (finish or now) - origin
        row["bars"].append(
            {
                "x": round(start * scale, 1),
                "width": max(round((end - start) * scale, 1), 2.0),
                "status": "waiting",
                "title": f"{step} waited {end - start:.1f} s",
                "number": 0,
                "kind": "wait",
            }
        )
    ordered = list(rows.values())
    for index, row in enumerate(ordered):
        row["y"] = index * ROW
    ticks = [{"x": round(TIMELINE_WIDTH * i / 4, 1), "label": f"{span * i / 4:.1f} s"} for i in range(5)]
    return {"rows": ordered, "width": TIMELINE_WIDTH, "height": len(ordered) * ROW, "span": span, "ticks": ticks}
