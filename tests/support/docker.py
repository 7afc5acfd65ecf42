"""Whether a Docker engine answers, for the `docker` marker."""

from __future__ import annotations

from functools import cache


@cache
def engine_problem() -> str | None:
    """None when a Docker engine answers a ping, else why not."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None
