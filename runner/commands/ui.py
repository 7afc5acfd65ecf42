"""`pipe ui`: serve the web view (runner/ui) with uvicorn."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from runner.ui.security import is_loopback

__all__ = ["is_loopback", "serve"]


def fleet_of(state_dir: Path) -> Callable[[], Mapping[str, Any]] | None:
    """With a broker configured (PIPE_BROKER_URL), what the workers page shows (the default queue;
    runner.workers.status.fleet_status); None without one."""
    from runner.workers.app import broker_url
    from runner.workers.status import fleet_status

    broker = broker_url()
    return partial(fleet_status, broker, state_dir) if broker is not None else None


def serve(state_dir: Path, host: str, port: int, *, token: str | None, read_only: bool, out: TextIO) -> int:
    """Serve until interrupted. On a non-loopback address a token is required: the given one, or a
    new one printed once. Requests must name `host` (or, on loopback, localhost/127.0.0.1/[::1])
    and `port` in their Host header."""
    import uvicorn

    from runner.ui.app import UI

    if not is_loopback(host) and not token:
        token = secrets.token_urlsafe(24)
    suffix = f"/?token={token}" if token else "/"
    shown = f"[{host}]" if ":" in host else host
    print(f"pipe ui: http://{shown}:{port}{suffix}" + (" (read-only)" if read_only else ""), file=out, flush=True)
    ui = UI(state_dir, host=host, port=port, read_only=read_only, token=token, fleet=fleet_of(state_dir))
    try:
        uvicorn.run(ui.application(), host=host, port=port, log_level="warning")
    finally:
        ui.wait_for_actions()
    return 0
