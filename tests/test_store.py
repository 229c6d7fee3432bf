import asyncio
import sqlite3
from dataclasses import replace

import pytest

from bridge.approvals import AccessPolicy, Actor, Approval, ApprovalState, Decision, decide
from bridge.events import DecisionKind
from bridge.facts import Facts
from bridge.session import SessionState
from daemon.errors import NotFound, StoreError
from daemon.migrations import MIGRATIONS, SCHEMA_VERSION
from daemon.store import Store
from daemon.writelock import WriterLock

ALL = (DecisionKind.ALLOW_ONCE, DecisionKind.DENY)


async def open_store(tmp_path):
    return await Store.open(tmp_path / "state" / "agent-bridge.db")


async def test_a_fresh_database_is_migrated_and_in_wal_mode(tmp_path):
    store = await open_store(tmp_path)
    await store.close()
    db = sqlite3.connect(tmp_path / "state" / "agent-bridge.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


async def test_a_database_from_a_newer_version_is_refused_untouched(tmp_path):
    path = tmp_path / "state" / "agent-bridge.db"
    store = await Store.open(path)
    await store.close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer agent-bridge"):
        await Store.open(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    db.close()


async def test_an_older_database_is_brought_up_to_date_keeping_its_rows(tmp_path):
    path = tmp_path / "state" / "agent-bridge.db"
    path.parent.mkdir()
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO sessions (id, project, agent, protocol, cwd, state, title, "
               "created_at, updated_at) VALUES ('old', 'p', 'c', 'claude', '/', 'idle', "
               "'from schema 1', 1.0, 1.0)")
    db.close()
    store = await Store.open(path)
    try:
        old = await store.session("old")
        assert old.title == "from schema 1" and old.owner is None and old.tokens is None
    finally:
        await store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open the database"):
        await Store.open(path)


async def test_unknown_ids_name_what_to_do(tmp_path):
    store = await open_store(tmp_path)
    try:
        with pytest.raises(NotFound, match="sessions --all"):
            await store.session("nope")
        with pytest.raises(NotFound):
            await store.approval("nope")
    finally:
        await store.close()


async def test_racing_decisions_settle_an_approval_exactly_once(tmp_path):
    store = await open_store(tmp_path)
    try:
        session = await store.create_session(project="p", agent="claude", protocol="claude",
                                             cwd="/", host="local", title="t", now=1.0)
        approval = Approval(id="aaaaaa", session_id=session.id, request_id="r", tool="Bash",
                            input={"command": "ls"}, offered=ALL, requested_at=1.0)
        approval = await store.add_approval(approval)
        policy = AccessPolicy(allowed={"telegram": frozenset({"1", "2"})})
        taps = []
        for user, kind in (("1", DecisionKind.ALLOW_ONCE), ("2", DecisionKind.DENY)) * 10:
            verdict = decide(approval, kind, Actor(surface="telegram", user_id=user), now=2.0,
                             policy=policy)
            assert isinstance(verdict, Decision)
            taps.append(store.settle_approval(verdict.approval))
        results = await asyncio.gather(*taps)
        assert results.count(True) == 1
        stored = await store.approval(approval.id)
        assert stored.state in (ApprovalState.ALLOWED, ApprovalState.DENIED)
        assert not await store.settle_approval(replace(stored, state=ApprovalState.EXPIRED))
    finally:
        await store.close()


async def test_sessions_list_newest_first_and_hide_archived(tmp_path):
    store = await open_store(tmp_path)
    try:
        a = await store.create_session(project="p", agent="c", protocol="claude", cwd="/",
                                       host="local", title="a", now=1.0)
        b = await store.create_session(project="p", agent="c", protocol="claude", cwd="/",
                                       host="local", title="b", now=2.0)
        await store.update_session(a.id, archived=1)
        assert [s.id for s in await store.sessions()] == [b.id]
        assert [s.id for s in await store.sessions(include_archived=True)] == [b.id, a.id]
        with pytest.raises(ValueError):
            await store.update_session(a.id, project="x")
    finally:
        await store.close()


async def test_the_owner_is_kept_and_named_only_on_their_own_surface(tmp_path):
    store = await open_store(tmp_path)
    try:
        mine = await store.create_session(project="p", agent="c", protocol="claude", cwd="/",
                                          host="local", title="a", now=1.0,
                                          owner="slack:U0ALICE")
        local = await store.create_session(project="p", agent="c", protocol="claude",
                                           cwd="/", host="local", title="b", now=2.0)
        mine = await store.session(mine.id)
        assert mine.owner_on("slack") == "U0ALICE"
        assert mine.owner_on("telegram") is None
        assert local.owner is None and local.owner_on("slack") is None
    finally:
        await store.close()


async def test_the_writer_lock_serves_urgent_first_but_never_starves_routine_work():
    lock = WriterLock()
    order: list[str] = []
    await lock.acquire()
    waiters = [asyncio.create_task(_hold(lock, "routine", order))]
    waiters += [asyncio.create_task(_hold(lock, f"urgent{i}", order, urgent=True))
                for i in range(WriterLock.URGENT_RUN + 2)]
    await asyncio.sleep(0)  # all of them queue up
    lock.release()
    await asyncio.gather(*waiters)
    # the urgent ones overtake the routine writer, but only URGENT_RUN of them in a row
    assert order.index("routine") == WriterLock.URGENT_RUN
    assert order[:WriterLock.URGENT_RUN] == [f"urgent{i}" for i in range(WriterLock.URGENT_RUN)]
    assert not lock._locked


async def test_a_writer_cancelled_while_waiting_passes_the_lock_on():
    lock = WriterLock()
    order: list[str] = []
    await lock.acquire()
    cancelled = asyncio.create_task(lock.acquire())
    await asyncio.sleep(0)
    after = asyncio.create_task(_hold(lock, "after", order))
    await asyncio.sleep(0)
    lock.release()  # handed to `cancelled`, which is cancelled before it runs
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    await asyncio.wait_for(after, 5)
    assert order == ["after"] and not lock._locked


async def _hold(lock: WriterLock, name: str, order: list[str], *, urgent: bool = False) -> None:
    async with lock.held(urgent=urgent):
        order.append(name)


async def test_reads_see_only_what_is_committed(tmp_path):
    store = await open_store(tmp_path)
    try:
        session = await store.create_session(project="p", agent="c", protocol="claude",
                                             cwd="/", host="local", title="a", now=1.0)
        async with store._transaction() as db:
            await db.execute("UPDATE sessions SET state = 'idle' WHERE id = ?", (session.id,))
            # a reader in the middle of the batch sees none of it (not idle with 0 turns)
            assert (await store.session(session.id)).state is SessionState.STARTING
            await db.execute("UPDATE sessions SET turns = 1 WHERE id = ?", (session.id,))
        after = await store.session(session.id)
        assert after.state is SessionState.IDLE and after.turns == 1
    finally:
        await store.close()


async def test_a_read_sees_what_was_committed_before_it_while_other_reads_run(tmp_path):
    store = await open_store(tmp_path)
    try:
        sessions = [await store.create_session(project="p", agent="c", protocol="claude",
                                               cwd="/", host="local", title="0", now=1.0)
                    for _ in range(20)]
        busy = True

        async def reader() -> None:  # other coroutines reading all the while
            while busy:
                await store.sessions(include_archived=True)

        readers = [asyncio.create_task(reader()) for _ in range(3)]
        try:
            for i in range(1, 150):
                await store.update_session(sessions[0].id, title=str(i))
                assert (await store.session(sessions[0].id)).title == str(i)
        finally:
            busy = False
            await asyncio.gather(*readers)
    finally:
        await store.close()


async def test_a_recorded_event_is_read_back_in_the_transcript(tmp_path):
    store = await open_store(tmp_path)
    try:
        session = await store.create_session(project="p", agent="c", protocol="claude",
                                             cwd="/", host="local", title="t", now=1.0)
        await store.record_event(session.id, "prompt", {"text": "héllo", "by": "a"}, now=2.5)
        [event] = await store.events(session.id)
        assert (event.kind, event.ts, event.data) == ("prompt", 2.5, {"text": "héllo", "by": "a"})
        assert await store.count_events(session.id) == 1
    finally:
        await store.close()


def rows_for(facts):
    """What the hub's notifier would enqueue: one row per new approval, under its stored id."""
    return [("post_approval", {"approval_id": a.id}) for a in facts.new_approvals]


async def test_a_batch_of_facts_is_committed_together_under_the_ids_it_was_stored_with(tmp_path):
    store = await open_store(tmp_path)
    try:
        session = await store.create_session(project="p", agent="c", protocol="claude",
                                             cwd="/", host="local", title="t", now=1.0)
        taken = await store.add_approval(Approval(
            id="aaaaaa", session_id=session.id, request_id="r0", tool="Bash",
            input={"command": "ls"}, offered=ALL, requested_at=1.0))
        asked = replace(taken, request_id="r1")  # drawn the same id: stored under a new one
        facts = Facts(events=((2.0, "tool_started", '{"tool": "Bash"}'),),
                      new_approvals=(asked,), changes={"state": SessionState.RUNNING},
                      increments={"turns": 2})
        written = await store.commit_facts(session.id, facts, now=3.0, surfaces=["telegram"],
                                           outbox=rows_for)
        assert written is not None
        (stored,) = written.new_approvals
        assert stored.id != taken.id and (await store.approval(stored.id)).request_id == "r1"
        after = await store.session(session.id)
        assert after.state is SessionState.RUNNING and after.turns == 2
        assert after.updated_at == 3.0
        assert [e.kind for e in await store.events(session.id)] == ["tool_started"]
        (row,) = await store.outbox_pending("telegram")
        assert row.kind == "post_approval" and row.payload == {"approval_id": stored.id}
    finally:
        await store.close()


async def test_a_batch_whose_settle_lost_the_race_writes_nothing(tmp_path):
    store = await open_store(tmp_path)
    try:
        session = await store.create_session(project="p", agent="c", protocol="claude",
                                             cwd="/", host="local", title="t", now=1.0)
        approval = await store.add_approval(Approval(
            id="aaaaaa", session_id=session.id, request_id="r", tool="Bash",
            input={"command": "ls"}, offered=ALL, requested_at=1.0))
        first = replace(approval, state=ApprovalState.DENIED, decision=DecisionKind.DENY)
        assert await store.settle_approval(first)
        late = replace(approval, state=ApprovalState.EXPIRED)
        facts = Facts(events=((2.0, "note", "{}"),), settled=(late,),
                      changes={"state": SessionState.IDLE})
        assert await store.commit_facts(session.id, facts, now=3.0, surfaces=["telegram"],
                                        outbox=rows_for) is None
        assert (await store.approval(approval.id)).state is ApprovalState.DENIED
        assert (await store.session(session.id)).state is SessionState.STARTING
        assert await store.events(session.id) == []
        assert await store.outbox_pending("telegram") == []
    finally:
        await store.close()
