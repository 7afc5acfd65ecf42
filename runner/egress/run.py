"""A run's egress: starts the run's proxy the first time a sandbox with an allow-list needs it,
says where such a sandbox goes (network, resolver, proxy variables; for an agent step's policy,
also its model APIs' base URLs on the proxy and placeholder keys: runner/egress/keys.py), and turns
the proxy's access log into per-attempt records after each attempt."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from runner.egress.keyproxy import CA_FILE, key_ports_config
from runner.egress.keys import KeyRoute, sandbox_variables
from runner.egress.policy import Request, in_subnet, parse_log, rules, squid_config
from runner.errors import PipeError, sandbox_errors_mapped
from runner.pipeline.egress import EgressPolicy
from sandbox.network import Attachment, EgressProxy

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


class RunEgress:
    """The egress of one run. `policies` are every allow-list policy the run's steps may use (one
    internal network each); `backend` must be the Docker backend (it has `client`); `labels` go on
    the proxy and its networks. `routes` are the run's model-key routes (the proxy carries them
    for the sandboxes of policies with `keys`), `ca_bundle` the PEM bundle it verifies TLS model
    APIs with besides its image's. Thread-safe: sandboxes are prepared on a pool. The proxy's
    errors (sandbox.errors.SandboxError) are raised as pipe's (PipeError)."""

    def __init__(
        self,
        backend: Any,
        policies: Iterable[EgressPolicy],
        labels: Mapping[str, str],
        progress: Callable[[str], None],
        routes: Sequence[KeyRoute] = (),
        ca_bundle: bytes | None = None,
    ) -> None:
        self._backend = backend
        self._routes = list(routes)
        self._ca_bundle = ca_bundle
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
                files = {CA_FILE.rsplit("/", 1)[1]: self._ca_bundle} if self._ca_bundle else {}
                with sandbox_errors_mapped():
                    proxy.start(keys, self._config, self._progress, files)
                self._proxy = proxy
            return self._proxy

    def _config(self, subnets: Mapping[str, str]) -> str:
        """The proxy's configuration: the allow-lists by subnet, and each key route usable from the
        subnets of the policies naming its provider."""
        clients: dict[str, list[str]] = {}
        for key, subnet in sorted(subnets.items()):
            for provider in self._policies[key].keys:
                clients.setdefault(provider, []).append(subnet)
        ca_file = CA_FILE if self._ca_bundle else None
        return squid_config(self._policies, subnets, key_ports_config(self._routes, clients, ca_file))

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
        """Where a sandbox with allow-list `policy` goes, and the variables it gets: the proxy
        variables, and for a policy with `keys` its model APIs' base URLs on the proxy and
        placeholder keys (the proxy's own address and loopback then bypass the forward proxy)."""
        if policy.key not in self._policies:
            raise PipeError(f"sandbox.egress: the policy {policy.allow} was not planned for this run")
        attachment = self._started().attachment(policy.key)
        variables = {name: attachment.proxy_url for name in PROXY_VARIABLES} | {"NO_PROXY": "", "no_proxy": ""}
        routes = [route for route in self._routes if route.provider.name in policy.keys]
        if routes:
            direct = f"localhost,127.0.0.1,{attachment.proxy}"
            variables |= {"NO_PROXY": direct, "no_proxy": direct} | sandbox_variables(routes, attachment.proxy)
        return attachment, variables

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
