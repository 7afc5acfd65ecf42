"""Each named agent's reader on the output its real CLI printed (captured from the pinned
versions against tests/support/fake_model.py: tests/agents/outputs/), and the invocation table."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner import agents
from runner.agents.result import final_result

OUTPUTS = Path(__file__).resolve().parent / "agents" / "outputs"


def captured(name: str) -> str:
    spec = agents.lookup(name)
    return (
        OUTPUTS / next(p.name for p in OUTPUTS.iterdir() if p.name.startswith(f"{name}-{spec.version}"))
    ).read_text()


def test_claude_envelope_gives_answer_cost_turns_and_session() -> None:
    report = agents.lookup("claude").read("some stderr noise\n" + captured("claude"))
    assert report.cost_usd == pytest.approx(0.0032) and report.turns == 1
    assert report.session == "0f9819ab-f7b7-4d98-b5c3-3bd8d756b183" and report.error is None
    assert final_result(report.text) == {
        "status": "done",
        "summary": "add adds",
        "changes": [{"path": "calc.py", "description": "edited with the CLI's own tool"}],
        "tests": "not run",
    }


def test_codex_events_give_last_message_turns_tokens_and_thread() -> None:
    report = agents.lookup("codex").read(captured("codex"))
    assert report.session == "01a2082d-a91b-7232-9288-bb6585593d7d"
    assert (report.turns, report.tokens, report.cost_usd) == (1, 240, None)
    result = final_result(report.text)
    assert result is not None and result["summary"] == "add adds"


def test_aider_output_gives_the_unwrapped_answer_and_session_cost() -> None:
    report = agents.lookup("aider").read(captured("aider"))
    assert report.cost_usd == pytest.approx(0.00045) and report.turns == 1
    result = final_result(report.text)
    assert result is not None and result["changes"][0]["path"] == "calc.py"


def test_a_name_is_a_whole_command_and_every_agent_declares_its_version() -> None:
    assert agents.named("claude") is agents.lookup("claude")
    assert agents.named("claude -p") is None and agents.named("fake-agent") is None
    for name in agents.names():
        spec = agents.lookup(name)
        assert spec.name == name and (spec.version or name == "pipe-patch-agent")
    with pytest.raises(KeyError, match="known: aider, claude"):
        agents.lookup("cursor")


def test_the_agent_image_pins_versions_and_installs_only_in_build_stages() -> None:
    from runner.agents import image

    text = image.dockerfile([agents.lookup(name) for name in ("claude", "aider", "gemini")])
    assert "@anthropic-ai/claude-code@2.1.328" in text and "aider-chat==0.86.2" in text
    assert "@google/gemini-cli@0.61.0" in text and f"node-linux-$arch@{agents.NODE_VERSION}" in text
    final = text.rsplit("FROM ${BASE}\n", 1)[1]
    assert "npm install" not in final and "pip install" not in final and "build-ca.pem" not in final
    with pytest.raises(ValueError, match="already in the default sandbox image"):
        image.dockerfile([agents.lookup("pipe-patch-agent")])


def test_only_http_registry_settings_travel_into_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.agents import image

    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "file:///opt/wheels")
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", "https://npm.example/")
    assert image.registry_args() == {
        "PIP_INDEX_URL": "https://mirror.example/simple",
        "NPM_CONFIG_REGISTRY": "https://npm.example/",
    }
