"""Step outputs written to `$PIPE_OUTPUT` in GitHub Actions' `$GITHUB_OUTPUT` format.

`name=value` lines, or the heredoc form `name<<DELIMITER`, value lines, `DELIMITER` (see GitHub's
"Workflow commands: Setting an output parameter" and "Multiline strings").
"""

from __future__ import annotations

import re

MAX_OUTPUT_BYTES = 1024 * 1024
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class OutputError(ValueError):
    """The output file is malformed; the message names the line."""


def parse_outputs(text: str) -> dict[str, str]:
    """Parse an output file. Later values of a name replace earlier ones.

    Raises OutputError for a line that is neither form, a bad name or an unterminated heredoc.
    """
    if len(text.encode()) > MAX_OUTPUT_BYTES:
        raise OutputError(f"outputs exceed {MAX_OUTPUT_BYTES} bytes")
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    index = 0
    while index < len(lines):
        line = lines[index].rstrip("\r")
        index += 1
        named_at = index  # the line (1-based) that names the output
        if not line.strip():
            continue
        equals, heredoc = line.find("="), line.find("<<")
        if heredoc != -1 and (equals == -1 or heredoc < equals):
            name, delimiter = line[:heredoc], line[heredoc + 2 :]
            if not delimiter:
                raise OutputError(f"line {index}: empty heredoc delimiter")
            body: list[str] = []
            while True:
                if index >= len(lines):
                    raise OutputError(f"line {named_at}: heredoc for '{name}' is not closed by '{delimiter}'")
                current = lines[index].rstrip("\r")
                index += 1
                if current == delimiter:
                    break
                body.append(current)
            value = "\n".join(body)
        elif equals != -1:
            name, value = line[:equals], line[equals + 1 :]
        else:
            raise OutputError(f"line {index}: expected name=value or name<<DELIMITER")
        if not _NAME.match(name):
            raise OutputError(f"line {named_at}: invalid output name {name!r}")
        outputs[name] = value
    return outputs
