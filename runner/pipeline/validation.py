"""Checks of a loaded pipeline document: the JSON schema, then what a schema cannot say.

Every problem becomes a `Diagnostic` carrying file, line, column, key path and a one-line message;
callers collect them all so a file's problems are reported at once.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from pathlib import Path as FilePath
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from runner.errors import Diagnostic, TemplateError
from runner.pipeline.expressions import CONTEXT_ROOTS, STATUS_FUNCTIONS, analyse, script_problems
from runner.pipeline.inputs import convert
from runner.pipeline.yamlsafe import Document, Path
from runner.resources import data_path, load_schema

_ALLOWED_NAMES = CONTEXT_ROOTS | STATUS_FUNCTIONS


def format_path(path: Path) -> str:
    """`("steps", 3, "retry")` -> `steps[3].retry`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Reporter:
    def __init__(self, file: str, doc: Document) -> None:
        self.file = file
        self.doc = doc
        self.found: list[Diagnostic] = []

    def add(self, path: Path, message: str, *, key: bool = False) -> None:
        mark = self.doc.mark(path, key=key)
        self.found.append(Diagnostic(self.file, mark.line, mark.column, format_path(path), message))


def check_schema(file: str, doc: Document, schema: str = "pipeline.schema.json") -> list[Diagnostic]:
    """Validate against the shipped schema named `schema` (default: schemas/pipeline.schema.json;
    `pipe serve`'s config uses serve.schema.json); one diagnostic per problem."""
    reporter = _Reporter(file, doc)
    validator = jsonschema.Draft202012Validator(load_schema(schema))
    for error in validator.iter_errors(doc.data):
        _report_schema_error(reporter, error)
    return sorted(set(reporter.found))


def _report_schema_error(reporter: _Reporter, error: ValidationError) -> None:
    path: Path = tuple(error.absolute_path)
    instance: Any = error.instance
    validator_value: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom = schema.get("x-message")
    if "propertyNames" in error.schema_path:
        key_path = path + (instance,)
        message = custom.format(value=repr(instance)) if custom else error.message
        reporter.add(key_path, message, key=True)
        return
    if error.validator == "additionalProperties":
        known = schema.get("properties", {})
        for extra in instance:
            if extra not in known:
                reporter.add(path + (extra,), f"unknown key '{extra}'{_suggest(extra, known)}", key=True)
        return
    if error.validator == "oneOf" and custom and not isinstance(instance, dict):
        return  # the type error for the same value says it better
    if custom and error.validator in ("pattern", "oneOf", "enum", "not"):
        message = custom.format(value=repr(instance))
        if error.validator == "enum":
            message += _suggest(instance, schema.get("enum", []))
        reporter.add(path, message)
        return
    if error.validator in ("oneOf", "anyOf") and error.context:
        _report_schema_error(reporter, best_match(error.context))
        return
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        reporter.add(path, f"missing required key '{missing}'", key=True)
        return
    if error.validator == "dependentRequired":
        needed = error.message.split("'")[1]
        dependant = next(k for k, v in validator_value.items() if needed in v and k in instance)
        reporter.add(path + (dependant,), f"'{dependant}' needs '{needed}'", key=True)
        return
    if error.validator == "enum":
        reporter.add(path, f"{error.message}{_suggest(instance, validator_value)}")
        return
    reporter.add(path, error.message)


def check_semantics(file: str, doc: Document) -> list[Diagnostic]:
    """Checks beyond the schema, on a document that passed it: unique step ids, templates that
    parse, use only known names and refer to declared inputs and earlier steps, sane inputs."""
    reporter = _Reporter(file, doc)
    data = _dict(doc.data)
    inputs = _dict(data.get("inputs"))
    _check_inputs(reporter, inputs)
    pipeline_level: list[Path] = [("env", k) for k in _dict(data.get("env"))]
    concurrency = data.get("concurrency")
    if isinstance(concurrency, str):
        pipeline_level.append(("concurrency",))
    elif isinstance(concurrency, dict):
        pipeline_level.append(("concurrency", "group"))
    for report_key, field in (("issue-comment", "issue"), ("webhook", "url")):
        if field in _dict(_dict(data.get("report")).get(report_key)):
            pipeline_level.append(("report", report_key, field))
    for path in pipeline_level:
        _check_template(reporter, path, _get(data, path), inputs, earlier=None, expression=False)
    _check_thread(reporter, _dict(data.get("thread")), inputs, _ids(data.get("steps")))
    on_failure = _dict(data.get("on-failure"))
    if on_failure.get("rollback") == "partial" and "steps" not in on_failure:
        reporter.add(("on-failure",), "'steps' is required with rollback: partial")
    seen: dict[str, int] = {}
    _check_steps(reporter, data.get("steps"), ("steps",), inputs, seen)
    _check_agent_credentials(reporter, data.get("steps"), ("steps",), data.get("credentials") or [])
    return sorted(set(reporter.found))


