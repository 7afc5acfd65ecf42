"""The hosts of the package registries the person's own clients are configured with, for the
egress presets `@pip-index` and `@npm-registry`: pip's index (its configured `index-url`, else
pip's built-in default and that index's file host) and npm's `registry`. Read from the clients, so
a mirror or a private index is what gets allowed, and pipe names no registry host itself.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from urllib.parse import urlsplit

from runner.errors import UsageError


def _output(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _host(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


@cache
def pip_index_hosts() -> tuple[str, ...]:
    """The hosts pip downloads from: its configured index-url (PIP_INDEX_URL or pip config), else
    pip's default index and that index's file storage host, as pip itself defines them."""
    configured = _output([sys.executable, "-m", "pip", "config", "get", "global.index-url"])
    if configured:
        host = _host(configured)
        return (host,) if host else ()
    from pip._internal.models.index import PyPI  # pip's own default index

    return tuple(h for h in (_host(PyPI.simple_url), PyPI.file_storage_domain) if h)


@cache
def npm_registry_hosts() -> tuple[str, ...]:
    """The host of npm's configured `registry`. Raises UsageError when npm is not installed."""
    npm = shutil.which("npm")
    if npm is None:
        raise UsageError("egress preset node: npm is not installed here to say its registry; list the host instead")
    host = _host(_output([npm, "config", "get", "registry"]))
    return (host,) if host else ()


RESOLVERS = {"@pip-index": pip_index_hosts, "@npm-registry": npm_registry_hosts}


def resolve(entry: str) -> tuple[str, ...]:
    """The hosts an `@NAME` preset entry stands for. Raises UsageError for an unknown one."""
    if entry not in RESOLVERS:
        raise UsageError(f"egress preset entry {entry!r} is not one of {', '.join(sorted(RESOLVERS))}")
    return RESOLVERS[entry]()
