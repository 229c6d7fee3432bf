"""Timeouts, reminders, parking and auto-archive, in-process with a clock the test moves.

The hub runs for real (store, runner, fake agent subprocess); only time is ours."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from bridge.approvals import Actor, ApprovalState
from bridge.config import load_config
from bridge.digest import DigestGroup
from bridge.session import SessionState
from daemon.hub import Hub
from daemon.store import Store
from tests.harness import FAKE_CLAUDE

ANA = Actor(surface="cli", user_id="ana")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.01)


@pytest.fixture
async def hub(tmp_path: Path):
    record = tmp_path / "record.jsonl"
    project = tmp_path / "project"
    project.mkdir()
    command = [sys.executable, str(FAKE_CLAUDE), "--record", str(record)]
    config = load_config(
        f'[agents.claude]\ncommand = {json.dumps(command)}\n'
        '[approvals]\ntimeout = "30m"\nremind_after = "10m"\n'
        '[archive]\nauto_after = "7d"\n'
        f'[[projects]]\nname = "demo"\npath = "{project}"\n'
    )
    store = await Store.open(tmp_path / "state" / "db.sqlite")
    clock = Clock()
    hub = Hub(config=config, store=store, clock=clock)
    hub.add_surface("test")
    hub.record = record  # type: ignore[attr-defined]
    hub.test_clock = clock  # type: ignore[attr-defined]
    yield hub
    await hub.shutdown()
    await store.close()


async def outbox(hub: Hub) -> list[tuple[str, dict]]:
    return [(i.kind, i.payload) for i in await hub.store.outbox_pending("test", limit=1000)]


async def answers(hub: Hub) -> list[dict]:
    path: Path = hub.record  # type: ignore[attr-defined]
    if not path.exists():
        return []
    return [json.loads(line)["response"] for line in path.read_text().splitlines()
            if json.loads(line).get("type") == "control_response"]


async def start_waiting(hub: Hub) -> str:
    session = await hub.new_session("demo", "please run a command", actor=ANA)
    await until(lambda: _pending(hub, session.id))
    return session.id


async def _pending(hub: Hub, sid: str) -> bool:
    return bool(await hub.pending_approvals(sid))


async def test_an_unanswered_approval_is_reminded_once_then_denied_never_allowed(hub):
    clock = hub.test_clock
    sid = await start_waiting(hub)
    (approval,) = await hub.pending_approvals(sid)
    clock.now += 9 * 60
    assert await hub.remind_due() == 0
    clock.now += 2 * 60
    assert await hub.remind_due() == 1
    assert await hub.remind_due() == 0  # once
    assert ("approval_reminder", {"approval_id": approval.id}) in await outbox(hub)
    assert await hub.expire_due() == 0  # 11 minutes: not yet
    clock.now += 20 * 60
    assert await hub.expire_due() == 1
    settled = await hub.store.approval(approval.id)
    assert settled.state is ApprovalState.DENIED
    assert settled.decided_by == "timeout"
    assert "denied automatically" in settled.reason
    await until(lambda: _answered(hub))
    (answer,) = await answers(hub)
    assert answer["response"]["behavior"] == "deny"
    assert "No answer within 30 min" in answer["response"]["message"]
    session = await hub.store.session(sid)
    assert session.parked and "timed out" in session.parked
    lines = await hub.digest_lines()
    assert [(d.group, d.session.id) for d in lines] == [(DigestGroup.WAITING, sid)]


async def _answered(hub: Hub) -> bool:
    return bool(await answers(hub))


async def test_on_timeout_keep_waits_forever(hub):
    from dataclasses import replace

    hub.config = replace(hub.config, approvals=replace(hub.config.approvals, on_timeout="keep"))
    sid = await start_waiting(hub)
    hub.test_clock.now += 10 * 86400
    assert await hub.expire_due() == 0
    assert len(await hub.pending_approvals(sid)) == 1
    assert await answers(hub) == []


async def test_reask_prompts_the_agent_again_and_unparks(hub):
    sid = await start_waiting(hub)
    hub.test_clock.now += 31 * 60
    await hub.expire_due()
    await until(lambda: _state(hub, sid, SessionState.IDLE))
    await hub.reask(sid, actor=ANA)
    assert (await hub.store.session(sid)).parked is None
    await until(lambda: _pending(hub, sid))  # the agent asks again: a new card


async def _state(hub: Hub, sid: str, state: SessionState) -> bool:
    return (await hub.store.session(sid)).state is state


async def test_auto_archive_skips_sessions_waiting_on_you(hub):
    waiting = await start_waiting(hub)
    done = await hub.new_session("demo", "please run a command", actor=ANA)
    await until(lambda: _pending(hub, done.id))
    (approval,) = await hub.pending_approvals(done.id)
    from bridge.events import DecisionKind

    await hub.decide(approval.id, DecisionKind.ALLOW_ONCE, actor=ANA)
    await until(lambda: _state(hub, done.id, SessionState.IDLE))
    hub.test_clock.now += 6 * 86400
    assert await hub.auto_archive() == []
    hub.test_clock.now += 2 * 86400
    hub.config = _no_timeout(hub.config)
    assert await hub.auto_archive() == [done.id]
    assert (await hub.store.session(done.id)).archived
    assert not (await hub.store.session(waiting)).archived


def _no_timeout(config):
    from dataclasses import replace

    return replace(config, approvals=replace(config.approvals, timeout=None))