def _check_thread(reporter: _Reporter, thread: dict[str, Any], inputs: dict[str, Any], steps: set[str]) -> None:
    """`thread:` names its thread before any step runs: repo, issue and pull-request read only
    `inputs`; `instructions` is rendered at the run's end and may read any step."""
    for key in ("repo", "issue", "pull-request"):
        source = thread.get(key)
        if not isinstance(source, str) or "{" not in source:
            continue
        try:
            undeclared, _, _ = analyse(source, expression=False)
        except TemplateError:
            undeclared = set()  # _check_template reports it
        for name in sorted(undeclared & (_ALLOWED_NAMES - {"inputs"})):
            reporter.add(("thread", key), f"'{name}' cannot be used here: thread.{key} sees only `inputs`")
        _check_template(reporter, ("thread", key), source, inputs, earlier=None, expression=False)
    if "instructions" in thread:
        _check_template(reporter, ("thread", "instructions"), thread["instructions"], inputs, steps, expression=False)


def _check_agent_credentials(reporter: _Reporter, steps: Any, base: Path, inherited: Any) -> None:
    """An agent step never holds the GitHub token (docs/architecture.md, Principles 12) unless it says so with
    `with: {unsafe-github-token: true}`: its credentials are its own `credentials:`, else the
    pipeline's."""
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        path = base + (index,)
        repeat = _dict(step.get("repeat"))
        if repeat:
            _check_agent_credentials(reporter, repeat.get("steps"), path + ("repeat", "steps"), inherited)
        if step.get("uses") != "agent":
            continue
        credentials = step.get("credentials", inherited)
        if "github" in (credentials or []) and _dict(step.get("with")).get("unsafe-github-token") is not True:
            where = path + ("credentials",) if "credentials" in step else path + ("uses",)
            reporter.add(
                where,
                "an agent step does not get the GitHub token: give it `credentials: []` "
                "(or, knowing the risk, `with: {unsafe-github-token: true}`)",
            )


def _dict(value: Any) -> dict[str, Any]:
    """`value` if it is a mapping, else an empty one: semantic checks also run on documents that
    failed the schema, so every shape is checked before use."""
    return value if isinstance(value, dict) else {}


def _get(data: Any, path: Path) -> Any:
    for part in path:
        data = data[part]
    return data


def _check_inputs(reporter: _Reporter, inputs: dict[str, Any]) -> None:
    for name, raw_spec in inputs.items():
        spec = _dict(raw_spec)
        kind = spec.get("type", "string")
        if kind not in ("string", "integer", "number", "boolean"):
            continue
        for key in ("default",):
            if key in spec:
                try:
                    convert(spec[key], kind)
                except ValueError as error:
                    reporter.add(("inputs", name, key), str(error))
        enum: list[Any] = spec["enum"] if isinstance(spec.get("enum"), list) else []
        for index, value in enumerate(enum):
            try:
                convert(value, kind)
            except ValueError as error:
                reporter.add(("inputs", name, "enum", index), str(error))
        if "default" in spec and enum and spec["default"] not in enum:
            reporter.add(("inputs", name, "default"), f"{spec['default']!r} is not one of the enum values")


def _ids(steps: Any) -> set[str]:
    found: set[str] = set()
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and isinstance(step.get("id"), str):
            found.add(step["id"])
            found |= _ids(_dict(step.get("repeat")).get("steps"))
    return found


