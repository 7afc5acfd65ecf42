"""Egress policies as a pipeline states them: what a sandbox may reach (`none`, `open`, or an
allow-list enforced by the run's proxy). How an allow-list is enforced is runner/egress/."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EgressPolicy:
    """`kind` is `none` (no network), `open` (the engine's bridge: anywhere) or `allow` (only
    `allow`'s entries, through the proxy); `mode` is `enforce` or `audit` (everything goes through,
    every request is recorded). `keys` names the model APIs (runner/egress/keys.py) whose key
    routes a sandbox of this policy may use: a named agent's step; its network is its own."""

    kind: str
    allow: tuple[str, ...] = ()
    mode: str = "enforce"
    keys: tuple[str, ...] = ()

    @property
    def network(self) -> str:
        """The legacy `network:` value this policy stands for (`egress` for an allow-list)."""
        return {"none": "none", "open": "bridge"}.get(self.kind, "egress")

    @property
    def key(self) -> str:
        """A stable text naming the policy (one network per distinct key)."""
        keys = f"+keys:{','.join(self.keys)}" if self.keys else ""
        return f"{self.mode}:{','.join(self.allow)}{keys}"


NONE = EgressPolicy("none")
OPEN = EgressPolicy("open")


def from_network(network: str) -> EgressPolicy:
    """The policy `network: none|bridge` is short for."""
    return NONE if network == "none" else OPEN


def parse_policy(value: Any) -> EgressPolicy:
    """A schema-valid `egress:` value as a policy; allow entries keep their order, duplicates go."""
    if value in ("none", "open"):
        return NONE if value == "none" else OPEN
    allow = tuple(dict.fromkeys(str(entry) for entry in value.get("allow", ())))
    return EgressPolicy("allow", allow, str(value.get("mode", "enforce")))
