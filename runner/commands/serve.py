"""`pipe serve`: receive GitHub's webhooks (runner/serve) with uvicorn and start runs for them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO


def serve(config_path: Path, host: str, port: int, *, state_dir: Path | None, out: TextIO) -> int:
    """Load the configuration at `config_path`, then serve until interrupted. The state directory
    is `state_dir` (--state-dir), else the configuration's `state-dir`, else $PIPE_HOME or ./.pipe.
    Raises ValidationFailed / UsageError (exit 2) for a bad configuration, secret or token."""
    import uvicorn

    from runner.serve.app import WebhookApp
    from runner.serve.config import load_config
    from runner.serve.dispatch import Dispatcher
    from runner.serve.identity import bot_login
    from runner.serve.launcher import Launcher
    from runner.statedir import default_state_dir
    from runner.store import Store

    config = load_config(config_path)
    root = default_state_dir(state_dir or config.state_dir)
    Store(root).close()  # created and migrated before the first delivery
    bot = bot_login(config)

    def log(line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", file=out, flush=True)

    def link(delivery: str, run_id: str) -> None:
        store = Store(root)
        try:
            store.link_delivery(delivery, run_id)
        finally:
            store.close()
        log(f"{delivery}: run {run_id}")

    launcher = Launcher(config, root, link)
    app = WebhookApp(config.secret, Dispatcher(config, bot, root, launcher, log))
    shown = f"[{host}]" if ":" in host else host
    print(f"pipe serve: http://{shown}:{port}/webhook as {bot}, {len(config.rules)} rules, state in {root}", file=out)
    out.flush()
    uvicorn.run(app.application(), host=host, port=port, log_level="warning")
    return 0
