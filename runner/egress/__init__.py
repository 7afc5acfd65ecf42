"""Egress: the policy a pipeline states (policy.py, presets.yml) and a run's proxy that enforces
and records it (run.py; the Docker side is sandbox/network.py)."""
