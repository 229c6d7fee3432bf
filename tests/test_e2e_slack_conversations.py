"""Conversations through Slack, end to end (daemon subprocess, slack-bolt against the fake Slack
Web API and Socket Mode): a plan approved, approved accepting edits, or sent back with the
person's feedback from the deny-reason modal (the fake Claude's ExitPlanMode, answered with
the exact JSON the real CLI takes: tests/test_real_claude_plans.py); and `/agent mode`,
`/agent model`, `/agent interrupt` against the REAL Claude Code (the mock model API on
127.0.0.1), whose answers show on the status card."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.model_api import ThreadedModelAPI, bash, text_only, tool_then_finish
from tests.harness import Bridge, FakeAgent, wait_until
from tests.real_binaries import CLAUDE, START, use_real_claude
from tests.slack_harness import ThreadedSlack
from tests.test_surface_contract import SlackDriver

PLAN_INPUT = {"plan": "# Plan: greet\n\n1. Write the greeting\n2. Check that it reads well"}


@pytest.fixture
def slack() -> Iterator[ThreadedSlack]:
    fake = ThreadedSlack()
    yield fake
    fake.close()


@pytest.fixture
def planning(make_bridge: Any, slack: ThreadedSlack) -> tuple[Bridge, SlackDriver]:
    driver = SlackDriver(slack)
    bridge: Bridge = make_bridge(extra=driver.config(), agents={
        "planner": FakeAgent(protocol="claude", scenario="plan")})
    bridge.env.update(driver.env())
    bridge.start()
    driver.ready()
    return bridge, driver


def plan_card(driver: SlackDriver) -> tuple[Any, Any]:
    thread = driver.start_session("demo plan a greeting --agent planner")
    card = driver.card_with(thread, "Plan to approve")
    assert "# Plan: greet" in card.text and "2. Check that it reads well" in card.text
    assert [label for label, _ in card.buttons] == [
        "Approve", "Approve, accept edits", "Keep planning…", "Stop"]
    return thread, card


def answer(bridge: Bridge) -> dict[str, Any]:
    (response,) = wait_until(bridge.answers, what="the decision to reach the agent")
    return response["response"]


def test_approve_from_slack(planning: tuple[Bridge, SlackDriver]) -> None:
    bridge, driver = planning
    thread, card = plan_card(driver)
    assert "Approved" in driver.tap(card, card.payload("Approve"))
    got = answer(bridge)
    assert got["behavior"] == "allow" and "updatedPermissions" not in got
    assert got["updatedInput"]["plan"] == PLAN_INPUT["plan"]
    assert "Plan approved, coding." in driver.card_with(thread, "Turn finished").text
    wait_until(lambda: "Approved by @alice (slack)" in driver.current(card).text,
               what="the card to say who approved")


def test_approve_accepting_edits_from_slack(planning: tuple[Bridge, SlackDriver]) -> None:
    bridge, driver = planning
    _, card = plan_card(driver)
    assert "Approved, accepting edits" in driver.tap(card, card.payload("Approve, accept edits"))
    assert answer(bridge)["updatedPermissions"] == [
        {"type": "setMode", "mode": "acceptEdits", "destination": "session"}]
    wait_until(lambda: "Approved, accepting edits by @alice (slack)" in driver.current(card).text,
               what="the card to say so")


def test_keep_planning_sends_the_modals_feedback(planning: tuple[Bridge, SlackDriver]) -> None:
    bridge, driver = planning
    thread, card = plan_card(driver)
    driver.tap(card, card.payload("Keep planning…"))
    driver.give_reason(thread, "Add a test for the greeting.")
    got = answer(bridge)
    assert got == {"behavior": "deny", "message": "Add a test for the greeting.",
                   "interrupt": False}
    assert "Planning more." in driver.card_with(thread, "Turn finished").text
    wait_until(lambda: "Sent back to planning by @alice (slack)" in driver.current(card).text,
               what="the card to say so")
    assert "Add a test for the greeting." in driver.current(card).text


@pytest.fixture
def model() -> Iterator[ThreadedModelAPI]:
    api = ThreadedModelAPI(text_only("Planned."))
    yield api
    api.close()
    assert not api.api.errors, api.api.errors


@pytest.mark.real_agents
def test_agent_mode_model_and_interrupt_from_slack(make_bridge: Any, slack: ThreadedSlack,
                                                   model: ThreadedModelAPI) -> None:
    """`/agent new … --plan`, `/agent mode ID MODE` (a mode that never asks is refused,
    naming the config key), `/agent model ID NAME`, and `/agent interrupt ID` ending a turn
    that waits for an approval while the real Claude Code process and session stay."""
    driver = SlackDriver(slack)
    bridge: Bridge = make_bridge(extra=driver.config())
    bridge.env.update(driver.env())
    use_real_claude(bridge, CLAUDE.require(), model.base_url)
    bridge.start()
    driver.ready()
    thread = driver.start_session("demo think about it --plan")
    sid = bridge.json("sessions")[0]["id"]
    bridge.wait_state(sid, "idle", timeout=START)
    wait_until(lambda: "mode plan" in driver.status_card(thread).text, timeout=START,
               what="the status card to show plan mode")

    assert "allow_bypass_from_chat" in driver.command(f"mode {sid} bypassPermissions")
    driver.command(f"mode {sid} default")
    wait_until(lambda: bridge.session(sid)["mode"] == "default", timeout=START,
               what="the real CLI to run in default mode")
    driver.command(f"model {sid} claude-sonnet-4-5")
    wait_until(lambda: bridge.session(sid)["model"] == "claude-sonnet-4-5", timeout=START,
               what="the real CLI to switch models")
    wait_until(lambda: "model claude-sonnet-4-5" in driver.status_card(thread).text,
               timeout=START, what="the status card to show the model")

    model.script = tool_then_finish(bash("touch slack.txt"))
    driver.reply(thread, "now do it")
    driver.card_with(thread, "Approval needed")
    assert "the session stays" in driver.command(f"interrupt {sid}")
    session = bridge.wait_state(sid, "idle", timeout=START)
    assert session["pending_approvals"] == []
    assert not (bridge.project / "slack.txt").exists()
    driver.card_with(thread, "Turn interrupted by")
    model.script = text_only("Back after the interrupt.")
    driver.reply(thread, "carry on")
    wait_until(lambda: bridge.session(sid)["turns"] == 3, timeout=START, what="the reply")
