"""runner.threads: the state machine as data, the pipeline's `thread:` key (validated with file, line and
key; rendered for a run), thread references."""

from __future__ import annotations

import itertools

import pytest

from runner.errors import TemplateError, ValidationFailed
from runner.names import ThreadState
from runner.pipeline.model import ThreadBinding
from runner.pipeline.spec import parse_pipeline
from runner.threads import TRANSITIONS, allowed, is_thread_reference
from runner.threads.binding import ThreadTarget, render_target
from runner.threads.machine import path_to

P, W, F, A = ThreadState.PLANNING, ThreadState.WORKING, ThreadState.WAITING_FOR_FEEDBACK, ThreadState.ARCHIVED


def test_the_machine_allows_exactly_the_contract_moves() -> None:
    moves = {(a, b) for a, b in itertools.product(ThreadState, repeat=2) if allowed(a, b)}
    assert moves == {(P, W), (W, F), (W, P), (F, P), (P, A), (W, A), (F, A)}
    assert set(TRANSITIONS) == set(ThreadState)


@pytest.mark.parametrize(("start", "to"), [(F, W), (P, F), (A, P), (A, W), (W, W)])
def test_moves_outside_the_machine_are_refused(start: ThreadState, to: ThreadState) -> None:
    assert not allowed(start, to)


def test_paths_go_through_planning_and_never_leave_archived() -> None:
    assert path_to(F, W) == [P, W]
    assert path_to(P, W) == [W]
    assert path_to(W, W) == []
    assert path_to(F, F) == []
    with pytest.raises(ValueError, match="cannot go from archived to working"):
        path_to(A, W)


def test_a_binding_renders_with_inputs_and_falls_back_to_the_forge_repository() -> None:
    binding = ThreadBinding(repo="{{ inputs.repo }}", issue="{{ inputs.issue }}")
    assert render_target(binding, {"repo": "octo/demo", "issue": 4}, "other/x") == ThreadTarget("octo/demo", 4, None)
    assert render_target(binding, {"repo": "", "issue": "4"}, "other/x") == ThreadTarget("other/x", 4, None)
    by_pull = ThreadBinding(repo="octo/demo", pull_request="{{ inputs.pr }}")
    assert render_target(by_pull, {"pr": 9}, "") == ThreadTarget("octo/demo", None, 9)


@pytest.mark.parametrize("issue", ["", "x", "0", "-2", "1.5"])
def test_an_issue_that_is_not_a_positive_number_is_refused(issue: str) -> None:
    with pytest.raises(ValueError, match=r"thread\.issue must be a positive number"):
        render_target(ThreadBinding(repo="o/r", issue="{{ inputs.issue }}"), {"issue": issue}, "")


def test_an_empty_repository_without_a_forge_is_refused_and_templates_see_only_inputs() -> None:
    with pytest.raises(ValueError, match=r"thread\.repo is empty"):
        render_target(ThreadBinding(repo="", issue=1), {}, "")
    with pytest.raises(TemplateError):
        render_target(ThreadBinding(repo="{{ steps.x.outputs.repo }}", issue=1), {}, "")


@pytest.mark.parametrize(
    ("reference", "thread"),
    [
        ("t-0123456789ab", True),
        ("t-01", True),
        ("octo/demo#12", True),
        ("forge#1", True),
        ("20261123-140000-abcdef", False),
        ("latest", False),
    ],
)
def test_thread_references_are_told_from_run_ids(reference: str, thread: bool) -> None:
    assert is_thread_reference(reference) is thread


def _problems(thread: str) -> list[str]:
    text = f"version: 1\nname: t\ninputs:\n  issue: {{type: integer}}\n{thread}\nsteps:\n  - id: a\n    run: echo\n"
    try:
        parse_pipeline(text.encode(), "p.yml")
    except ValidationFailed as failed:
        return [str(problem) for problem in failed.diagnostics]
    return []


def test_a_valid_thread_key_becomes_the_pipelines_binding() -> None:
    text = 'version: 1\nname: t\nthread: {repo: o/r, pull-request: 4, instructions: "{{ steps.a.outputs.x }}"}\n'
    pipeline = parse_pipeline((text + "steps:\n  - id: a\n    run: echo\n").encode(), "p.yml")
    assert pipeline.thread == ThreadBinding("o/r", None, 4, "{{ steps.a.outputs.x }}")
    assert _problems('thread: {repo: "{{ inputs.repo }}", issue: "{{ inputs.issue }}"}') == [
        "p.yml:5:16: thread.repo: unknown input 'repo'"
    ]


@pytest.mark.parametrize(
    ("thread", "problem"),
    [
        ("thread: {repo: o/r}", "p.yml:5:9: thread: give exactly one of 'issue' and 'pull-request'"),
        ("thread: {repo: o/r, issue: 1, pull-request: 2}", "p.yml:5:9: thread: give exactly one of"),
        ("thread: {issue: 1}", "p.yml:5:1: thread: missing required key 'repo'"),
        ("thread: {repo: o/r, issue: 1, colour: red}", "p.yml:5:31: thread.colour: unknown key 'colour'"),
        ('thread: {repo: "{{ env.R }}", issue: 1}', "thread.repo: 'env' cannot be used here: thread.repo sees only"),
        ('thread: {repo: o/r, issue: "{{ steps.a.outputs.n }}"}', "thread.issue: 'steps.a' cannot be used here"),
        (
            'thread: {repo: o/r, issue: "{{ inputs.isue }}"}',
            "thread.issue: unknown input 'isue' (did you mean 'issue'?)",
        ),
        ('thread: {repo: o/r, issue: 1, instructions: "{{ steps.b.outputs.x }}"}', "'steps.b' does not refer to"),
    ],
)
def test_thread_key_problems_name_file_line_and_key(thread: str, problem: str) -> None:
    found = _problems(thread)
    assert any(problem in line for line in found), found
