"""Model keys that never enter the sandbox: the model APIs the named agents call, which key each
takes and in which request header, and the route through the run's proxy that carries it.

A named agent's sandbox gets, for each model API its CLI may call (runner/agents/: `claude` ->
anthropic, `codex` -> openai, `gemini` -> google, `aider` and `opencode` -> all three), the API's
base-URL variables pointing at a port of the run's egress proxy (`http://PROXY:PORT/PATH`) and the
key variables set to PLACEHOLDER. The proxy (runner/egress/keyproxy.py) forwards what arrives on
that port to the real API, after removing every key header the sandbox sent and adding the real
one. The real key is read from the run's secrets (the pipeline's `secrets:`, from the person's
environment) and lives only in the proxy's configuration file.

The upstream is the API's default host (the first host of its egress preset in presets.yml, over
HTTPS) or the base URL the person gave in the host environment (e.g. ANTHROPIC_BASE_URL), kept
with its path, so the sandbox's base URL carries the same path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from runner.egress.policy import presets
from runner.errors import UsageError
from runner.pipeline.egress import EgressPolicy
from runner.pipeline.model import Step

PLACEHOLDER = "pipe-proxy-placeholder"
FIRST_PORT = 3200  # the proxy's port for the first route; the next ones follow
KEY_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key")  # removed from every request on a route
_KEY = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII without spaces: what fits in a header value


@dataclass(frozen=True)
class Provider:
    """One model API. `name` is also its egress preset; `secrets` the variables that may hold its
    key (the first one set wins); the key goes in `header` as `value` (`{key}` replaced);
    `base_variables` are the variables its clients read a base URL from (the first one is also
    read on the host for a different upstream); `path` the API's base path on its default host."""

    name: str
    secrets: tuple[str, ...]
    header: str
    value: str
    base_variables: tuple[str, ...]
    path: str = ""

    def default_url(self) -> str:
        """`https://HOST/PATH` with HOST the first host of the preset called `name`."""
        return f"https://{presets()[self.name][0]}{self.path}"


PROVIDERS = (
    # Claude Code and the Anthropic SDKs read ANTHROPIC_BASE_URL and send the key as x-api-key.
    Provider("anthropic", ("ANTHROPIC_API_KEY",), "x-api-key", "{key}", ("ANTHROPIC_BASE_URL",)),
    # Codex, the OpenAI SDKs and litellm (aider) read OPENAI_BASE_URL (litellm also OPENAI_API_BASE),
    # whose default ends in /v1, and send the key as a bearer token.
    Provider(
        "openai",
        ("OPENAI_API_KEY", "CODEX_API_KEY"),
        "Authorization",
        "Bearer {key}",
        ("OPENAI_BASE_URL", "OPENAI_API_BASE"),
        "/v1",
    ),
    # The Gemini CLI reads GOOGLE_GEMINI_BASE_URL (the Google Gen AI SDK); the key goes as x-goog-api-key.
    Provider("google", ("GEMINI_API_KEY",), "x-goog-api-key", "{key}", ("GOOGLE_GEMINI_BASE_URL",)),
)


def providers_for(secrets: Iterable[str]) -> list[Provider]:
    """The providers whose key is among `secrets` (an agent's AgentSpec.secrets), in PROVIDERS order."""
    wanted = set(secrets)
    return [provider for provider in PROVIDERS if wanted & set(provider.secrets)]


def is_model_key(name: str) -> bool:
    """Whether the variable `name` holds a model key a key route carries."""
    return any(name in provider.secrets for provider in PROVIDERS)


@dataclass(frozen=True)
class Upstream:
    """Where a route's requests go: `tls` (https), `host`, `port`, and the base `path` ('' or
    '/v1'-like, no trailing slash)."""

    tls: bool
    host: str
    port: int
    path: str

    @property
    def address(self) -> str:
        """`host` or `host:port` when the port is not the scheme's default (the Host header)."""
        return self.host if self.port == (443 if self.tls else 80) else f"{self.host}:{self.port}"


