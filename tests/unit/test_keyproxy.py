"""Key routes (runner/egress/keys.py) and their Squid configuration (runner/egress/keyproxy.py):
which providers an agent's keys name, where each route goes, what the sandbox gets, and the
directives that drop the sandbox's key headers and add the real key on the way out only."""

from __future__ import annotations

import pytest

from runner import agents
from runner.egress.keyproxy import CA_FILE, key_ports_config
from runner.egress.keys import (
    FIRST_PORT,
    KEY_HEADERS,
    PLACEHOLDER,
    agent_policy,
    is_model_key,
    key_routes,
    parse_upstream,
    providers_for,
    sandbox_variables,
)
from runner.egress.policy import squid_config
from runner.errors import UsageError
from runner.pipeline.egress import NONE, OPEN, EgressPolicy

KEY = "sk-ant-test-0123456789abcdef%"


def names(secrets: tuple[str, ...]) -> list[str]:
    return [provider.name for provider in providers_for(secrets)]


def test_each_named_agent_calls_the_apis_of_its_keys() -> None:
    assert names(agents.lookup("claude").secrets) == ["anthropic"]
    assert names(agents.lookup("codex").secrets) == ["openai"]
    assert names(agents.lookup("gemini").secrets) == ["google"]
    assert names(agents.lookup("aider").secrets) == ["anthropic", "openai", "google"]
    assert names(agents.lookup("opencode").secrets) == ["anthropic", "openai", "google"]
    assert names(agents.lookup("pipe-patch-agent").secrets) == []
    assert is_model_key("CODEX_API_KEY") and not is_model_key("GITHUB_TOKEN")


def test_routes_only_for_the_keys_given_to_the_default_api_or_the_persons_base_url() -> None:
    routes = key_routes({"ANTHROPIC_API_KEY": KEY, "OPENAI_API_KEY": "", "CODEX_API_KEY": "sk-codex"}, {})
    assert [(r.provider.name, r.port) for r in routes] == [("anthropic", FIRST_PORT), ("openai", FIRST_PORT + 1)]
    anthropic, openai = routes
    assert (anthropic.upstream.tls, anthropic.upstream.host, anthropic.upstream.port) == (
        True,
        "api.anthropic.com",
        443,
    )
    assert openai.upstream.path == "/v1" and openai.key == "sk-codex"
    assert KEY not in repr(anthropic)
    given = key_routes({"ANTHROPIC_API_KEY": KEY}, {"ANTHROPIC_BASE_URL": "http://fake-model:8080/api/"})
    assert given[0].upstream.address == "fake-model:8080" and given[0].upstream.path == "/api"


@pytest.mark.parametrize(
    "url", ["ftp://host", "http://", "http://host:99999", "http://u:p@host", "http://host/?key=1", "http://h/a b"]
)
def test_an_unusable_base_url_is_refused_naming_its_variable(url: str) -> None:
    with pytest.raises(UsageError, match="ANTHROPIC_BASE_URL"):
        key_routes({"ANTHROPIC_API_KEY": KEY}, {"ANTHROPIC_BASE_URL": url})
    with pytest.raises(UsageError):
        parse_upstream(url, "X")


@pytest.mark.parametrize("key", ['sk"x', "sk x", "sk\\x", "sk\nx", "ключ"])
def test_a_key_no_header_can_carry_is_refused_without_showing_it(key: str) -> None:
    with pytest.raises(UsageError) as refused:
        key_routes({"OPENAI_API_KEY": key}, {})
    assert key not in str(refused.value)


def test_the_sandbox_gets_the_proxy_and_a_placeholder() -> None:
    routes = key_routes({"OPENAI_API_KEY": KEY}, {"OPENAI_BASE_URL": "http://fake:8080/v1"})
    variables = sandbox_variables(routes, "10.1.2.3")
    assert variables == {
        "OPENAI_BASE_URL": f"http://10.1.2.3:{FIRST_PORT}/v1",
        "OPENAI_API_BASE": f"http://10.1.2.3:{FIRST_PORT}/v1",
        "OPENAI_API_KEY": PLACEHOLDER,
        "CODEX_API_KEY": PLACEHOLDER,
    }
    assert KEY not in str(variables)


