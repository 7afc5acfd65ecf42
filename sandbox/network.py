"""The egress proxy of a run: internal Docker networks with no route out, and one Squid container
beside them that is the only way out, allowing CONNECT/HTTP to the allowed hosts and ports only.

Each distinct allow-list of a run gets its own network, created `internal` (no route out) and with
`inhibit_ipv4` (the host has no address on it, so no host service is reachable either). The proxy
is attached to every such network and to the outward network (PIPE_EGRESS_NETWORK, default
`bridge`); Squid tells the networks apart by the client's source subnet. A sandbox on such a network
resolves names only through Docker's embedded resolver, whose upstream is set to the proxy (which
answers no DNS), so a made-up name carrying data never leaves the machine. The proxy image is
built locally from debian:bookworm-slim (apt inside the build), tagged by a hash of its Dockerfile.
Proxy and networks carry pipe's labels and are removed with the run or reaped.

The proxy's configuration (which may hold model keys: runner/egress/keyproxy.py) and any files it
needs are written into the created container as files of mode 0600 owned by the proxy user before
it starts, never passed through its environment or command (`docker inspect` shows both). The
image installs Debian's `squid-openssl` flavour: the default `squid` package of bookworm (5.7) is
built with GnuTLS, whose TLS connections to an origin server neither verify the server's
certificate (a request, key included, went to a server signed by an unknown CA) nor read the reply
(ERR_READ_ERROR); the OpenSSL build verifies against the image's and the given CA bundles.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.errors import SandboxError
from sandbox.images import build_image

PROXY_IMAGE = "pipe-egress"
PROXY_PORT = 3128
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
READY_DEADLINE = 30.0  # seconds Squid may take to accept connections
READY_LINE = b"Accepting HTTP Socket connections"
DOCKERFILE = b"""# pipe's egress proxy: Squid (its OpenSSL build) on Debian, nothing else.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN apt-get update \\
 && apt-get install -y --no-install-recommends squid-openssl \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
