"""The local control API: JSON lines over a unix socket (mode 0600) in the state dir.

One request per line `{"op": "...", ...}`, one answer per line
`{"ok": true, "result": ...}` or `{"ok": false, "code": "...", "error": "..."}`.
The CLI is its only client; reaching the socket already takes the owner's account.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from bridge.approvals import Actor, Approval
from bridge.digest import DigestLine
from bridge.events import DecisionKind
from bridge.model import SessionView
from bridge.questions import Question
from bridge.risk import risk_tags
from bridge.terminal import TerminalSession
from daemon.adopting import DEFAULT_LIMIT
from daemon.changes import ChangeTracker
from daemon.errors import ApiError, Conflict, DaemonError
from daemon.frontdoor import FrontDoor
from daemon.paths import socket_place_finding
from daemon.sockets import foreign_peer, op_of, until_hangup
from daemon.terminal import TerminalSessions

log = logging.getLogger(__name__)
MAX_REQUEST = 1024 * 1024


def session_json(session: SessionView, pending: list[Approval],
                 questions: Sequence[Question] = ()) -> dict[str, Any]:
    return {
        "id": session.id,
        "project": session.project,
        "agent": session.agent,
        "protocol": session.protocol,
        "host": session.host,
        "state": session.state.value,
        "archived": session.archived,
        "agent_session_id": session.agent_session_id,
        "cwd": session.cwd,
        "title": session.title,
        "branch": session.branch,
        "last_tool": session.last_tool,
        "cost_usd": session.cost_usd,
        "tokens": session.tokens,
        "turns": session.turns,
        "mode": session.mode,
        "model": session.model,
        "error": session.error,
        "limit_hit": session.limit_hit_at is not None,
        "limit_hit_at": session.limit_hit_at,
        "limit_reset_at": session.limit_reset_at,
        "resume_at": session.resume_at,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "pending_approvals": [approval_json(a) for a in pending],
        "pending_questions": [question_json(q) for q in questions],
    }


def terminal_json(s: TerminalSession) -> dict[str, Any]:
    return {
        "id": s.id,
        "key": s.key,
        "agent": s.agent,
        "protocol": s.protocol,
        "host": s.host,
        "cwd": s.cwd,
        "branch": s.branch,
        "first_prompt": s.first_prompt,
        "last_prompt": s.last_prompt,
        "updated_at": s.updated_at,
        "attached": s.attached.value,
        "holder": s.holder,
        "path": s.path,
    }


def approval_json(a: Approval) -> dict[str, Any]:
    return {
        "kind": "approval",
        "id": a.id,
        "session_id": a.session_id,
        "tool": a.tool,
        "input": dict(a.input),
        "offered": [k.value for k in a.offered],
        "choices": [{"id": c.id, "label": c.label} for c in a.choices],
        "choice": a.choice,
        "description": a.description,
        "cwd": a.cwd,
        "state": a.state.value,
        "decision": a.decision.value if a.decision else None,
        "decided_by": a.decided_by,
        "decided_at": a.decided_at,
        "reason": a.reason,
        "requested_at": a.requested_at,
        "on_disk": None if a.on_disk is None else dict(a.on_disk),
        "risk": [risk.value for risk in risk_tags(a.tool, a.input, a.cwd)],
    }


def question_json(q: Question) -> dict[str, Any]:
    return {
        "kind": "question",
        "id": q.id,
        "session_id": q.session_id,
        "header": q.header,
        "text": q.text,
        "options": [{"label": o.label, "description": o.description} for o in q.options],
        "multi_select": q.multi_select,
        "is_other": q.is_other,
        "is_secret": q.is_secret,
        "state": q.state.value,
        "answer": None if q.is_secret else list(q.answer),
        "answered_by": q.answered_by,
        "answered_at": q.answered_at,
        "reason": q.reason,
        "asked_at": q.asked_at,
    }


CLI_ACTOR = Actor(surface="cli", user_id=os.environ.get("USER", "local"), name="local CLI")


class ApiHub(FrontDoor, Protocol):
    """What the control API uses of the daemon beyond the front door's: a session's changes,
    the digest's lines and the terminal sessions' hooks."""

    @property
    def changes(self) -> ChangeTracker: ...
    @property
    def terminal(self) -> TerminalSessions: ...
    async def digest_lines(self) -> list[DigestLine]: ...
    def surfaces(self) -> Sequence[str]: ...


class ControlServer:
    def __init__(self, hub: ApiHub, path: Path) -> None:
        self.hub = hub
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self._ops: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "ping": self._ping,
            "new": self._new,
            "sessions": self._sessions,
            "show": self._show,
            "approve": self._approve,
            "deny": self._deny,
            "answer": self._answer,
            "stop": self._stop,
            "interrupt": self._interrupt,
            "mode": self._mode,
            "model": self._model,
            "resume": self._resume,
            "send": self._send,
            "archive": self._archive,
            "unarchive": self._unarchive,
            "diff": self._diff,
            "digest": self._digest,
            "terminal_sessions": self._terminal_sessions,
            "adopt": self._adopt,
            "away": self._away,
            "hook": self._hook,
        }

    async def start(self) -> None:
        self._clear_place()
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._client, path=str(self.path), limit=MAX_REQUEST
            )
        finally:
            os.umask(old)
        if not stat.S_ISSOCK(self.path.lstat().st_mode):  # raced into its place: refuse
            raise DaemonError(f"{self.path} was replaced while the socket was made; "
                              "remove it and start again")
        self.path.chmod(0o600)

    def _clear_place(self) -> None:
        """Remove a socket left by a daemon that died; refuse anything else in its place
        (never follow a symlink there, never delete a file that is not a socket)."""
        try:
            info = self.path.lstat()
        except FileNotFoundError:
            return
        found = socket_place_finding(self.path, info)
        if found is not None and found.refused:
            raise DaemonError(found.message)
        self.path.unlink()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            refusal = foreign_peer(writer)
            if refusal is not None:
                log.warning("control socket: %s", refusal)
                writer.write(json.dumps({"ok": False, "code": "refused",
                                         "error": refusal}).encode() + b"\n")
                await writer.drain()
                return
            while line := await reader.readline():
                if op_of(line) == "hook":  # may wait on a person: ends if the hook hangs up
                    waited = await until_hangup(reader, self._dispatch(line))
                    if waited is None:
                        return
                    answer = waited
                else:
                    answer = await self._dispatch(line)
                writer.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _dispatch(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            op = request.get("op") if isinstance(request, dict) else None
            handler = self._ops.get(op) if isinstance(op, str) else None
            if handler is None:
                return {"ok": False, "code": "bad_request", "error": f"unknown op {op!r}"}
            return {"ok": True, "result": await handler(request)}
        except DaemonError as e:
            return {"ok": False, "code": e.code, "error": e.message}
        except (ValueError, KeyError, TypeError) as e:
            return {"ok": False, "code": "bad_request", "error": f"bad request: {e}"}
        except Exception as e:
            log.exception("control op failed")
            return {"ok": False, "code": "internal", "error": f"internal error: {e!r}"}

    async def _session(self, session_id: str) -> dict[str, Any]:
        session = await self.hub.store.session(session_id)
        return session_json(session, await self.hub.pending_approvals(session_id),
                            await self.hub.pending_questions(session_id))

    async def _ping(self, _: dict[str, Any]) -> Any:
        return {"pid": os.getpid(), "sessions": len(self.hub.runners)}

    async def _new(self, r: dict[str, Any]) -> Any:
        session = await self.hub.new_session(
            str(r["project"]), str(r["prompt"]), agent=r.get("agent"), actor=CLI_ACTOR,
            worktree=True if r.get("worktree") else None, plan=bool(r.get("plan")),
        )
        return await self._session(session.id)

    async def _sessions(self, r: dict[str, Any]) -> Any:
        sessions = await self.hub.store.sessions(include_archived=bool(r.get("all")))
        pending: dict[str, list[Approval]] = {}
        for approval in await self.hub.pending_approvals():
            pending.setdefault(approval.session_id, []).append(approval)
        asked: dict[str, list[Question]] = {}
        for question in await self.hub.pending_questions():
            asked.setdefault(question.session_id, []).append(question)
        return [session_json(s, pending.get(s.id, []), asked.get(s.id, [])) for s in sessions]

    async def _show(self, r: dict[str, Any]) -> Any:
        sid = str(r["id"])
        data = await self._session(sid)
        approvals = await self.hub.store.approvals(session_id=sid)
        data["approvals"] = [approval_json(a) for a in approvals]
        data["events"] = [
            {"id": e.id, "ts": e.ts, "kind": e.kind, "data": e.data}
            for e in await self.hub.store.events(sid)
        ]
        data["undelivered"] = [  # outbox rows delivery gave up on, with the reason
            {"surface": f.surface, "kind": f.kind, "attempts": f.attempts, "error": f.error,
             "failed_at": f.failed_at}
            for f in await self.hub.store.outbox_failed(sid)
        ]
        return data

    async def _approve(self, r: dict[str, Any]) -> Any:
        kind = (DecisionKind.ACCEPT_EDITS if r.get("accept_edits")
                else DecisionKind.ALLOW_SESSION if r.get("for_session")
                else DecisionKind.ALLOW_ONCE)
        return await self._decide(str(r["approval_id"]), kind, None)

    async def _deny(self, r: dict[str, Any]) -> Any:
        return await self._decide(str(r["approval_id"]), DecisionKind.DENY, r.get("reason"))

    async def _decide(self, approval_id: str, kind: DecisionKind, reason: str | None) -> Any:
        result = await self.hub.decide(approval_id, kind, actor=CLI_ACTOR, reason=reason)
        if not result.ok:
            raise ApiError(result.message)
        return {"message": result.message, "approval": approval_json(result.approval)}

    async def _answer(self, r: dict[str, Any]) -> Any:
        labels = r.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ApiError("labels must be a list of strings")
        text = r.get("text")
        result = await self.hub.answer(str(r["question_id"]), actor=CLI_ACTOR, labels=labels,
                                       text=str(text) if text is not None else None)
        if not result.ok:
            raise ApiError(result.message)
        return {"message": result.message, "question": question_json(result.question)}

    async def _stop(self, r: dict[str, Any]) -> Any:
        await self.hub.stop(str(r["id"]), actor=CLI_ACTOR)
        return await self._session(str(r["id"]))

    async def _interrupt(self, r: dict[str, Any]) -> Any:
        await self.hub.interrupt(str(r["id"]), actor=CLI_ACTOR)
        return await self._session(str(r["id"]))

    async def _mode(self, r: dict[str, Any]) -> Any:
        await self.hub.set_mode(str(r["id"]), str(r["mode"]), actor=CLI_ACTOR)
        return await self._session(str(r["id"]))

    async def _model(self, r: dict[str, Any]) -> Any:
        await self.hub.set_model(str(r["id"]), str(r["model"]), actor=CLI_ACTOR)
        return await self._session(str(r["id"]))

    async def _resume(self, r: dict[str, Any]) -> Any:
        await self.hub.resume(str(r["id"]), r.get("prompt") or None, actor=CLI_ACTOR)
        return await self._session(str(r["id"]))

    async def _send(self, r: dict[str, Any]) -> Any:
        await self.hub.send(str(r["id"]), str(r["text"]), actor=CLI_ACTOR)
        return await self._session(str(r["id"]))

    async def _archive(self, r: dict[str, Any]) -> Any:
        await self.hub.set_archived(str(r["id"]), True, actor=CLI_ACTOR)
        return await self._session(str(r["id"]))

    async def _terminal_sessions(self, r: dict[str, Any]) -> Any:
        limit = r.get("limit")
        found = await self.hub.terminal_sessions(DEFAULT_LIMIT if limit is None else int(limit))
        return {"sessions": [terminal_json(s) for s in found.sessions], "notes": found.notes}

    async def _adopt(self, r: dict[str, Any]) -> Any:
        session = await self.hub.adopt(str(r["id"]), r.get("prompt") or None, actor=CLI_ACTOR,
                                       force=bool(r.get("force")))
        return await self._session(session.id)

    async def _digest(self, r: dict[str, Any]) -> Any:
        from bridge.digest import render_digest

        lines = await self.hub.digest_lines()
        if r.get("send"):
            await self.hub.send_digest(requested=True)
        card = render_digest(lines, now=self.hub.clock(), redactor=self.hub.redactor)
        return {
            "text": card.text if card else "Nothing needs you right now.",
            "lines": [{"id": d.session.id, "group": d.group.value, "since": d.since,
                       "detail": d.detail} for d in lines],
        }

    async def _away(self, r: dict[str, Any]) -> Any:
        terminal = self.hub.terminal
        switch = r.get("set")
        if switch is not None:
            if not isinstance(switch, bool):
                raise ApiError(f"set must be true or false, not {switch!r}")
            await terminal.set_away(switch, actor=CLI_ACTOR)
        return {"away": terminal.away, "chats": list(self.hub.surfaces())}

    async def _hook(self, r: dict[str, Any]) -> Any:
        """A terminal agent's hook (`agent-bridge hook KIND`): see daemon/terminal.py."""
        agent, kind, payload = str(r["agent"]), str(r["kind"]), r["payload"]
        if not isinstance(payload, dict):
            raise ApiError("payload must be the hook's JSON object")
        terminal = self.hub.terminal
        if kind == "permission-request":
            return (await terminal.permission_request(agent, payload)).json()
        if kind == "stop":
            await terminal.turn_ended(agent, payload)
            return {"behavior": None, "message": None}
        raise ApiError(f"unknown hook kind {kind!r}: permission-request or stop")

    async def _diff(self, r: dict[str, Any]) -> Any:
        from bridge.diffs import render_diff_summary

        sid = str(r["id"])
        session = await self.hub.store.session(sid)
        turn = r.get("turn")
        if turn is None:
            changes = await self.hub.changes.diff(sid)
        else:
            if not isinstance(turn, int) or not 1 <= turn <= session.turns:
                raise Conflict(f"{sid} has had {session.turns} turn(s): --turn takes a number "
                               f"from 1 to {session.turns}")
            changes = (await self.hub.changes.turn_diff(sid, turn)).own
        return {
            "id": sid,
            "turn": turn,
            "summary": render_diff_summary(changes.summary),
            "note": changes.note,
            "files": [
                {"path": f.path, "old_path": f.old_path, "status": f.status.value,
                 "added": f.added, "removed": f.removed, "binary": f.binary}
                for f in changes.summary.files
            ],
            "added": changes.summary.added,
            "removed": changes.summary.removed,
            "diff": changes.raw.decode("utf-8", "surrogateescape"),
        }

    async def _unarchive(self, r: dict[str, Any]) -> Any:
        await self.hub.set_archived(str(r["id"]), False, actor=CLI_ACTOR)
        return await self._session(str(r["id"]))

