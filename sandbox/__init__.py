"""Isolation: the `Backend` protocol (sandbox/base.py), its errors (sandbox/errors.py) and its
backends, listed in BACKENDS. This package imports nothing from `runner`; how to add a backend is in
docs/architecture.md ("Adding a sandbox backend")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.base import Backend


def _docker(**options: Any) -> Backend:
    from sandbox.docker import DockerBackend  # imported when used: it imports the docker SDK

    return DockerBackend(**options)


# name -> a function making the backend from keyword options; every backend satisfies sandbox.base.Backend.
BACKENDS: dict[str, Callable[..., Backend]] = {"docker": _docker}


def backend(name: str = "docker", **options: Any) -> Backend:
    """A new backend by name, made with `options` (the docker backend takes `client` and `host_root`).
    Raises KeyError for an unknown name, and what the backend's constructor raises (SandboxError)."""
    if name not in BACKENDS:
        raise KeyError(f"unknown sandbox backend {name!r}; known: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name](**options)
