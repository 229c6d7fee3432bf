"""One contract for every agent driver: Claude Code, Codex (app-server) and any ACP agent.

Each test runs `agent-bridge run` as a subprocess with the protocol's fake agent (a real
executable speaking the real wire protocol) and drives it through the CLI only. What the
agent received is read back from the fake's `--record` file and translated into the
neutral decision names, so one assertion holds for all three protocols.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.harness import Bridge, FakeAgent, wait_until

REASON = "not in this repo"


@dataclass(frozen=True)
class Driver:
    """How one protocol's wire answers read in neutral terms."""

    protocol: str
    launcher: str = "local"  # or "ssh": the agent runs on a host reached over SSH
    hosts: Any = None
    tmp: Any = None

    def agent(self, scenario: str = "approve", *args: str) -> FakeAgent:
        return FakeAgent(protocol=self.protocol, scenario=scenario, args=args)

    def sent(self, bridge: Bridge) -> list[dict[str, Any]]:
        return bridge.recorded()

    def answers(self, bridge: Bridge) -> list[dict[str, Any]]:
        """The raw approval answers the agent received, oldest first."""
        lines = self.sent(bridge)
        if self.protocol == "claude":
            return [m["response"]["response"] for m in lines
                    if m.get("type") == "control_response"
                    and m["response"].get("subtype") == "success"]
        if self.protocol == "codex":
            return [m["result"] for m in lines if "method" not in m
                    and isinstance(m.get("result"), dict) and "decision" in m["result"]]
        return [m["result"]["outcome"] for m in lines if "method" not in m
                and isinstance(m.get("result"), dict) and "outcome" in m["result"]]

    def decisions(self, bridge: Bridge) -> list[str]:
        return [self._neutral(a) for a in self.answers(bridge)]

    def _neutral(self, answer: dict[str, Any]) -> str:
        if self.protocol == "claude":
            if answer["behavior"] == "allow":
                return "allow_session" if answer.get("updatedPermissions") else "allow_once"
            return "stop" if answer.get("interrupt") else "deny"
        if self.protocol == "codex":
            return {"accept": "allow_once", "acceptForSession": "allow_session",
                    "decline": "deny", "cancel": "stop"}[answer["decision"]]
        if answer["outcome"] == "cancelled":
            return "stop"
        return {"allow": "allow_once", "allow_always": "allow_session",
                "reject": "deny"}[answer["optionId"]]

    def interrupted(self, bridge: Bridge) -> bool:
        lines = self.sent(bridge)
        if self.protocol == "claude":
            return any(m.get("type") == "control_request"
                       and m["request"]["subtype"] == "interrupt" for m in lines)
        method = "turn/interrupt" if self.protocol == "codex" else "session/cancel"
        return any(m.get("method") == method for m in lines)

    def prompts(self, bridge: Bridge) -> list[str]:
        """Every prompt the agent received, as the text it read."""
        lines = self.sent(bridge)
        if self.protocol == "claude":
            return [m["message"]["content"] for m in lines if m.get("type") == "user"]
        if self.protocol == "codex":
            return ["\n".join(i["text"] for i in m["params"]["input"])
                    for m in lines if m.get("method") == "turn/start"]
        return ["\n".join(b["text"] for b in m["params"]["prompt"])
                for m in lines if m.get("method") == "session/prompt"]

    def reason_reached_the_agent(self, bridge: Bridge, reason: str) -> bool:
        if self.protocol == "claude":  # with the deny itself
            return any(a.get("message") == reason for a in self.answers(bridge))
        # Codex and ACP answers carry no reason: it comes with the next prompt
        return reason in self.prompts(bridge)[-1]

    def resumed(self, bridge: Bridge, agent_session_id: str) -> bool:
        lines = self.sent(bridge)
        if self.protocol == "claude":
            return True  # `--resume=<id>` is argv, not stdin; the turn count below proves it
        if self.protocol == "codex":
            return any(m.get("method") == "thread/resume"
                       and m["params"]["threadId"] == agent_session_id for m in lines)
        return any(m.get("method") == "session/resume"
                   and m["params"]["sessionId"] == agent_session_id for m in lines)