def test_the_accelerator_config_drops_key_headers_and_adds_the_real_key_per_port() -> None:
    routes = key_routes(
        {"ANTHROPIC_API_KEY": KEY, "OPENAI_API_KEY": "sk-open"},
        {"ANTHROPIC_BASE_URL": "http://fake:8080"},
    )
    lines = key_ports_config(routes, {"anthropic": ["10.9.0.0/24"]}, CA_FILE)
    assert f"http_port {FIRST_PORT} accel defaultsite=fake:8080 name=key0" in lines
    assert "cache_peer fake parent 8080 0 no-query no-digest originserver name=key0 forceddomain=fake:8080" in lines
    assert (
        "cache_peer api.openai.com parent 443 0 no-query no-digest originserver name=key1 "
        f"forceddomain=api.openai.com tls tls-cafile={CA_FILE}"
    ) in lines
    for header in KEY_HEADERS:
        assert f"request_header_access {header} deny key_ports" in lines
    assert 'request_header_add x-api-key "sk-ant-test-0123456789abcdef%%" key0_port' in lines
    assert 'request_header_add Authorization "Bearer sk-open" key1_port' in lines
    assert "never_direct allow key0_port" in lines and "cache_peer_access key1 deny all" in lines
    access = [line for line in lines if line.startswith("http_access")]
    # openai's route has no client network here: nobody may use it; nothing else may reach a key port
    assert access == [
        "http_access allow key0_port key0_clients",
        "http_access deny key_ports",
        "http_access deny key_port_numbers",
    ]
    assert "acl key0_clients src 10.9.0.0/24" in lines
    assert key_ports_config([], {"anthropic": ["10.9.0.0/24"]}, None) == []


def test_key_rules_come_before_every_other_access_rule() -> None:
    routes = key_routes({"GEMINI_API_KEY": "g-key"}, {})
    agent = EgressPolicy("allow", (), "enforce", ("google",))
    audit = EgressPolicy("allow", (), "audit")
    assert agent.key != EgressPolicy("allow").key  # a network of its own
    subnets = {agent.key: "10.8.0.0/24", audit.key: "10.7.0.0/24"}
    text = squid_config(
        {agent.key: agent, audit.key: audit}, subnets, key_ports_config(routes, {"google": ["10.8.0.0/24"]}, None)
    )
    access = [line for line in text.splitlines() if line.startswith("http_access")]
    assert access[:3] == [
        "http_access allow key0_port key0_clients",
        "http_access deny key_ports",
        "http_access deny key_port_numbers",
    ]
    assert access[-1] == "http_access deny all" and "http_access allow net0" in access  # the audit network, later
    assert 'request_header_add x-goog-api-key "g-key" key0_port' in text


def test_an_agent_steps_egress_gets_a_network_with_its_key_routes() -> None:
    keys = ("anthropic",)
    assert agent_policy(NONE, keys) == EgressPolicy("allow", (), "enforce", keys)
    assert agent_policy(OPEN, keys) == EgressPolicy("allow", (), "open", keys)
    listed = EgressPolicy("allow", ("python",), "audit")
    assert agent_policy(listed, keys) == EgressPolicy("allow", ("python",), "audit", keys)
    assert agent_policy(NONE, ()) is NONE and agent_policy(OPEN, ()) is OPEN
    opened = agent_policy(OPEN, keys)
    text = squid_config({opened.key: opened}, {opened.key: "10.6.0.0/24"})
    assert "http_access allow net0" in text  # open: anything, through the proxy


def test_a_model_key_in_an_agent_steps_env_is_refused_pointing_to_secrets() -> None:
    from runner.egress.keys import refuse_keys_in_agent_env
    from runner.pipeline.model import Step

    fine = [Step("a", 1, uses="agent", env={"TOKEN_LIMIT": "9"}), Step("b", 2, run="x", env={"OPENAI_API_KEY": "k"})]
    refuse_keys_in_agent_env(fine)  # a run: step is not an agent step
    with pytest.raises(UsageError, match=r"implement: CODEX_API_KEY.*declare it under secrets:"):
        refuse_keys_in_agent_env([Step("implement", 3, uses="agent", env={"CODEX_API_KEY": "{{ secrets.K }}"})])
