"""The run tree of a parent run (milestone, spec): its children as a dependency graph laid out in
layers (a child sits one layer right of the deepest item it needs), coloured by status, with the
overall progress as counts and percentages. This layout is what a page shows without scripts; in
the browser the vendored dagre (runner/ui/static/vendor) lays the same nodes and edges out again,
with fewer crossings.

The items and what each needs come from the parent's step outputs: a `children` JSON list whose
items carry `id` and `needs` (github/issues) and one whose items carry `key`, `status`, `run`,
`reason` and `pull_request` (the `pipeline` step, once it finished). Child runs already in the store
give the status and link of the ones still going.
"""

from __future__ import annotations

import json
from typing import Any

from runner.store import RunRecord

NODE_WIDTH, NODE_HEIGHT, GAP_X, GAP_Y = 150, 44, 60, 16  # px
BUCKETS = ("done", "running", "waiting", "failed", "skipped")
_BUCKET = {
    "succeeded": "done",
    "success": "done",
    "running": "running",
    "pending": "waiting",
    "waiting": "waiting",
    "failed": "failed",
    "failure": "failed",
    "cancelled": "failed",
    "interrupted": "failed",
    "skipped": "skipped",
}


def _items(outputs: list[dict[str, str]]) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    needs: dict[str, list[str]] = {}
    results: dict[str, dict[str, Any]] = {}
    for out in outputs:
        try:
            listed = json.loads(out.get("children", ""))
        except ValueError:
            continue
        for item in listed if isinstance(listed, list) else []:
            if not isinstance(item, dict):
                continue
            if "id" in item and isinstance(item.get("needs"), list):
                needs[str(item["id"])] = [str(n) for n in item["needs"]]
            elif "key" in item:
                results[str(item["key"])] = item
    return needs, results


def run_tree(step_outputs: list[dict[str, str]], children: list[RunRecord]) -> dict[str, Any] | None:
    """The graph of a parent run: {"nodes": [{key, status, bucket, run, pr, reason, x, y}],
    "edges": [{from, to, x1, y1, x2, y2}], "counts": {bucket: n}, "percent": {bucket: %}, "total", "done_percent",
    "width", "height"}; None for a run with no children."""
    needs, results = _items(step_outputs)
    runs = {run.child_key or run.id: run for run in children}  # the newest run per key wins
    keys = list(dict.fromkeys([*needs, *results, *runs]))
    if not keys:
        return None
    nodes: dict[str, dict[str, Any]] = {}
    for key in keys:
        result, run = results.get(key, {}), runs.get(key)
        status = run.status if run is not None else str(result.get("status") or "pending")
        if run is None and result.get("status") == "skipped":
            status = "skipped"
        nodes[key] = {
            "key": key,
            "status": status,
            "bucket": _BUCKET.get(status, "waiting"),
            "run": run.id if run is not None else str(result.get("run") or ""),
            "pr": str(result.get("pull_request") or ""),
            "reason": str(result.get("reason") or (run.error if run is not None else "") or ""),
        }
    layer: dict[str, int] = {}

    def depth(key: str, seen: frozenset[str]) -> int:
        if key not in layer:
            inside = [n for n in needs.get(key, []) if n in nodes and n not in seen]
            layer[key] = 1 + max((depth(n, seen | {key}) for n in inside), default=-1)
        return layer[key]

    rows: dict[int, int] = {}
    for key in keys:
        column = depth(key, frozenset())
        node = nodes[key]
        node["x"] = column * (NODE_WIDTH + GAP_X)
        node["y"] = rows.get(column, 0) * (NODE_HEIGHT + GAP_Y)
        rows[column] = rows.get(column, 0) + 1
    edges = [
        {
            "from": need,
            "to": key,
            "x1": nodes[need]["x"] + NODE_WIDTH,
            "y1": nodes[need]["y"] + NODE_HEIGHT / 2,
            "x2": nodes[key]["x"],
            "y2": nodes[key]["y"] + NODE_HEIGHT / 2,
        }
        for key in keys
        for need in needs.get(key, [])
        if need in nodes
    ]
    counts = {bucket: sum(1 for node in nodes.values() if node["bucket"] == bucket) for bucket in BUCKETS}
    total = len(nodes)
    return {
        "nodes": list(nodes.values()),
        "edges": edges,
        "counts": counts,
        "percent": {bucket: round(100 * count / total) for bucket, count in counts.items()},
        "total": total,
        "width": (max(layer.values()) + 1) * (NODE_WIDTH + GAP_X),
        "height": max(rows.values()) * (NODE_HEIGHT + GAP_Y),
        "node_width": NODE_WIDTH,
        "node_height": NODE_HEIGHT,
    }
