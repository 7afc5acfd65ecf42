"""Template rendering and `if:` evaluation in Jinja2's sandbox.

Every string field of a pipeline is a Jinja2 template rendered once with `StrictUndefined` in a
`SandboxedEnvironment`; values (issue text, step outputs) are data and are never rendered again.
In `run:` scripts every `{{ expression }}` becomes one literal word whether it sits bare or inside
quotes, and is refused where no quoting is literal (see `render_script` and runner/pipeline/shellcontext.py);
the `shell_raw` filter opts out and is dangerous with untrusted values. Rendered text is capped at
MAX_RENDERED_BYTES, a render at MAX_RENDER_SECONDS, and `*`/`**` cannot build huge values.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
from collections.abc import Callable, Mapping
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.parser import Parser
from jinja2.sandbox import SandboxedEnvironment

from runner.errors import SecurityError, TemplateError
from runner.pipeline import shellcontext
from runner.pipeline.timelimit import TimeLimitExceeded, time_limit

MAX_RENDERED_BYTES = 1024 * 1024
MAX_RENDER_SECONDS = 5.0
_MAX_REPEAT = 100_000

# Names a template may use at its top level (README.md, "Templates and expressions"), plus the status functions.
MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})  # steps.get('x') reads, it names no step
CONTEXT_ROOTS = frozenset({"inputs", "steps", "env", "run", "github", "secrets", "repeat"})
STATUS_FUNCTIONS = frozenset({"success", "failure", "always", "cancelled"})


class ShellRaw(str):
    """A value that `render_script` places into a script without quoting (the `shell_raw` filter)."""


def to_text(value: Any) -> str:
    """How a value reads when placed into text: booleans as `true`/`false` (as GitHub Actions
    writes them), None as empty, lists and mappings as JSON, everything else as `str`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    if isinstance(value, Mapping):
        return json.dumps(dict(value), default=str)
    return str(value)


class _Environment(SandboxedEnvironment):
    """The sandbox, with the `attr` filter removed and `*`/`**` capped."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(
        self, *, finalize: Callable[[Any], Any] | None = None, filters: Mapping[str, Callable[..., Any]] | None = None
    ) -> None:
        super().__init__(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=finalize,
        )
        self.filters["attr"] = _forbidden_attr
        self.filters["shell_raw"] = lambda value: ShellRaw(to_text(value))
        self.filters["shell_quote"] = lambda value: shlex.quote(to_text(value))
        self.filters["tojson"] = lambda value: json.dumps(value, default=str)
        self.filters["fromjson"] = json.loads
        self.filters.update(filters or {})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise SecurityError(f"the exponent {right} is too large")
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                too_large = isinstance(sequence, (str, list, tuple)) and isinstance(count, int)
                if too_large and len(sequence) * count > _MAX_REPEAT:
                    raise SecurityError("the repeated value would be too large")
        return super().call_binop(context, operator, left, right)


def _forbidden_attr(*_args: Any) -> Any:
    raise SecurityError("security: the 'attr' filter is not allowed")


class _Slots:
    """The values of a script's expressions, each replaced in the rendered text by a marker that
    names its index (a per-instance nonce keeps values from forging one)."""

    def __init__(self) -> None:
        nonce = secrets.token_hex(8)
        self.prefix = f"__pipe_slot_{nonce}_"
        self.pattern = re.compile(re.escape(self.prefix) + r"([0-9]+)__")
        self.values: list[str] = []

    def finalize(self, value: Any) -> Any:
        if isinstance(value, ShellRaw):
            return str(value)
        self.values.append(to_text(value))
        return f"{self.prefix}{len(self.values) - 1}__"

    def fill(self, script: str, names: list[str] | None = None) -> str:
        """`script` with every marker replaced by its value placed for its context; `names` are the
        expressions' source texts when known (for messages)."""
        pieces: list[str] = []
        done = 0
        for slot in shellcontext.locate(script, self.pattern):
            value = self.values[slot.index]
            name = f"expression {slot.index + 1}"
            if "\x00" in value:
                raise TemplateError(f"the value of {name} contains a NUL character")
            if slot.numeric and not shellcontext.is_integer(value):
                known = f" ({names[slot.index]})" if names and len(names) == len(self.values) else ""
                raise TemplateError(shellcontext.not_an_integer(name + known))
            try:
                placed = shellcontext.place(value, slot.context)
            except ValueError:
                raise TemplateError(shellcontext.refusal(name, slot.context)) from None
            pieces += [script[done : slot.start], placed]
            done = slot.end
        pieces.append(script[done:])
        return "".join(pieces)


