"""`pipe ui`'s application served by uvicorn on a free loopback port, in a thread, for the browser
tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from runner.ui.app import UI


@contextmanager
def serving(ui: UI, timeout: float = 20.0) -> Iterator[str]:
    """Serve `ui` until the block ends; yields its base URL (`http://127.0.0.1:PORT`). Raises
    AssertionError when the server does not start within `timeout` seconds."""
    import uvicorn

    config = uvicorn.Config(ui.application(), host="127.0.0.1", port=0, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not instance.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{instance.servers[0].sockets[0].getsockname()[1]}"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)
