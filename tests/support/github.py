"""Starting the test GitHub server where sandboxes can reach it (the Docker bridge gateway)."""

from __future__ import annotations

import ipaddress
from functools import cache
from pathlib import Path

from tests.support.github_server import GitHubServer

TOKEN = "ghp_TestToken0123456789abcdefABCDEF0123"


@cache
def docker_gateway() -> str:
    """The host's address on Docker's default bridge (what containers reach the host at)."""
    import docker

    client = docker.from_env()
    try:
        config = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    finally:
        client.close()
    # Docker leaves Gateway out for the default bridge; it is the subnet's first address there.
    return str(config.get("Gateway") or ipaddress.ip_network(config["Subnet"])[1])


def start_github(root: Path) -> GitHubServer:
    return GitHubServer(root, TOKEN, git_host=docker_gateway()).start()
