"""The approvals table, read back as `bridge.approvals.Approval`s; a decision is committed
by one conditional settle (`WHERE state = 'pending'`), the only guard against a race."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from typing import Any

import aiosqlite

from bridge.approvals import Approval, ApprovalState
from bridge.events import AgentChoice, DecisionKind
from daemon.errors import NotFound, StoreError
from daemon.store.database import Database
from daemon.store.sessions import new_id

APPROVAL_COLUMNS = (
    "id, session_id, request_id, tool, input, offered, description, cwd, state, decision, "
    "decided_by, decided_at, reason, requested_at, choices, choice, on_disk"
)


class ApprovalRepository(Database):
    async def approval(self, approval_id: str) -> Approval:
        row = await self._fetch_one(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?", (approval_id,))
        if row is None:
            raise NotFound(
                f"no approval {approval_id!r}; `agent-bridge sessions` lists the pending ones"
            )
        return _approval(row)

    async def approvals(
        self, *, session_id: str | None = None, state: ApprovalState | None = None,
        decision: DecisionKind | None = None,
    ) -> list[Approval]:
        clauses, args = [], []
        if decision is not None:
            clauses.append("decision = ?")
            args.append(decision.value)
        if session_id is not None:
            clauses.append("session_id = ?")
            args.append(session_id)
        if state is not None:
            clauses.append("state = ?")
            args.append(state.value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._fetch_all(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals {where} ORDER BY requested_at, rowid", args)
        return [_approval(r) for r in rows]

    async def mark_reminded(self, approval_id: str, now: float) -> None:
        await self._write("UPDATE approvals SET reminded_at = ? WHERE id = ?",
                          (now, approval_id))

    async def unreminded(self, older_than: float) -> list[Approval]:
        """Pending approvals requested before `older_than` whose reminder has not gone out."""
        rows = await self._fetch_all(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE state = 'pending' "
            "AND reminded_at IS NULL AND requested_at <= ? ORDER BY requested_at",
            (older_than,),
        )
        return [_approval(r) for r in rows]

    async def add_approval(self, approval: Approval) -> Approval:
        """Store a new approval, under a new id if its id is taken; returned as stored."""
        async with self._transaction() as db:
            return await self._insert_approval(db, approval)

    async def settle_approval(self, settled: Approval) -> bool:
        """Commit a decision exactly once: False when someone else settled it first."""
        async with self._transaction() as db:
            return await self._settle(db, settled)

    @staticmethod
    async def _insert_approval(db: aiosqlite.Connection, approval: Approval) -> Approval:
        """Insert `approval`, under a new id if its id is taken (returned as stored)."""
        for _ in range(20):
            try:
                await db.execute(
                    f"INSERT INTO approvals ({APPROVAL_COLUMNS}) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        approval.id, approval.session_id, approval.request_id, approval.tool,
                        json.dumps(dict(approval.input), ensure_ascii=False),
                        json.dumps([k.value for k in approval.offered]), approval.description,
                        approval.cwd, approval.state.value, None, None, None, None,
                        approval.requested_at,
                        json.dumps([[c.id, c.label] for c in approval.choices],
                                   ensure_ascii=False) if approval.choices else None,
                        None,
                        None if approval.on_disk is None else json.dumps(dict(approval.on_disk)),
                    ),
                )
                return approval
            except sqlite3.IntegrityError:
                # the id is taken (one chance in 10^9 — so the common case is one statement);
                # anything else (an unknown session) is raised as it is
                async with db.execute(
                        "SELECT 1 FROM approvals WHERE id = ?", (approval.id,)) as cur:
                    if await cur.fetchone() is None:
                        raise
            approval = replace(approval, id=new_id())
        raise StoreError("could not find a free approval id")

    @staticmethod
    async def _settle(db: aiosqlite.Connection, settled: Approval) -> bool:
        """The conditional settle: True when the row was still pending and now is `settled`."""
        cur = await db.execute(
            "UPDATE approvals SET state = ?, decision = ?, decided_by = ?, decided_at = ?, "
            "reason = ?, choice = ? WHERE id = ? AND state = 'pending'",
            (
                settled.state.value,
                settled.decision.value if settled.decision else None,
                settled.decided_by, settled.decided_at, settled.reason, settled.choice,
                settled.id,
            ),
        )
        return cur.rowcount == 1


def _approval(row: Any) -> Approval:
    return Approval(
        id=row["id"], session_id=row["session_id"], request_id=row["request_id"],
        tool=row["tool"], input=json.loads(row["input"]),
        offered=tuple(DecisionKind(k) for k in json.loads(row["offered"])),
        description=row["description"], cwd=row["cwd"], state=ApprovalState(row["state"]),
        decision=DecisionKind(row["decision"]) if row["decision"] else None,
        decided_by=row["decided_by"], decided_at=row["decided_at"], reason=row["reason"],
        requested_at=row["requested_at"],
        choices=tuple(AgentChoice(id=str(i), label=str(label))
                      for i, label in json.loads(row["choices"] or "[]")),
        choice=row["choice"],
        on_disk=json.loads(row["on_disk"]) if row["on_disk"] else None,
    )