@pytest.fixture(
    params=[(p, launcher) for launcher in ("local", "ssh") for p in ("claude", "codex", "acp")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    protocol, launcher = request.param
    if launcher == "local":
        yield Driver(protocol)
        return
    hosts = request.getfixturevalue("ssh")
    yield Driver(protocol, launcher, hosts, request.getfixturevalue("tmp_path"))
    ran = [c for host in hosts.hosts for c in host.commands]
    assert any("exec env" in c and "AGENT_BRIDGE_SESSION" in c for c in ran), (
        "the agent did not run over SSH")


def running(make_bridge: Any, driver: Driver, scenario: str = "approve") -> Bridge:
    bridge = make_bridge(agents={"agent": driver.agent(scenario)})
    if driver.launcher == "ssh":
        # the same machine, reached over SSH: the host sees what the agent needs to see
        box = driver.hosts.add(driver.tmp, "box1", env=dict(bridge.env))
        text = bridge.config.read_text()
        here = f'path = "{bridge.project}"\n'
        bridge.config.write_text(text.replace(here, here + 'host = "box1"\n', 1) + box.config())
    bridge.start()
    return bridge


def new(bridge: Bridge) -> str:
    return bridge.json("new", "demo", "please run a command", "--agent", "agent")["id"]


def agent_gone(bridge: Bridge) -> None:
    daemon = [bridge.process.pid] if bridge.process is not None else []
    wait_until(lambda: bridge.leftovers() == daemon, what="the agent process to exit")


def test_allow_once_lets_the_agent_act(make_bridge, driver):
    bridge = running(make_bridge, driver)
    sid = new(bridge)
    (pending,) = bridge.wait_approval(sid)
    assert pending["tool"] == "Bash"
    assert "echo hi > out.txt" in pending["input"]["command"]
    assert "Allowed once" in bridge.cli("approve", pending["id"]).stdout
    session = bridge.wait_state(sid, "idle")
    assert driver.decisions(bridge) == ["allow_once"]
    assert (bridge.project / "out.txt").read_text().strip() == "hi"
    assert session["turns"] == 1 and session["agent_session_id"]
    if driver.protocol == "codex":  # Codex counts tokens where Claude Code reports a cost
        assert session["tokens"] and session["tokens"] > 0
    kinds = [e["kind"] for e in session["events"]]
    assert kinds.index("approval_requested") < kinds.index("decision") < kinds.index(
        "turn_completed")
    finished = [e["data"] for e in session["events"] if e["kind"] == "tool_finished"]
    assert [f["is_error"] for f in finished] == [False]


def test_deny_refuses_and_the_reason_reaches_the_agent(make_bridge, driver):
    bridge = running(make_bridge, driver)
    sid = new(bridge)
    (pending,) = bridge.wait_approval(sid)
    bridge.cli("deny", pending["id"], "--reason", REASON)
    session = bridge.wait_state(sid, "idle")
    assert driver.decisions(bridge) == ["deny"]
    assert not (bridge.project / "out.txt").exists()
    finished = [e["data"] for e in session["events"] if e["kind"] == "tool_finished"]
    assert [f["is_error"] for f in finished] == [True]
    assert session["approvals"][0]["state"] == "denied"
    bridge.cli("send", sid, "go on then")  # the agent hears the reason at the latest now
    bridge.wait_approval(sid)
    assert driver.reason_reached_the_agent(bridge, REASON)
    assert "go on then" in driver.prompts(bridge)[-1]


def test_allow_for_the_session_is_passed_on_as_such(make_bridge, driver):
    bridge = running(make_bridge, driver)
    sid = new(bridge)
    (pending,) = bridge.wait_approval(sid)
    assert "for the session" in bridge.cli("approve", pending["id"], "--for-session").stdout
    bridge.wait_state(sid, "idle")
    # ACP's "always" is whatever the agent remembers (a whole tool, a command's first
    # word): the daemon keeps the exact rule and the agent is allowed once
    assert driver.decisions(bridge) == [
        "allow_once" if driver.protocol == "acp" else "allow_session"]
    (answer,) = driver.answers(bridge)
    if driver.protocol == "claude":
        assert all(rule["destination"] == "session" for rule in answer["updatedPermissions"])
    elif driver.protocol == "codex":
        assert answer == {"decision": "acceptForSession"}
    else:
        assert answer == {"outcome": "selected", "optionId": "allow"}
    assert (bridge.project / "out.txt").exists()


def test_stop_while_an_approval_waits_interrupts_the_agent(make_bridge, driver):
    bridge = running(make_bridge, driver)
    sid = new(bridge)
    bridge.wait_approval(sid)
    assert bridge.json("stop", sid)["state"] == "stopped"
    assert driver.decisions(bridge) == ["stop"]
    assert driver.interrupted(bridge)
    session = bridge.session(sid)
    assert session["state"] == "stopped"
    assert session["approvals"][0]["state"] == "denied"
    assert not (bridge.project / "out.txt").exists()
    agent_gone(bridge)


def test_resume_after_a_daemon_restart_continues_the_agent_session(make_bridge, driver):
    bridge = running(make_bridge, driver)
    sid = new(bridge)
    (pending,) = bridge.wait_approval(sid)
    bridge.cli("approve", pending["id"])
    first = bridge.wait_state(sid, "idle")
    bridge.stop()
    bridge.start()
    assert bridge.session(sid)["state"] == "completed"
    bridge.cli("resume", sid, "and once more")
    (again,) = bridge.wait_approval(sid)
    bridge.cli("approve", again["id"])
    resumed = bridge.wait_state(sid, "idle")
    assert resumed["agent_session_id"] == first["agent_session_id"]
    assert driver.resumed(bridge, first["agent_session_id"])
    texts = [e["data"]["result_text"] for e in resumed["events"] if e["kind"] == "turn_completed"]
    assert "turn 2 of" in texts[-1]  # the agent carried the first turn's history


def test_a_crash_mid_approval_fails_the_session_and_expires_the_approval(make_bridge, driver):
    bridge = running(make_bridge, driver, "crash_mid_approval")
    sid = new(bridge)
    session = bridge.wait_state(sid, "failed")
    assert "exited with code 3" in session["error"]
    assert "fake crash" in session["error"]
    (approval,) = session["approvals"]
    assert approval["state"] == "expired"
    late = bridge.cli("approve", approval["id"], check=False)
    assert late.returncode == 1
    assert driver.decisions(bridge) == []


def test_garbage_output_fails_the_session_with_the_reason(make_bridge, driver):
    bridge = running(make_bridge, driver, "garbage")
    sid = new(bridge)
    session = bridge.wait_state(sid, "failed")
    assert "broke its protocol" in session["error"]
    assert "corrupt JSON line" in session["error"]
    agent_gone(bridge)


def test_shutdown_with_a_request_pending_refuses_it_and_leaves_no_process(make_bridge, driver):
    bridge = running(make_bridge, driver)
    sid = new(bridge)
    bridge.wait_approval(sid)
    bridge.stop()  # SIGTERM to the daemon
    decisions = driver.decisions(bridge)
    assert decisions and set(decisions) <= {"deny", "stop"}  # a refusal, never an allow
    assert not (bridge.project / "out.txt").exists()
    assert bridge.leftovers() == []


# -- what only some protocols have ---------------------------------------------------


def test_acp_resume_falls_back_to_session_load_and_ignores_the_replay(make_bridge):
    driver = Driver("acp")
    bridge = make_bridge(agents={"agent": driver.agent("text", "--no-resume")})
    bridge.start()
    sid = new(bridge)
    first = bridge.wait_state(sid, "idle")
    bridge.stop()
    bridge.start()
    bridge.cli("resume", sid, "and once more")
    wait_until(lambda: bridge.session(sid)["turns"] == 2, what="the second turn")
    resumed = bridge.wait_state(sid, "idle")
    assert resumed["agent_session_id"] == first["agent_session_id"]
    loads = [m for m in driver.sent(bridge) if m.get("method") == "session/load"]
    assert [m["params"]["sessionId"] for m in loads] == [first["agent_session_id"]]
    texts = [e["data"]["text"] for e in resumed["events"] if e["kind"] == "assistant_text"]
    assert texts == ["Hello from fake acp.", "Hello from fake acp. (turn 2 of session)"]


def test_codex_resume_of_a_lost_thread_fails_with_codexs_reason(make_bridge, tmp_path):
    bridge = make_bridge(agents={"agent": Driver("codex").agent("text")})
    bridge.start()
    sid = new(bridge)
    bridge.wait_state(sid, "idle")
    bridge.stop()
    shutil.rmtree(tmp_path / "codex-home")  # the rollout is gone
    bridge.start()
    bridge.cli("resume", sid, "and once more")
    session = bridge.wait_state(sid, "failed")
    assert "no rollout found for thread id" in session["error"]
    assert bridge.cli("stop", sid).returncode == 0
    agent_gone(bridge)