CMD ["squid", "-N", "-f", "/etc/squid/squid.conf"]
"""
CONFIG_DIR = "/etc/squid"
CONFIG_FILE = "pipe.conf"  # written into CONFIG_DIR before the proxy starts, readable by the proxy user only
PROXY_UID = 13  # Debian's `proxy` user and group (fixed by base-passwd), which runs Squid


def proxy_image_tag() -> str:
    """`pipe-egress:<12 hex>`: changes whenever the Dockerfile or PIPE_EGRESS_BASE does."""
    digest = hashlib.sha256(DOCKERFILE + os.environ.get("PIPE_EGRESS_BASE", "").encode())
    return f"{PROXY_IMAGE}:{digest.hexdigest()[:12]}"


def _build_context() -> bytes:
    """Dockerfile plus the host's CA bundle (TLS may be intercepted where the build runs)."""
    bundle = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.is_file() else b""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in (("Dockerfile", DOCKERFILE), ("ca-certificates.crt", bundle)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def ensure_proxy_image(client: Any, progress: Callable[[str], None]) -> str:
    """The proxy image's tag, built first when missing. Raises SandboxError when the build fails."""
    import docker

    tag = proxy_image_tag()
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    progress(f"building the egress proxy image {tag}")
    build_image(client, _build_context(), tag, "egress", lambda line: None, os.environ.get("PIPE_EGRESS_BASE"))
    return tag


@dataclass(frozen=True)
class Attachment:
    """Where a sandbox with one allow-list goes: the internal network's name, its subnet (CIDR) and
    the proxy's address on it."""

    network: str
    subnet: str
    proxy: str

    @property
    def proxy_url(self) -> str:
        return f"http://{self.proxy}:{PROXY_PORT}"


class EgressProxy:
    """One run's proxy: `start(keys, config_for)` creates an internal network per key (an opaque
    policy key), the proxy container, then waits until Squid accepts connections; `attachment(key)`
    says where a sandbox with that policy goes; `read_log()` returns the access-log lines written
    since the last call; `close()` removes the proxy and the networks. `labels` go on all of them.
    Raises SandboxError when the engine refuses a network or the proxy does not come up."""

    def __init__(self, client: Any, labels: Mapping[str, str], outward: str | None = None) -> None:
        self._client = client
        self._labels = {"pipe.managed": "1", "pipe.egress": "1", **labels}
        self._outward = outward or os.environ.get("PIPE_EGRESS_NETWORK") or "bridge"
        self._networks: list[Any] = []
        self._container: Any = None
        self._attachments: dict[str, Attachment] = {}
        self._since = 0
        self._seen = b""

    def start(
        self,
        keys: Sequence[str],
        config_for: Callable[[Mapping[str, str]], str],
        progress: Callable[[str], None],
        files: Mapping[str, bytes] | None = None,
    ) -> None:
        """Create the networks and the proxy, write `config_for(subnets)` (subnets: key -> CIDR)
        and `files` (name -> content, e.g. a CA bundle) into CONFIG_DIR as files of mode 0600 owned
        by the proxy user (never through the environment: the configuration may hold model keys,
        and `docker inspect` shows a container's environment), start it and wait until it accepts
        connections."""
        import docker

        image = ensure_proxy_image(self._client, progress)
        suffix = f"{os.getpid()}-{time.monotonic_ns() % 10**9}"
        try:
            subnets: dict[str, str] = {}
            for number, key in enumerate(keys):
                network = self._client.networks.create(
                    f"pipe-egress-{suffix}-{number}",
                    driver="bridge",
                    internal=True,
                    labels=self._labels,
                    options={"com.docker.network.bridge.inhibit_ipv4": "true"},
                )
                self._networks.append(network)
                network.reload()
                subnets[key] = network.attrs["IPAM"]["Config"][0]["Subnet"]
            self._container = self._client.containers.create(
                image,
                command=["squid", "-N", "-f", f"{CONFIG_DIR}/{CONFIG_FILE}"],
                labels=self._labels,
                network=self._outward,
                detach=True,
                user="proxy",
                cap_drop=["ALL"],
                security_opt=["no-new-privileges:true"],
                mem_limit=256 * 1024**2,
                pids_limit=256,
            )
            for network in self._networks:
                network.connect(self._container)
            written = {**(files or {}), CONFIG_FILE: config_for(subnets).encode()}
            self._container.put_archive(CONFIG_DIR, _private_files(written))
            self._container.start()
            self._container.reload()
            addresses = self._container.attrs["NetworkSettings"]["Networks"]
            for key, network in zip(keys, self._networks, strict=True):
                self._attachments[key] = Attachment(network.name, subnets[key], addresses[network.name]["IPAddress"])
            self._wait_ready()
        except docker.errors.APIError as error:
            self.close()
            raise SandboxError(f"cannot start the egress proxy: {error.explanation}") from None
        except BaseException:
            self.close()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_DEADLINE
        while time.monotonic() < deadline:
            logs = self._container.logs(stdout=True, stderr=True)
            if READY_LINE in logs:
                return
            self._container.reload()
            if self._container.status not in ("created", "running"):
                break
            time.sleep(0.05)
        tail = self._container.logs(tail=15).decode(errors="replace").strip()
        raise SandboxError(f"the egress proxy did not start: {tail}")

    def attachment(self, key: str) -> Attachment:
        return self._attachments[key]

    def read_log(self) -> list[str]:
        """Access-log lines (Squid writes them to stdout) written since the last call."""
        if self._container is None:
            return []
        data = self._container.logs(stdout=True, stderr=False)
        fresh, self._seen = data[len(self._seen) :], data
        return [line for line in fresh.decode("utf-8", errors="replace").splitlines() if line.startswith("pipe ")]

    def close(self) -> None:
        """Remove the proxy, then its networks (safe to call more than once)."""
        import docker

        if self._container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self._container.remove(force=True)
            self._container = None
        for network in self._networks:
            _remove_network(network)
        self._networks.clear()


def _private_files(files: Mapping[str, bytes]) -> bytes:
    """A tar archive of `files` (name -> content), each of mode 0600 owned by PROXY_UID."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), 0o600, PROXY_UID, PROXY_UID
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _remove_network(network: Any) -> None:
    """Remove `network`, first cutting off what is still attached to it (the run's sandboxes still
    being removed in the background). One that still will not go is left for `reap` (labelled)."""
    import docker

    with contextlib.suppress(docker.errors.NotFound):
        try:
            network.remove()
        except docker.errors.APIError:
            network.reload()
            for container_id in network.attrs.get("Containers") or {}:
                with contextlib.suppress(docker.errors.APIError):
                    network.disconnect(container_id, force=True)
            with contextlib.suppress(docker.errors.APIError):
                network.remove()


def reap_networks(client: Any, labels: Mapping[str, str]) -> int:
    """Remove every network carrying all `labels` (after their containers were removed)."""

    filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
    found = client.networks.list(filters=filters)
    for network in found:
        _remove_network(network)
    return len(found)
