"""After a restart: no process of the last run survives, so nothing is live.

Sessions that were working become failed with a reason that says how to continue, idle ones
completed; whatever the last run's agents left running is killed. Pending approvals are
expired by the approval service (`daemon/approvals.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path

from bridge.outbox import RefreshStatus
from bridge.session import DAEMON_STOPPED, LIVE_STATES, apply, closed_under
from daemon.fanout import Fanout
from daemon.store import Store

log = logging.getLogger(__name__)


async def recover(store: Store, fanout: Fanout, *, now: float) -> None:
    """Bring the sessions in line with a daemon that has no agents running (their pending
    approvals are the approval service's: `ApprovalService.recover`)."""
    stale = await store.sessions_in(LIVE_STATES)
    # every session whose process was recorded, whatever its state: a failed turn or
    # a stop cut short by the crash leaves a live agent behind a session that is not live
    recorded = await store.recorded_pids()
    if recorded:
        killed = await asyncio.to_thread(kill_leftovers, recorded)
        if killed:
            log.info("killed %d process(es) left by the last run: %s", len(killed),
                     ", ".join(f"{pid} (session {sid})" for pid, sid in killed))
    live = {s.id for s in stale}
    for session_id in recorded.keys() - live:
        await store.update_session(session_id, pid=None)
    for session in stale:
        trigger, error = closed_under(session.state, DAEMON_STOPPED)
        state = apply(session.state, trigger)
        await store.update_session(session.id, state=state, error=error, pid=None, updated_at=now)
        await fanout.enqueue(session.id, RefreshStatus())


def kill_leftovers(recorded: Mapping[str, int]) -> list[tuple[int, str]]:
    """Kill what a crashed daemon left of the agents in `recorded` (session id → pid):
    every process whose environment carries one of those sessions' ids (our agents and
    whatever they started, even once the agent itself has exited), and its process group
    when the group is the agent's. A process is only ever killed when its own environment
    names the session: a recycled pid is left alone. Returns (pid, session id) killed."""
    marker = b"AGENT_BRIDGE_SESSION="
    killed: list[tuple[int, str]] = []
    try:
        entries = [e.name for e in Path("/proc").iterdir() if e.name.isdigit()]
    except OSError:
        return killed
    for name in entries:
        pid = int(name)
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        for item in environ.split(b"\0"):
            if not item.startswith(marker):
                continue
            session_id = item[len(marker):].decode("utf-8", "replace")
            agent_pid = recorded.get(session_id)
            if agent_pid is None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(pid) == agent_pid != os.getpgrp():  # never our own group
                    os.killpg(agent_pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
                killed.append((pid, session_id))
            break
    return killed
