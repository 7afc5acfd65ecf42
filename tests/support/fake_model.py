#!/usr/bin/env python3
"""A small stand-in for the model APIs the real coding-agent CLIs call, for tests: the Anthropic
Messages API (Claude Code: streaming SSE and tool use), the OpenAI Responses API (Codex: streaming
SSE, function calls) and Chat Completions (aider, through litellm). Standard library only, so it
runs inside the sandbox on 127.0.0.1 and a step with `network: none` still reaches it.

It plays a scripted engineer. The script is a line `FAKE-MODEL {json}` anywhere in what the CLI
sends (the issue text carries it, so a run that works proves the prompt arrived):
  {"file": "calc.py", "old": "a - b", "new": "a + b",   the edit to make with the CLI's own tools
   "summary": "...",                                    the summary in the final answer
   "invalid_first": true,                               the first final answer breaks the schema
   "commit": true,                                      (Claude) commit the edit with git by itself
   "bash": "COMMAND",                                   (Claude) run COMMAND after the edit
   "usage": 1000}                                       input tokens reported per reply
Turns, judged from the conversation (tool results so far): read the file, edit it, then answer
with the agent-result JSON. Requests that offer no editing tool (titles, summaries) get "ok".

Every request is appended to the log file as one JSON line {"path", "items" (messages so far),
"text" (the conversation's text, its last LOGGED_TEXT characters), "key_sha256" (of the API key
the CLI sent)}; `--report LOG` prints them for the step's log.

Usage: fake_model.py PORT LOG_FILE | fake_model.py --report LOG_FILE
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOGGED_TEXT = 20000
REPORT_PREFIX = "FAKE-MODEL-SAW "
RETRY_NOTE = "did not match the required JSON schema"
MODEL_PREFIX = "FAKE-MODEL "


def scenario(text: str) -> dict[str, Any]:
    """The script found in `text` ({} when there is none)."""
    for line in text.splitlines():
        at = line.find(MODEL_PREFIX)
        if at != -1:
            try:
                value = json.loads(line[at + len(MODEL_PREFIX) :].strip().strip("`"))
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return {}


def strings(value: Any) -> str:
    """Every string inside a decoded JSON value, one per line (where a script line is looked for)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(strings(item) for item in value.values())
    if isinstance(value, list):
        return "\n".join(strings(item) for item in value)
    return ""


def tool_names(value: Any) -> set[str]:
    """The names of every tool declared in `value` (nested namespaces included)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= tool_names(item)
    elif isinstance(value, dict):
        if isinstance(value.get("name"), str):
            found.add(value["name"])
        found |= tool_names(value.get("tools") or [])
    return found


def example(schema: dict[str, Any]) -> Any:
    """A small value satisfying a (Gemini-style, upper-case types) JSON schema's required parts."""
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: example(properties.get(name) or {}) for name in schema.get("required") or []}
    samples: dict[str, Any] = {"string": "x", "integer": 10, "number": 1, "boolean": False, "array": []}
    return samples.get(kind)


def answer(script: dict[str, Any], retried: bool) -> str:
    """The final reply: prose, then the agent-result JSON (invalid once when asked)."""
    if script.get("invalid_first") and not retried:
        return 'Done, I think.\n\n{"status": "maybe", "summary": "not sure"}'
    result = {
        "status": "done",
        "summary": script.get("summary", "Fixed it."),
        "changes": [{"path": script.get("file", ""), "description": "edited with the CLI's own tool"}],
        "tests": "not run",
    }
    return "I made the change.\n\n" + json.dumps(result)


