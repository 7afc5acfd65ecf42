"""A run's egress: starts the run's proxy the first time a sandbox with an allow-list needs it,
says where such a sandbox goes (network, resolver, proxy variables), and turns the proxy's access
log into per-attempt records after each attempt."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from runner.egress.policy import EgressPolicy, Request, in_subnet, parse_log, rules, squid_config
from runner.errors import PipeError
from sandbox.network import Attachment, EgressProxy

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


class RunEgress:
    """The egress of one run. `policies` are every allow-list policy the run's steps may use (one
    internal network each); `backend` must be the Docker backend (it has `client`); `labels` go on
    the proxy and its networks. Thread-safe: sandboxes are prepared on a pool."""

    def __init__(
        self,
        backend: Any,
        policies: Iterable[EgressPolicy],
        labels: Mapping[str, str],
        progress: Callable[[str], None],
    ) -> None:
        self._backend = backend
        self._policies = {policy.key: policy for policy in policies if policy.kind == "allow"}
        self._labels = labels
        self._progress = progress
        self._proxy: EgressProxy | None = None
        self._lock = threading.Lock()

    def _started(self) -> EgressProxy:
        with self._lock:
            if self._proxy is None:
                client = getattr(self._backend, "client", None)
                if client is None:
                    raise PipeError(f"sandbox.egress: allow-lists need the docker backend, not {self._backend.name}")
                proxy = EgressProxy(client, self._labels)
                keys = sorted(self._policies)
                proxy.start(keys, lambda subnets: squid_config(self._policies, subnets), self._progress)
                self._proxy = proxy
            return self._proxy

    def check(self) -> None:
        """Raise UsageError naming the first allow-list entry that is neither a preset, a host,
        a `*.domain` nor a `host:port` (so the run fails before its first step)."""
        for policy in self._policies.values():
            rules(policy)

    @property
    def policies(self) -> list[EgressPolicy]:
        """The run's allow-list policies."""
        return list(self._policies.values())

    def attach(self, policy: EgressPolicy) -> tuple[Attachment, dict[str, str]]:
        """Where a sandbox with allow-list `policy` goes, and the proxy variables it gets."""
        if policy.key not in self._policies:
            raise PipeError(f"sandbox.egress: the policy {policy.allow} was not planned for this run")
        attachment = self._started().attachment(policy.key)
        return attachment, {name: attachment.proxy_url for name in PROXY_VARIABLES} | {"NO_PROXY": "", "no_proxy": ""}

    def collect(self, policy: EgressPolicy | None) -> list[Request]:
        """The requests logged since the last call from sandboxes of `policy` (steps run one at a
        time, so they are the last attempt's); lines from other networks are dropped."""
        with self._lock:
            proxy = self._proxy
        if proxy is None or policy is None or policy.key not in self._policies:
            if proxy is not None:
                proxy.read_log()  # nothing of it belongs to this attempt
            return []
        import docker

        subnet = proxy.attachment(policy.key).subnet
        try:
            lines = proxy.read_log()
        except docker.errors.APIError as error:
            raise PipeError(f"cannot read the egress proxy's log: {error.explanation}") from None
        return [request for request in parse_log(lines) if in_subnet(request.client, subnet)]

    def close(self) -> None:
        """Remove the proxy and its networks."""
        with self._lock:
            if self._proxy is not None:
                self._proxy.close()
                self._proxy = None