def _check_steps(
    reporter: _Reporter,
    steps: Any,
    base: Path,
    inputs: dict[str, Any],
    seen: dict[str, int],
    group: set[str] | None = None,
) -> None:
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        path = base + (index,)
        step_id = step.get("id")
        earlier = set(seen) | (group or set())
        if isinstance(step_id, str):
            if step_id in seen:
                reporter.add(path + ("id",), f"duplicate step id '{step_id}' (first used at line {seen[step_id]})")
            else:
                seen[step_id] = reporter.doc.mark(path + ("id",)).line
        for key, expression in (("name", False), ("run", False), ("if", True)):
            if isinstance(step.get(key), str):
                _check_template(reporter, path + (key,), step[key], inputs, earlier, expression=expression)
        if step.get("uses") == "agent":
            schema_path = path + ("with", "output-schema")
            _check_output_schema(reporter, schema_path, _dict(step.get("with")).get("output-schema"))
        for sub_path, value in _strings(_dict(step.get("with")), path + ("with",)):
            _check_template(reporter, sub_path, value, inputs, earlier, expression=False)
        for name, value in _dict(step.get("env")).items():
            _check_template(reporter, path + ("env", name), value, inputs, earlier, expression=False)
        repeat = _dict(step.get("repeat"))
        if repeat:
            # In a repeat group every step of the group is readable: a later one holds the outputs
            # of the previous iteration (read it with steps.get('ID') for the first).
            group_ids = _ids(repeat.get("steps"))
            _check_steps(reporter, repeat.get("steps"), path + ("repeat", "steps"), inputs, seen, group_ids)
            if "until" in repeat:
                group_scope = set(seen)
                _check_template(
                    reporter, path + ("repeat", "until"), repeat["until"], inputs, group_scope, expression=True
                )


def _check_output_schema(reporter: _Reporter, path: Path, reference: Any) -> None:
    """An agent's `output-schema` must name a readable JSON schema: a file beside the pipeline or a
    shipped one (as runner/actions/agent.py looks it up); templated references are checked at run time."""
    if not isinstance(reference, str) or "{" in reference:
        return
    base = FilePath(reporter.file).resolve().parent
    candidates = [base / reference, data_path("schemas") / FilePath(reference).name]
    found = next((candidate for candidate in candidates if candidate.is_file()), None)
    if found is None:
        reporter.add(path, f"output-schema {reference!r} not found (looked in {base} and pipe's schemas/)")
        return
    try:
        if found.stat().st_size > 1024 * 1024:
            raise ValueError("the file is larger than 1 MiB")
        jsonschema.Draft202012Validator.check_schema(json.loads(found.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reporter.add(path, f"output-schema {reference!r} is not readable JSON: {error}")
    except jsonschema.SchemaError as error:
        reporter.add(path, f"output-schema {reference!r} is not a valid JSON schema: {error.message}")


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, path + (index,))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, path + (key,))


def _check_template(
    reporter: _Reporter,
    path: Path,
    source: Any,
    inputs: dict[str, Any],
    earlier: set[str] | None,
    *,
    expression: bool,
) -> None:
    """`earlier` is the set of step ids a template may read; None where no step has run yet."""
    if not isinstance(source, str) or ("{" not in source and not expression):
        return
    try:
        undeclared, references, problems = analyse(source, expression=expression)
    except TemplateError as error:
        reporter.add(path, str(error))
        return
    if path[-1] == "run" and not expression:
        problems += script_problems(source)
    for problem in problems:
        reporter.add(path, problem)
    for name in sorted(undeclared - _ALLOWED_NAMES):
        reporter.add(path, f"undefined variable '{name}'{_suggest(name, _ALLOWED_NAMES)}")
    for reference in references:
        if reference.root == "inputs" and reference.name not in inputs:
            reporter.add(path, f"unknown input '{reference.name}'{_suggest(reference.name, inputs)}")
        elif reference.root == "steps":
            if earlier is None:
                reporter.add(path, f"'steps.{reference.name}' cannot be used here: no step has run yet")
            elif reference.name not in earlier:
                reporter.add(
                    path,
                    f"'steps.{reference.name}' does not refer to an earlier step{_suggest(reference.name, earlier)}",
                )
