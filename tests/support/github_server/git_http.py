"""git's smart HTTP protocol for the test GitHub server, through `git http-backend`: clones,
fetches and pushes over HTTP with basic authentication whose password is the server's token."""

from __future__ import annotations

import base64
import subprocess
from http.server import BaseHTTPRequestHandler
from pathlib import Path


def serve(
    root: Path, token: str, request: BaseHTTPRequestHandler, method: str, path: str, query: str, body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """Answer one git request for a repository under `root`: (status, headers, body); 401 with a
    Basic challenge unless the password is `token`."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    password = ""
    if scheme.lower() == "basic":
        password = base64.b64decode(value).decode(errors="replace").partition(":")[2]
    if password != token:
        return 401, {"WWW-Authenticate": 'Basic realm="GitHub"', "Content-Type": "text/plain"}, b"auth required\n"
    env = {
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REQUEST_METHOD": method,
        "CONTENT_TYPE": request.headers.get("Content-Type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_USER": "x-access-token",
        "REMOTE_ADDR": "127.0.0.1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "PATH": "/usr/bin:/bin",
    }
    if request.headers.get("Content-Encoding"):
        env["HTTP_CONTENT_ENCODING"] = request.headers["Content-Encoding"]
    if request.headers.get("Git-Protocol"):
        env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
    result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
    head, _, payload = result.stdout.partition(b"\r\n\r\n")
    status, headers = 200, {}
    for line in head.decode().split("\r\n"):
        key, _, value = line.partition(": ")
        if key.lower() == "status":
            status = int(value.split()[0])
        elif key:
            headers[key] = value
    return status, headers, payload
