"""`pipe ui`: serve the web view (runner/ui) with uvicorn."""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path
from typing import TextIO


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(state_dir: Path, host: str, port: int, *, token: str | None, read_only: bool, out: TextIO) -> int:
    """Serve until interrupted. On a non-loopback address a token is required: the given one, or a
    new one printed once."""
    import uvicorn

    from runner.ui.app import UI

    if not is_loopback(host) and not token:
        token = secrets.token_urlsafe(24)
    suffix = f"/?token={token}" if token else "/"
    print(f"pipe ui: http://{host}:{port}{suffix}" + (" (read-only)" if read_only else ""), file=out, flush=True)
    ui = UI(state_dir, read_only=read_only, token=token)
    try:
        uvicorn.run(ui.application(), host=host, port=port, log_level="warning")
    finally:
        ui.wait_for_actions()
    return 0
