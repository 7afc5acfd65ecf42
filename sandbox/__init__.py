"""Isolation: the `Sandbox` protocol and its backends (see sandbox/base.py, sandbox/docker.py)."""