def last_user_text(messages: list[Any]) -> str:
    """The text of the last user turn (chat or Anthropic shape)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return json.dumps(message.get("content"))
    return ""


class Handler(BaseHTTPRequestHandler):
    """Routes the three APIs; everything else gets `{}`."""

    log_file = "/tmp/fake-model.jsonl"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {"raw": raw.decode("utf-8", "replace")}
        key = self.headers.get("x-api-key") or self.headers.get("Authorization", "").removeprefix("Bearer ")
        if isinstance(body, dict):
            conversation = body.get("messages") or body.get("input") or body.get("contents") or []
            entry = {
                "path": self.path,
                "items": len(conversation) if isinstance(conversation, list) else 0,
                "text": strings(conversation)[-LOGGED_TEXT:],
                "key_sha256": hashlib.sha256(key.encode()).hexdigest() if key else "",
                "tools": sorted(
                    tool_names(
                        [body.get("tools") or [], *[e.get("tools") or [] for e in conversation if isinstance(e, dict)]]
                    )
                )[:50],
            }
            with open(self.log_file, "a", encoding="utf-8") as log:
                log.write(json.dumps(entry) + "\n")
        return body if isinstance(body, dict) else {}

    def _send(self, payload: Any, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _events(self, events: list[tuple[str | None, dict[str, Any]]]) -> None:
        chunks = []
        for name, data in events:
            chunks.append((f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n")
        payload = "".join(chunks).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._body()
        self._send({})

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        body = self._body()
        path = self.path.split("?")[0]
        if path.endswith("/messages"):
            self.anthropic(body)
        elif path.endswith("/responses"):
            self.openai_responses(body)
        elif path.endswith("/chat/completions"):
            self.chat(body)
        elif ":streamGenerateContent" in path or ":generateContent" in path:
            self.gemini(body, stream=":stream" in path)
        else:
            self._send({})

    # Anthropic Messages (Claude Code)
    def anthropic(self, body: dict[str, Any]) -> None:
        text = json.dumps(body)
        script = scenario(strings(body))
        tools = {tool.get("name") for tool in body.get("tools") or [] if isinstance(tool, dict)}
        messages = body.get("messages") or []
        results = text.count('"type": "tool_result"')
        usage = int(script.get("usage", 100))
        block: dict[str, Any]
        if not script or not tools & {"Edit", "edit"}:
            block, stop = {"type": "text", "text": "ok"}, "end_turn"
        else:
            where = re.search(r"working directory: (\S+)", strings(body), re.IGNORECASE)
            path = f"{where.group(1) if where else '/workspace'}/{script['file']}"
            if "Edit" in tools:  # Claude Code
                edit = {"file_path": path, "old_string": script["old"], "new_string": script["new"]}
                calls = [("Read", {"file_path": path}), ("Edit", edit)]
            else:  # opencode
                edit = {"filePath": path, "oldString": script["old"], "newString": script["new"]}
                calls = [("read", {"filePath": path}), ("edit", edit)]
            if script.get("bash"):  # (Claude) run a command, e.g. one that attacks pipe
                calls.append(("Bash", {"command": str(script["bash"]), "description": "Run"}))
            if script.get("commit"):  # commit by itself, as a careless agent would
                command = "git add -A && git -c user.name='Your Name' -c user.email=you@example.com commit -qm agent"
                calls.append(("Bash", {"command": command, "description": "Commit"}))
            if results < len(calls):
                name, arguments = calls[results]
                block = {"type": "tool_use", "id": f"toolu_{results}", "name": name, "input": arguments}
                stop = "tool_use"
            else:
                retried = RETRY_NOTE in last_user_text(messages)
                block, stop = {"type": "text", "text": answer(script, retried)}, "end_turn"
        model = str(body.get("model") or "claude-sonnet-4-5")
        usage_start = {
            "input_tokens": usage,
            "output_tokens": 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        message: dict[str, Any] = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_start,
        }
        if not body.get("stream"):
            message.update(content=[block], stop_reason=stop, usage={**usage_start, "output_tokens": 20})
            self._send(message)
            return
        start = dict(block)
        deltas: list[dict[str, Any]] = []
        if block["type"] == "text":
            start["text"] = ""
            deltas.append({"type": "text_delta", "text": block["text"]})
        else:
            start["input"] = {}
            deltas.append({"type": "input_json_delta", "partial_json": json.dumps(block["input"])})
        self._events(
            [
                ("message_start", {"type": "message_start", "message": message}),
                ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": start}),
                *[("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d}) for d in deltas],
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                (
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": stop, "stop_sequence": None},
                        "usage": {"output_tokens": 20},
                    },
                ),
                ("message_stop", {"type": "message_stop"}),
            ]
        )

    # OpenAI Responses (Codex)
    def openai_responses(self, body: dict[str, Any]) -> None:
        script = scenario(strings(body))
        items = body.get("input") or []
        outputs = sum(1 for item in items if isinstance(item, dict) and str(item.get("type", "")).endswith("_output"))
        tools = tool_names(
            [body.get("tools") or [], *[entry.get("tools") or [] for entry in items if isinstance(entry, dict)]]
        )
        usage = int(script.get("usage", 100))
        item: dict[str, Any]
        if not script:
            item = {
                "type": "message",
                "role": "assistant",
                "id": "msg_fake",
                "content": [{"type": "output_text", "text": "ok"}],
            }
        elif outputs == 0:
            item = self._codex_edit(script, tools)
        else:
            retried = any(
                RETRY_NOTE in json.dumps(entry)
                for entry in items[-1:]
                if isinstance(entry, dict) and entry.get("role") == "user"
            )
            item = {
                "type": "message",
                "role": "assistant",
                "id": "msg_fake",
                "content": [{"type": "output_text", "text": answer(script, retried)}],
            }
        response = {"id": "resp_fake", "object": "response", "status": "completed", "model": body.get("model")}
        done = {
            **response,
            "output": [item],
            "usage": {
                "input_tokens": usage,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 20,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": usage + 20,
            },
        }
        self._events(
            [
                ("response.created", {"type": "response.created", "response": response}),
                ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item}),
                ("response.completed", {"type": "response.completed", "response": done}),
            ]
        )

    @staticmethod
    def _codex_edit(script: dict[str, Any], tools: set[str]) -> dict[str, Any]:
        path = str(script["file"])
        old_lines = "".join(f"-{line}\n" for line in str(script["old"]).splitlines())
        new_lines = "".join(f"+{line}\n" for line in str(script["new"]).splitlines())
        patch = f"*** Begin Patch\n*** Update File: {path}\n@@\n{old_lines}{new_lines}*** End Patch\n"
        if "exec" in tools:  # Codex 0.16x: one JavaScript tool that calls the others
            code = f"const result = await tools.apply_patch({json.dumps(patch)});\ntext(result);\n"
            return {"type": "custom_tool_call", "id": "ctc_fake", "call_id": "call_edit", "name": "exec", "input": code}
        if "apply_patch" in tools:
            return {
                "type": "custom_tool_call",
                "id": "ctc_fake",
                "call_id": "call_edit",
                "name": "apply_patch",
                "input": patch,
            }
        arguments = {"cmd": f"apply_patch <<'EOF'\n{patch}EOF\n"}
        return {
            "type": "function_call",
            "id": "fc_fake",
            "call_id": "call_edit",
            "name": "exec_command",
            "arguments": json.dumps(arguments),
        }

    # Gemini generateContent (Gemini CLI): the final answer only, no tool calls
    def gemini(self, body: dict[str, Any], stream: bool) -> None:
        script = scenario(strings(body.get("contents") or []))
        usage = int(script.get("usage", 100))
        wanted = (body.get("generationConfig") or {}).get("responseJsonSchema")
        if isinstance(wanted, dict):  # a side request (routing, summaries) that wants JSON
            text = json.dumps(example(wanted))
        else:
            text = answer(script, RETRY_NOTE in strings((body.get("contents") or [])[-1:])) if script else "ok"
        reply = {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {"promptTokenCount": usage, "candidatesTokenCount": 20, "totalTokenCount": usage + 20},
            "modelVersion": "gemini-fake",
        }
        if stream:
            self._events([(None, reply)])
        else:
            self._send(reply)

    # Chat Completions (aider through litellm)
    def chat(self, body: dict[str, Any]) -> None:
        script = scenario(strings(body))
        usage = int(script.get("usage", 100))
        if script:
            retried = RETRY_NOTE in last_user_text(body.get("messages") or [])
            block = f"<<<<<<< SEARCH\n{script['old']}\n=======\n{script['new']}\n>>>>>>> REPLACE"
            edit = f"{script['file']}\n```\n{block}\n```\n\n"
            content = ("" if retried else edit) + answer(script, retried)
        else:
            content = "ok"
        model = body.get("model") or "gpt-4o"
        counts = {"prompt_tokens": usage, "completion_tokens": 20, "total_tokens": usage + 20}
        if not body.get("stream"):
            message = {"role": "assistant", "content": content}
            self._send(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": counts,
                }
            )
            return
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model}
        events: list[tuple[str | None, dict[str, Any]]] = [
            (
                None,
                {
                    **base,
                    "choices": [
                        {"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": None}
                    ],
                },
            ),
            (None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": counts}),
        ]
        chunks = "".join(f"data: {json.dumps(data)}\n\n" for _, data in events) + "data: [DONE]\n\n"
        payload = chunks.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def report(log_file: str) -> None:
    """Print each logged request as REPORT_PREFIX + base64 JSON (so no CLI output parser takes it
    for an answer); `requests(output)` reads them back. Standard output is made blocking first:
    the agent CLI that ran before in the same step (Node.js) may have left the shared pipe
    O_NONBLOCK, and a long line then fails with BlockingIOError when pipe reads it late."""
    os.set_blocking(sys.stdout.fileno(), True)
    try:
        with open(log_file, encoding="utf-8") as log:
            for line in log:
                print(REPORT_PREFIX + base64.b64encode(line.strip().encode()).decode())
    except FileNotFoundError:
        return


def requests(output: str) -> list[dict[str, Any]]:
    """The requests reported in `output` (a step's log), in order."""
    found = []
    for line in output.splitlines():
        at = line.find(REPORT_PREFIX)
        if at != -1:
            try:
                found.append(json.loads(base64.b64decode(line[at + len(REPORT_PREFIX) :].strip())))
            except ValueError:  # pipe masked a secret inside it (it masks base64 forms too)
                found.append({"masked": line[at:]})
    return found


def main() -> int:
    if sys.argv[1] == "--report":
        report(sys.argv[2])
        return 0
    port, Handler.log_file = int(sys.argv[1]), sys.argv[2]
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
