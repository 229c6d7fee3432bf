"""The agents table: one row per protocol the config accepts, and what each row builds."""

import typing

import pytest

from bridge.codecs.acp import AcpCodec
from bridge.codecs.claude import ClaudeCodec
from bridge.codecs.codex import CodexCodec
from bridge.config import AgentConfig, load_config
from bridge.model import SessionView
from bridge.session import SessionState
from daemon.agents import (
    AGENT_KINDS,
    agent_argv,
    configured_agent,
    make_codec,
    resume_command,
)
from daemon.errors import LaunchError, NotFound


def session(protocol: str, agent_session_id: str | None) -> SessionView:
    return SessionView(id="s1", project="p", agent=protocol, protocol=protocol, cwd="/tmp",
                       state=SessionState.IDLE, agent_session_id=agent_session_id,
                       created_at=1.0, updated_at=1.0)


def test_every_protocol_the_config_accepts_has_a_row():
    protocols = typing.get_args(typing.get_type_hints(AgentConfig)["protocol"])
    assert set(protocols) == set(AGENT_KINDS)


@pytest.mark.parametrize(("protocol", "codec_type"),
                         [("claude", ClaudeCodec), ("codex", CodexCodec), ("acp", AcpCodec)])
def test_each_row_builds_its_codec(protocol, codec_type):
    agent = AgentConfig(protocol=protocol, command=["agent"])
    assert isinstance(make_codec(agent, cwd="/tmp", resume=None, max_line=4096), codec_type)


def test_argv_resumes_claude_in_one_token_and_runs_the_others_as_configured():
    claude = AgentConfig(protocol="claude", command=["claude"], args=["--x"])
    assert agent_argv(claude, "-abc")[-1] == "--resume=-abc"
    codex = AgentConfig(protocol="codex", command=["codex", "app-server"], args=["-c", "m=x"])
    assert agent_argv(codex, "t1") == ["codex", "app-server", "-c", "m=x"]
    acp = AgentConfig(protocol="acp", command=["gemini", "--acp"])
    assert agent_argv(acp, "s") == ["gemini", "--acp"]


def test_resume_command_per_protocol_and_only_for_plain_ids():
    assert resume_command(session("claude", "abc-1")) == "claude --resume abc-1"
    assert resume_command(session("codex", "t1")) == "codex resume t1"
    assert resume_command(session("acp", "s1")) is None
    assert resume_command(session("claude", "-rf")) is None
    assert resume_command(session("claude", "a; rm -rf ~")) is None
    assert resume_command(session("claude", None)) is None


def test_unknown_protocol_and_agent_name_are_refused():
    with pytest.raises(LaunchError):
        make_codec(AgentConfig(protocol="nope", command=["x"]),  # type: ignore[arg-type]
                   cwd="/tmp", resume=None, max_line=4096)
    with pytest.raises(NotFound, match="configured agents: claude, codex"):
        configured_agent(load_config(""), "nobody")
