"""Isolation: the `Sandbox` protocol (sandbox/base.py) and its backends, listed in BACKENDS."""

from __future__ import annotations

from typing import Any


def backend(name: str = "docker", **options: Any) -> Any:
    """A new backend by name; the registry of backends is BACKENDS (imported lazily)."""
    if name not in BACKENDS:
        raise KeyError(f"unknown sandbox backend {name!r}; known: {', '.join(sorted(BACKENDS))}")
    module_name, class_name = BACKENDS[name].split(":")
    import importlib

    return getattr(importlib.import_module(module_name), class_name)(**options)


# name -> "module:class"; every backend satisfies sandbox.base.Backend.
BACKENDS = {"docker": "sandbox.docker:DockerBackend"}