def _expression_texts(source: str) -> list[str]:
    """The `{{ ... }}` texts of a template, whitespace collapsed, in order."""
    return [" ".join(m.group().split()) for m in re.finditer(r"\{\{.*?\}\}", source, re.DOTALL)]


def _text_finalize(value: Any) -> Any:
    return to_text(value)


def _constant(value: bool) -> Callable[[], bool]:
    return lambda: value


class Expressions:
    """Renders templates and evaluates `if:` expressions against one context.

    `context` maps the roots in CONTEXT_ROOTS to values; `status` gives the results of the status
    functions `success()`, `failure()`, `always()`, `cancelled()` (default: no failure yet);
    `filters` replace filters by name (the dry-run plan's placeholders use it). Errors raise
    TemplateError (one line), or SecurityError when the sandbox refused an access.
    """

    def __init__(
        self,
        context: Mapping[str, Any],
        status: Mapping[str, bool] | None = None,
        filters: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        status = dict(status or {"success": True, "failure": False, "cancelled": False})
        status["always"] = True
        self._context: dict[str, Any] = dict(context)
        for name in STATUS_FUNCTIONS:
            self._context[name] = _constant(status.get(name, False))
        self._filters = dict(filters or {})
        self._text_env = _Environment(finalize=_text_finalize, filters=self._filters)

    def render(self, template: str) -> str:
        """Render a string field; expression values are placed as text (see `to_text`)."""
        return self._render(self._text_env, template)

    def render_script(self, template: str) -> str:
        """Render a `run:` script: every expression's value becomes one literal word.

        A value is shell-quoted for where it sits: bare, inside "double" or 'single' quotes or
        $'...' (the quotes are closed around the quoted value), or in a comment (line breaks become
        spaces, then quoted). Where bash reads the word as a number (arithmetic, `[[ -gt ]]`, a
        subscript, `declare -i`...) the value must be a plain integer. Raises TemplateError for an
        expression in a heredoc, backticks, ${...}, after a backslash or `$`, in the arguments of a
        command that runs them as code, for a non-integer value where a number is read, and for a
        value holding a NUL character.
        """
        if "{" not in template:
            return template
        slots = _Slots()
        script = self._render(_Environment(finalize=slots.finalize, filters=self._filters), template)
        filled = slots.fill(script, _expression_texts(template))
        if len(filled) > MAX_RENDERED_BYTES:
            raise TemplateError(f"rendered text exceeds {MAX_RENDERED_BYTES} characters")
        return filled

    def render_value(self, value: Any, where: str = "with") -> Any:
        """Render every string inside `value` (lists and mappings recursively); other values as they
        are. A TemplateError names the key path below `where`, e.g. `with.prompt: ...`."""
        return self._render_at(value, where)

    def _render_at(self, value: Any, where: str) -> Any:
        if isinstance(value, str):
            try:
                return self.render(value)
            except TemplateError as error:
                raise type(error)(f"{where}: {error}") from None
        if isinstance(value, (list, tuple)):
            return [self._render_at(item, f"{where}[{index}]") for index, item in enumerate(value)]
        if isinstance(value, Mapping):
            return {key: self._render_at(item, f"{where}.{key}") for key, item in value.items()}
        return value

    def evaluate(self, expression: str | bool) -> bool:
        """Evaluate an `if:` expression (a bare Jinja2 expression, e.g. `failure() and inputs.x`)."""
        if isinstance(expression, bool):
            return expression
        try:
            with time_limit(MAX_RENDER_SECONDS):
                compiled = self._text_env.compile_expression(expression, undefined_to_none=False)
                return bool(compiled(**self._context))
        except TimeLimitExceeded:
            raise TemplateError(f"expression {expression!r}: took longer than {MAX_RENDER_SECONDS:g}s") from None
        except jinja2.exceptions.SecurityError as error:
            raise SecurityError(f"security: {error}") from None
        except jinja2.TemplateError as error:
            raise TemplateError(f"expression {expression!r}: {error}") from None

    def _render(self, env: SandboxedEnvironment, template: str) -> str:
        if "{" not in template:
            return template
        try:
            with time_limit(MAX_RENDER_SECONDS):
                compiled = env.from_string(template)
                pieces: list[str] = []
                size = 0
                for piece in compiled.generate(**self._context):
                    size += len(piece)
                    if size > MAX_RENDERED_BYTES:
                        raise TemplateError(f"rendered text exceeds {MAX_RENDERED_BYTES} characters")
                    pieces.append(piece)
                return "".join(pieces)
        except TimeLimitExceeded:
            raise TemplateError(f"template took longer than {MAX_RENDER_SECONDS:g}s to render") from None
        except jinja2.exceptions.SecurityError as error:
            raise SecurityError(f"security: {error}") from None
        except jinja2.TemplateError as error:
            raise TemplateError(f"template error: {error}") from None
        except (OverflowError, ValueError, TypeError, ArithmeticError, RecursionError) as error:
            raise TemplateError(f"template error: {type(error).__name__}: {error}") from None


# ---- static analysis, used by the loader ---------------------------------------------------


class Reference:
    """A `steps.<id>` or `inputs.<name>` reference found in a template."""

    def __init__(self, root: str, name: str) -> None:
        self.root = root
        self.name = name


def analyse(source: str, *, expression: bool) -> tuple[set[str], list[Reference], list[str]]:
    """Parse a template (or a bare expression) without rendering it.

    Returns (undeclared top-level names, `steps.X`/`inputs.X` references, security problems).
    Raises TemplateError on a syntax error.
    """
    env = _Environment()
    try:
        if expression:
            stream_parser = Parser(env, source, state="variable")
            expr = stream_parser.parse_expression()
            if not stream_parser.stream.eos:
                token = stream_parser.stream.current
                raise jinja2.TemplateSyntaxError(f"unexpected {token.value!r}", token.lineno)
            tree: nodes.Node = nodes.Template([nodes.Output([expr])])
            tree.set_environment(env)
        else:
            tree = env.parse(source)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"template syntax error: {error.message}") from None
    assert isinstance(tree, nodes.Template)
    undeclared = set(meta.find_undeclared_variables(tree))
    references: list[Reference] = []
    problems: list[str] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Filter):
            if node.name == "attr":
                problems.append("security: the 'attr' filter is not allowed")
            continue
        attribute: object = None
        if isinstance(node, nodes.Getattr):
            attribute = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            attribute = node.arg.value
        if isinstance(attribute, str) and attribute.startswith("_"):
            problems.append(f"security: access to '{attribute}' is not allowed")
        target = getattr(node, "node", None)
        if (
            isinstance(target, nodes.Name)
            and target.name in ("steps", "inputs")
            and isinstance(attribute, str)
            and attribute not in MAPPING_METHODS
        ):
            references.append(Reference(target.name, attribute))
    return undeclared, references, problems


def script_problems(source: str) -> list[str]:
    """Expressions of a `run:` script that sit where their value cannot be shell-quoted, read from
    the source (`{% %}` tags dropped, so branches are read in sequence), as one-line messages.

    Raises TemplateError on a syntax error. Rendering checks the rendered script again exactly.
    """
    slots = _Slots()
    pieces: list[str] = []
    count = 0
    try:
        for _line, token, value in _Environment().lex(source):
            if token == "variable_begin":
                pieces.append(f"{slots.prefix}{count}__")
                count += 1
            elif token == "data":
                pieces.append(value)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"template syntax error: {error.message}") from None
    texts = _expression_texts(source)
    problems = []
    for slot in shellcontext.locate("".join(pieces), slots.pattern):
        if slot.context not in shellcontext.PLACEABLE:
            name = texts[slot.index] if len(texts) == count else f"expression {slot.index + 1}"
            problems.append(shellcontext.refusal(name, slot.context))
    return problems
