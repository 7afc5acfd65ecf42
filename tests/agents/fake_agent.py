#!/usr/bin/env python3
"""A deterministic stand-in for a coding-agent CLI, for tests: it does what its prompt says.

Usage: fake-agent [PROMPT_FILE]   (the prompt is read from standard input without a file)

Directives, each on its own line of the prompt, the ones taking content followed by a fenced block:
  WRITE path / APPEND path       the block is the file's new content / is appended
  DELETE path                    remove the file
  PATCH                          the block is a unified diff, applied with `git apply`
  RESULT                         the block is the final JSON to print
  RESULT-AFTER-RETRY             the block is printed instead of RESULT once the prompt carries
                                 pipe's "did not match the required JSON schema" note
  FORMAT claude|codex|raw        how the final JSON is wrapped (default claude: like `claude -p
                                 --output-format json`; codex: JSON lines like `codex exec --json`)
  EXIT n                         exit with this code after everything else
  ECHO-PROMPT                    print the whole prompt (so a test can see what it was given)

A directive may be quoted as a markdown blockquote (`> WRITE path`, its block's lines quoted the
same way), as review comments reach an agent in github/review-threads' prompt.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

RETRY_NOTE = "did not match the required JSON schema"


def unquote(line: str, quote: str) -> str:
    """`line` without the blockquote marker `quote` ("> ", or "" for none); a bare ">" is empty."""
    if quote and line.rstrip() == quote.rstrip():
        return ""
    return line.removeprefix(quote)


def parse(prompt: str) -> list[tuple[str, str, str]]:
    """(directive, argument, block) for each directive line, quoted or not."""
    plain = prompt.splitlines()
    quoted = [unquote(line, "> ") for line in plain]
    found: list[tuple[str, str, str]] = []
    index = 0
    while index < len(plain):
        lines = quoted if plain[index].startswith("> ") else plain
        word, _, argument = lines[index].strip().partition(" ")
        index += 1
        if word not in (
            "WRITE",
            "APPEND",
            "DELETE",
            "PATCH",
            "RESULT",
            "RESULT-AFTER-RETRY",
            "FORMAT",
            "EXIT",
            "ECHO-PROMPT",
        ):
            continue
        block = ""
        if word in ("WRITE", "APPEND", "PATCH", "RESULT", "RESULT-AFTER-RETRY") and index < len(lines):
            fence = lines[index].strip()
            if fence.startswith("```"):
                body: list[str] = []
                index += 1
                while index < len(lines) and lines[index].strip() != "```":
                    body.append(lines[index])
                    index += 1
                index += 1
                block = "\n".join(body) + "\n"
        found.append((word, argument.strip(), block))
    return found


def main() -> int:
    if len(sys.argv) > 1:
        with open(sys.argv[1], encoding="utf-8") as handle:
            prompt = handle.read()
    else:
        prompt = sys.stdin.read()
    print(f"fake-agent: read {len(prompt)} characters of prompt")
    retried = RETRY_NOTE in prompt
    if retried:
        print("fake-agent: the prompt says my last result broke the schema")
    result, fmt, code = None, "claude", 0
    for word, argument, block in parse(prompt):
        if word in ("WRITE", "APPEND"):
            os.makedirs(os.path.dirname(argument) or ".", exist_ok=True)
            with open(argument, "a" if word == "APPEND" else "w", encoding="utf-8") as handle:
                handle.write(block)
            print(f"fake-agent: {'appended to' if word == 'APPEND' else 'wrote'} {argument}")
        elif word == "DELETE":
            os.remove(argument)
            print(f"fake-agent: deleted {argument}")
        elif word == "PATCH":
            subprocess.run(["git", "apply", "--whitespace=nowarn", "-"], input=block, text=True, check=True)
            print("fake-agent: applied a patch")
        elif (word == "RESULT" and result is None) or (word == "RESULT-AFTER-RETRY" and retried):
            result = block.strip()
        elif word == "FORMAT":
            fmt = argument
        elif word == "EXIT":
            code = int(argument)
        elif word == "ECHO-PROMPT":
            print("fake-agent: prompt follows\n" + prompt)
    text = f"Done.\n{result}" if result is not None else "Done."
    if fmt == "codex":
        print(json.dumps({"type": "thread.started", "thread_id": "fake"}))
        print(json.dumps({"type": "item.completed", "item": {"id": "1", "type": "agent_message", "text": text}}))
        print(json.dumps({"type": "turn.completed", "usage": {"input_tokens": len(prompt), "output_tokens": 1}}))
    elif fmt == "raw":
        print(text)
    else:
        print(
            json.dumps(
                {
                    "type": "result",
                    "subtype": "success",
                    "is_error": False,
                    "result": text,
                    "session_id": "fake",
                    "num_turns": 1,
                }
            )
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
