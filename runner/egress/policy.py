"""Enforcing egress policies (runner/pipeline/egress.py says what a sandbox may reach): the named
presets (presets.yml beside this module), the rules an allow-list stands for and the Squid
configuration that enforces a run's allow-lists."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from runner.egress.registries import resolve
from runner.errors import UsageError
from runner.pipeline.egress import EgressPolicy

PRESETS = Path(__file__).resolve().parent / "presets.yml"
DEFAULT_PORTS = (80, 443)
_HOST = re.compile(r"^(\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*\.?$")


@cache
def presets() -> Mapping[str, tuple[str, ...]]:
    """The named presets: name -> host entries."""
    data = yaml.safe_load(PRESETS.read_text(encoding="utf-8"))
    return {str(name): tuple(str(entry) for entry in entries) for name, entries in data.items()}


@dataclass(frozen=True)
class Rule:
    """One allowed destination: `host` (a name, or `.domain` for the domain and below) and ports."""

    host: str
    ports: tuple[int, ...]


def rules(policy: EgressPolicy) -> list[Rule]:
    """The policy's entries with presets expanded. Raises UsageError naming a bad entry."""
    found: list[Rule] = []
    for entry in policy.allow:
        if entry in presets():
            for item in presets()[entry]:
                found += [_rule(host) for host in resolve(item)] if item.startswith("@") else [_rule(item)]
        else:
            found.append(_rule(entry))
    return found


def _rule(entry: str) -> Rule:
    host, _, port = entry.partition(":")
    if not _HOST.match(host) or (port and not port.isdigit()) or (port and not 0 < int(port) < 65536):
        raise UsageError(
            f"sandbox.egress.allow: {entry!r} is neither a preset ({', '.join(sorted(presets()))}) "
            "nor a host, *.domain or host:port"
        )
    name = host.lower().rstrip(".")
    name = "." + name[2:] if name.startswith("*.") else name
    return Rule(name, (int(port),) if port else DEFAULT_PORTS)


def squid_config(policies: Mapping[str, EgressPolicy], subnets: Mapping[str, str], first: Sequence[str] = ()) -> str:
    """Squid's configuration for a run: each policy key's subnet may reach its rules (an audit
    policy: anything); everything else is refused. `first` are directives placed before every
    access rule (the key routes: runner/egress/keyproxy.py). Every request is logged to stdout as
    `pipe <time> <client> <method> <host> <port> <status> <bytes in> <bytes out>`."""
    lines = [
        "http_port 3128",
        "pid_filename none",
        "cache deny all",
        "via off",
        "forwarded_for delete",
        "httpd_suppress_version_string on",
        "logformat pipe pipe %ts.%03tu %>a %rm %>rd %>rP %Ss/%>Hs %>st %<st",
        "access_log stdio:/dev/stdout pipe",
        "cache_log stdio:/dev/stderr",
        "logfile_rotate 0",
        "shutdown_lifetime 0 seconds",
        "pinger_enable off",
        *first,
    ]
    for number, (key, subnet) in enumerate(sorted(subnets.items())):
        policy = policies[key]
        lines.append(f"acl net{number} src {subnet}")
        if policy.mode in ("audit", "open"):  # open: a named agent's `open` egress (keys.agent_policy)
            lines.append(f"http_access allow net{number}")
            continue
        for index, rule in enumerate(rules(policy)):
            name = f"n{number}r{index}"
            lines.append(f"acl {name}h dstdomain -n {rule.host}")
            lines.append(f"acl {name}p port {' '.join(str(port) for port in rule.ports)}")
            lines.append(f"http_access allow net{number} {name}h {name}p")
    lines.append("http_access deny all")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Request:
    """One egress attempt seen by the proxy: where, whether it was allowed, bytes each way."""

    at: float
    client: str
    method: str
    host: str
    port: int
    allowed: bool
    status: str
    sent: int
    received: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "method": self.method,
            "allowed": self.allowed,
            "status": self.status,
            "bytes_sent": self.sent,
            "bytes_received": self.received,
        }


def parse_log(lines: Sequence[str]) -> list[Request]:
    """The proxy's access-log lines (see squid_config) as requests; malformed lines are skipped."""
    found: list[Request] = []
    for line in lines:
        parts = line.split()
        if len(parts) != 9 or parts[0] != "pipe":
            continue
        _, at, client, method, host, port, status, sent, received = parts
        try:
            found.append(
                Request(
                    float(at),
                    client,
                    method,
                    host.lower(),
                    int(port) if port.isdigit() else (443 if method == "CONNECT" else 80),
                    "DENIED" not in status,
                    status,
                    int(sent) if sent.isdigit() else 0,
                    int(received) if received.isdigit() else 0,
                )
            )
        except ValueError:
            continue
    return found


def minimal_allow(requests: Sequence[Mapping[str, Any]]) -> list[str]:
    """The smallest `allow:` list covering `requests` (as_dict records): `host` for ports 80/443,
    `host:port` otherwise, sorted."""
    entries = {
        str(r["host"]) if int(r["port"]) in DEFAULT_PORTS else f"{r['host']}:{r['port']}"
        for r in requests
        if r.get("host") and r["host"] != "-"
    }
    return sorted(entries)


def in_subnet(address: str, subnet: str) -> bool:
    """Whether IPv4 `address` lies in CIDR `subnet`."""
    import ipaddress

    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        return False