def parse_upstream(url: str, variable: str) -> Upstream:
    """`url` (http or https, no query, user or fragment) as an Upstream. Raises UsageError naming
    `variable` (where the URL came from) when it is not such a URL."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise UsageError(f"{variable}: {url!r} is not an http(s) URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError(f"{variable}: the model API's base URL may not carry a query, fragment or user")
    if not re.fullmatch(r"[A-Za-z0-9._~/%-]*", parts.path):
        raise UsageError(f"{variable}: the path of {url!r} has characters a proxy route cannot carry")
    tls = parts.scheme == "https"
    return Upstream(tls, parts.hostname, port or (443 if tls else 80), parts.path.rstrip("/"))


@dataclass(frozen=True)
class KeyRoute:
    """One model API reachable through the proxy's `port`, with `key` added on the way to `upstream`.
    The key is never shown by repr()."""

    provider: Provider
    upstream: Upstream
    port: int
    key: str = field(repr=False)


def providers_with_keys(secrets: Mapping[str, str]) -> tuple[str, ...]:
    """The names of the providers one of whose key variables is set (non-empty) in `secrets`: those
    a run has key routes for (see key_routes)."""
    return tuple(p.name for p in PROVIDERS if any((secrets.get(name) or "").strip() for name in p.secrets))


def key_routes(secrets: Mapping[str, str], environ: Mapping[str, str]) -> list[KeyRoute]:
    """A route for each provider whose key is set (non-empty) in `secrets` (the run's secret
    values), to the base URL in `environ` (the host's environment: the provider's first base
    variable) or the provider's default. Ports from FIRST_PORT in PROVIDERS order. Raises
    UsageError when a key has characters no header can carry or a base URL is not usable."""
    found: list[KeyRoute] = []
    for provider in PROVIDERS:
        name = next((name for name in provider.secrets if (secrets.get(name) or "").strip()), None)
        if name is None:
            continue
        key = secrets[name].strip()
        if not _KEY.match(key) or '"' in key or "\\" in key:
            raise UsageError(
                f"secret {name}: a model key must be printable ASCII without spaces, quotes or backslashes"
            )
        variable = provider.base_variables[0]
        given = environ.get(variable, "").strip()
        upstream = parse_upstream(given or provider.default_url(), variable if given else f"preset {provider.name}")
        found.append(KeyRoute(provider, upstream, FIRST_PORT + len(found), key))
    return found


def sandbox_variables(routes: Sequence[KeyRoute], proxy: str) -> dict[str, str]:
    """The variables a named agent's sandbox gets for `routes` (those of its providers): each base
    variable -> `http://PROXY:PORT/PATH` (the proxy's address on the sandbox's network), each key
    variable -> PLACEHOLDER."""
    variables: dict[str, str] = {}
    for route in routes:
        url = f"http://{proxy}:{route.port}{route.upstream.path}"
        variables.update(dict.fromkeys(route.provider.base_variables, url))
        variables.update(dict.fromkeys(route.provider.secrets, PLACEHOLDER))
    return variables


def agent_policy(policy: EgressPolicy, providers: Sequence[str]) -> EgressPolicy:
    """The egress of an agent step in a run with key routes for `providers` (provider names; none:
    `policy` unchanged). The sandbox sits on a network of its own, whose only way to a model API is
    its key route: `none` becomes an empty allow-list (the model APIs and nothing else), an
    allow-list keeps its entries, and `open` becomes mode `open` (every HTTP(S) destination through
    the proxy, recorded; other protocols do not get out). Even with `open` egress the key stays in
    the proxy: it is what a hijacked agent could carry away and use after the run, whatever else
    it may reach while the run lasts."""
    if not providers:
        return policy
    keys = tuple(providers)
    if policy.kind == "none":
        return EgressPolicy("allow", (), "enforce", keys)
    if policy.kind == "open":
        return EgressPolicy("allow", (), "open", keys)
    return replace(policy, keys=keys)


def refuse_keys_in_agent_env(steps: Iterable[Step]) -> None:
    """Refuse (UsageError, before anything runs) an agent step (`uses: agent`) whose `env:` sets a
    model key variable: its value would be in the sandbox. Named agents get their key through the
    key proxy when the pipeline declares it under `secrets:`; a custom agent command reads the
    base-URL and placeholder variables the same way."""
    found = [f"{step.id}: {name}" for step in steps if step.uses == "agent" for name in step.env if is_model_key(name)]
    if found:
        raise UsageError(
            "a model key in an agent step's env: would be inside its sandbox ("
            + ", ".join(found)
            + "); remove it from env: and declare it under secrets: instead: pipe then keeps it in the "
            "run's key proxy and gives the agent the proxy's address and a placeholder key"
        )
