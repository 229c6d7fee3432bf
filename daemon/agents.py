"""The agents table: one row per protocol, everything the daemon does differently per agent.

A row says how to build the codec for one process, the argv that starts it (with the resume
flag where the agent resumes through its argv), the command that continues a session in a
terminal, and which npm package `doctor` compares the installed version with. Adding an
agent family is adding a row here (and its codec in `bridge/codecs/`); nothing else in the
daemon branches on `protocol`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bridge.codecs.acp import AcpCodec
from bridge.codecs.base import AgentCodec
from bridge.codecs.claude import ClaudeCodec, claude_argv
from bridge.codecs.claude import resume_hint as claude_resume_hint
from bridge.codecs.codex import CodexCodec, codex_argv
from bridge.codecs.codex import resume_hint as codex_resume_hint
from bridge.config import AgentConfig, Config
from bridge.model import SessionView
from daemon.errors import LaunchError, NotFound

# what agents use for their session ids (UUIDs, thread ids): nothing a shell reads twice
_AGENT_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentKind:
    """How the daemon runs the agents of one protocol.

    `codec(agent, cwd, resume, max_line)` builds the codec of one process; `argv(agent,
    resume)` the command line; `resume_hint(quoted_id)` the terminal command that continues
    a session (None: the agent has none). `package` and `version_marker`: the npm package
    the real-agent tests pin, and what that agent's `--version` line contains (None: not
    pinned)."""

    codec: Callable[[AgentConfig, str, str | None, int], AgentCodec]
    argv: Callable[[AgentConfig, str | None], list[str]]
    resume_hint: Callable[[str], str] | None = None
    package: str | None = None
    version_marker: str | None = None


AGENT_KINDS: Mapping[str, AgentKind] = {
    # Claude resumes through its argv (`--resume=`), the others on the wire
    "claude": AgentKind(
        codec=lambda agent, cwd, resume, max_line: ClaudeCodec(max_line=max_line),
        argv=lambda agent, resume: claude_argv(agent.command, resume=resume, extra=agent.args),
        resume_hint=claude_resume_hint,
        # its `--version` line: "2.1.331 (Claude Code)"
        package="@anthropic-ai/claude-code", version_marker="(Claude Code)",
    ),
    # Codex resumes with `thread/resume`
    "codex": AgentKind(
        codec=lambda agent, cwd, resume, max_line: CodexCodec(
            cwd=cwd, approval_policy=agent.approval_policy, sandbox=agent.sandbox,
            resume=resume, max_line=max_line),
        argv=lambda agent, resume: codex_argv(agent.command, agent.args),
        resume_hint=codex_resume_hint,
        package="@openai/codex", version_marker="codex-cli",  # "codex-cli 0.169.0"
    ),
    # ACP resumes with `session/resume` or `session/load`; its command is run as configured
    "acp": AgentKind(
        codec=lambda agent, cwd, resume, max_line: AcpCodec(cwd=cwd, resume=resume,
                                                            max_line=max_line),
        argv=lambda agent, resume: [*agent.command, *agent.args],
    ),
}


def agent_kind(protocol: str) -> AgentKind:
    """The row for `protocol`; LaunchError when the daemon has none."""
    try:
        return AGENT_KINDS[protocol]
    except KeyError:
        raise LaunchError(f"agents with protocol {protocol!r} are not supported") from None


def configured_agent(config: Config, name: str) -> AgentConfig:
    """The agent called `name` in the config; NotFound naming the configured ones."""
    try:
        return config.agent(name)
    except KeyError:
        names = ", ".join(sorted(config.agents))
        raise NotFound(f"no agent {name!r}; configured agents: {names}") from None


def make_codec(agent: AgentConfig, *, cwd: str, resume: str | None, max_line: int) -> AgentCodec:
    """The codec for one process of `agent` in `cwd`, resuming `resume` if it resumes on
    the wire."""
    return agent_kind(agent.protocol).codec(agent, cwd, resume, max_line)


def agent_argv(agent: AgentConfig, resume: str | None) -> list[str]:
    """The command line that starts one process of `agent`."""
    return agent_kind(agent.protocol).argv(agent, resume)


def resume_command(session: SessionView) -> str | None:
    """The command that continues the session in a terminal, in its directory; None when
    its agent has none or chose an id that is not a plain token (it is not shown)."""
    if not session.agent_session_id or not _AGENT_SESSION_ID.fullmatch(
            session.agent_session_id):
        return None
    kind = AGENT_KINDS.get(session.protocol)
    if kind is None or kind.resume_hint is None:
        return None
    return kind.resume_hint(shlex.quote(session.agent_session_id))
