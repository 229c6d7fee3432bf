"""Codex: `codex app-server`, JSON-RPC 2.0 over stdio (reference/agent-protocols.md §2.2).

Theory of operation. `start()` pipelines the handshake (`initialize`, `initialized`) and the
thread request (`thread/start`, or `thread/resume` when resuming) the way the recorded
sessions do; a prompt waits in a queue until the thread id is known and then becomes a
`turn/start`. Codex runs one turn at a time and refuses a second `turn/start`, so a prompt
sent while a turn runs waits for `turn/completed`. The agent is "ready" (the neutral
`ControlAnswered(of="initialize")`) once its thread is open: the handshake alone cannot
take a prompt.

The server sends requests of its own. The two approval requests become `ApprovalRequested`
keyed by `str(id)` and are answered with the original id value (an int stays an int).
`item/tool/requestUserInput` and an MCP form elicitation become `QuestionsAsked` (one card
per question; bridge/codecs/codex_questions.py, elicitation.py) answered by
`AnswerQuestions`. Every other server request is refused at once, so that nothing the agent
waits on is left unanswered. `serverRequest/resolved` for a request still pending means Codex
no longer waits for it (interrupt): `ApprovalWithdrawn`. The `jsonrpc` member is accepted when
present and never sent (the app-server omits it on the wire).
"""

from __future__ import annotations

import json
import shlex
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.codecs.codex_questions import REQUEST_USER_INPUT, asked_inputs, input_answers
from bridge.codecs.elicitation import Form, form_of, form_questions, form_response
from bridge.codecs.jsonrpc import (
    JsonRpcEndpoint,
    WireId,
    declined_note,
    error_text,
    obj,
    string,
)
from bridge.errors import ApprovalError, ProtocolError
from bridge.events import (
    JSON,
    AgentCommand,
    AgentEvent,
    AnswerApproval,
    AnswerQuestions,
    ApprovalRequested,
    ApprovalWithdrawn,
    AssistantText,
    ControlAnswered,
    DecisionKind,
    Initialize,
    Interrupt,
    Notice,
    QuestionsAsked,
    SendPrompt,
    SessionStarted,
    SetMode,
    SetModel,
    ToolFinished,
    ToolStarted,
    TurnCompleted,
    TurnStarted,
    UnknownEvent,
    UsageUpdated,
)
from bridge.framing import DEFAULT_MAX_LINE
from bridge.modes import codex_turn_settings

CLIENT_INFO: JSON = {"name": "agent-bridge", "title": "agent-bridge", "version": "0.1"}

_DECISIONS: dict[str, DecisionKind] = {
    "accept": DecisionKind.ALLOW_ONCE,
    "acceptForSession": DecisionKind.ALLOW_SESSION,
    "decline": DecisionKind.DENY,
    "cancel": DecisionKind.STOP,
}
_ANSWERS: dict[DecisionKind, str] = {kind: wire for wire, kind in _DECISIONS.items()}
_ALL_DECISIONS = tuple(_DECISIONS.values())  # what Codex can be answered
_COMMAND_APPROVAL = "item/commandExecution/requestApproval"
_FILE_APPROVAL = "item/fileChange/requestApproval"

# Notifications that carry nothing the bridge shows (status it derives from turns, rate
# limits, streaming deltas of items that also arrive completed): dropped.
_QUIET = frozenset(
    {
        "configWarning", "warning", "deprecationNotice", "account/rateLimits/updated",
        "remoteControl/status/changed", "thread/name/updated",
        "thread/goal/cleared", "thread/goal/updated", "thread/archived", "thread/unarchived",
        "turn/diff/updated", "turn/plan/updated", "mcpServer/startupStatus/updated",
        "item/commandExecution/terminalInteraction", "item/reasoning/summaryPartAdded",
        "item/mcpToolCall/progress", "item/autoApprovalReview/started",
        "item/autoApprovalReview/completed", "thread/readState/changed",
    }
)  # fmt: skip


def codex_argv(command: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    """The argv that runs the app-server. No resume flag: resuming is `thread/resume`."""
    return [*command, *extra]


def resume_hint(agent_session_id: str) -> str:
    return f"codex resume {agent_session_id}"


@dataclass(slots=True)
class _Pending:
    wire_id: WireId  # echoed back exactly as received
    what: str  # "the command `ls`", for notes about this request
    elicitation: bool = False  # an MCP tool-call approval, answered as an elicitation


class CodexCodec(JsonRpcEndpoint):
    def __init__(
        self,
        *,
        cwd: str,
        approval_policy: str = "on-request",
        sandbox: str = "workspace-write",
        resume: str | None = None,
        max_line: int = DEFAULT_MAX_LINE,
    ) -> None:
        super().__init__(max_line, jsonrpc_member=False)  # the app-server omits it
        self.cwd = cwd
        self.approval_policy = approval_policy
        self.sandbox = sandbox
        self.resume = resume
        self._open_id: int | None = None  # the thread/start or thread/resume in flight
        self._thread_id: str | None = None
        self._version: str | None = None
        self._turn_busy = False  # a turn/start was sent and its turn/completed is not in
        self._turn_id: str | None = None
        self._interrupt_wanted = False
        self._prompts: deque[str] = deque()
        self._pending: dict[str, _Pending] = {}
        # questions asked (requestUserInput, elicitations): request id → wire id and, for
        # an elicitation, its form
        self._asked: dict[str, tuple[WireId, Form | None]] = {}
        self._items: dict[str, JSON] = {}  # item id → the item as item/started showed it
        self._turn_text: str | None = None
        self._turn_error: str | None = None
        self._declined: list[str] = []  # deny reasons Codex has not heard yet
        # per-turn settings a person chose (None: as the thread was opened); the model the
        # thread runs, which Codex's collaboration mode must name
        self._mode: str | None = None
        self._model: str | None = None
        self._thread_model: str | None = None
        self._steers: dict[int, str] = {}  # turn/steer in flight → its text

    # -- outgoing -------------------------------------------------------------------

    def start(self, prompt: str | None) -> None:
        self.send(Initialize())
        self._open_thread()
        if prompt is not None:
            self._prompts.append(prompt)

    def send(self, command: AgentCommand) -> None:
        match command:
            case Initialize():
                self._request(
                    "initialize",
                    {"clientInfo": CLIENT_INFO, "capabilities": {"experimentalApi": True}},
                )
                self._notify("initialized")
            case SendPrompt(text=text):
                if not self._steer(text):
                    self._prompts.append(text)
                    self._next_turn()
            case AnswerApproval():
                self._answer(command)
            case AnswerQuestions():
                self._answer_questions(command)
            case Interrupt():
                self._interrupt()
            case SetMode(mode=mode):
                self._mode = mode  # Codex takes it with the next turn/start
            case SetModel(model=model):
                self._model = model

    @property
    def steers(self) -> bool:
        """A prompt sent now joins the running turn (`turn/steer`) rather than waiting."""
        return self._turn_busy and self._turn_id is not None and self._thread_id is not None

    def _steer(self, text: str) -> bool:
        """Add `text` to the running turn; False when no turn runs that can take it."""
        if not self.steers or self._prompts:
            return False
        wire_id = self._request("turn/steer", {"threadId": self._thread_id,
                                               "expectedTurnId": self._turn_id,
                                               "input": [_text_input(text)]})
        self._steers[wire_id] = text
        return True

    def pending_requests(self) -> list[str]:
        return [*self._pending, *self._asked]

    def abandon(self) -> None:
        for request_id in list(self._asked):
            self.send(AnswerQuestions(request_id=request_id))
        for request_id in list(self._pending):
            self.send(AnswerApproval(request_id=request_id, decision=DecisionKind.DENY))

    def _open_thread(self) -> None:
        if self.resume:
            params: JSON = {
                "threadId": self.resume,
                "cwd": self.cwd,
                "approvalPolicy": self.approval_policy,
                "approvalsReviewer": "user",
            }
            self._open_id = self._request("thread/resume", params)
        else:
            # approvalsReviewer "user": with "auto_review" (which a user's Codex config can
            # select) a reviewer sub-agent would decide instead of the person on the phone
            params = {"cwd": self.cwd, "approvalPolicy": self.approval_policy,
                      "approvalsReviewer": "user", "sandbox": self.sandbox}
            self._open_id = self._request("thread/start", params)

    def _next_turn(self) -> None:
        """Send the next queued prompt if the thread is open and no turn runs."""
        if self._thread_id is None:
            if self._open_id is None and self._prompts:
                self._open_thread()  # it failed before: a new prompt tries again
            return
        if self._turn_busy or not self._prompts:
            return
        text = self._prompts.popleft()
        items = [_text_input(text)]
        if self._declined:
            items.insert(0, _text_input(declined_note(self._declined)))
            self._declined.clear()
        self._request("turn/start", {"threadId": self._thread_id, "input": items,
                                     **self._turn_settings()})
        self._turn_busy = True
        self._turn_id = None

    def _turn_settings(self) -> JSON:
        """What a person chose for this turn: the approval policy and collaboration mode of
        their mode, and the model (checked against the real Codex 0.169.0)."""
        settings: JSON = {}
        if self._model is not None:
            settings["model"] = self._model
        if self._mode is not None:
            policy, collaboration = codex_turn_settings(self._mode, self.approval_policy)
            settings["approvalPolicy"] = policy
            model = self._model or self._thread_model
            if model is not None:  # the collaboration mode must name the model
                settings["collaborationMode"] = {
                    "mode": collaboration,
                    "settings": {"model": model, "reasoning_effort": None,
                                 "developer_instructions": None}}
        return settings

    def _interrupt(self) -> None:
        if self._turn_busy and self._turn_id is not None and self._thread_id is not None:
            self._interrupt_wanted = False
            self._request("turn/interrupt", {"threadId": self._thread_id, "turnId": self._turn_id})
        elif self._turn_busy or self._prompts:
            self._interrupt_wanted = True  # sent as soon as the turn has an id

    def _answer(self, command: AnswerApproval) -> None:
        pending = self._pending.pop(command.request_id, None)
        if pending is None:
            raise ApprovalError(f"the agent no longer waits for request {command.request_id}")
        if pending.elicitation:
            action = {DecisionKind.ALLOW_ONCE: "accept", DecisionKind.DENY: "decline"}.get(
                command.decision, "cancel")
            self._reply(pending.wire_id, {"action": action,
                                          "content": {} if action == "accept" else None,
                                          "_meta": None})
        else:
            self._reply(pending.wire_id, {"decision": _ANSWERS[command.decision]})
        if command.decision is DecisionKind.DENY and command.message:
            # Codex's approval response is `{"decision": …}` and nothing else: the reason a
            # person gave cannot travel with the decline. It is kept visible (a Notice) and
            # told to the model with the next prompt rather than lost.
            self._declined.append(f"{pending.what}: {command.message}")
            self._later.append(Notice(
                text=f"Codex cannot receive a reason with a decline; it will be told with the "
                     f"next prompt. Declined {pending.what}: {command.message}"))

    def _answer_questions(self, command: AnswerQuestions) -> None:
        asked = self._asked.pop(command.request_id, None)
        if asked is None:
            raise ApprovalError(f"the agent no longer waits for request {command.request_id}")
        wire_id, form = asked
        self._reply(wire_id, input_answers(command.answers) if form is None
                    else {**form_response(form, command.answers), "_meta": None})

    # -- incoming (JsonRpcEndpoint frames and routes; here is what each message means) --

    # server → client requests

    def _on_request(self, wire_id: WireId, method: str, params: JSON) -> list[AgentEvent]:
        if method in (_COMMAND_APPROVAL, _FILE_APPROVAL):
            return [self._approval(wire_id, method, params)]
        if method == "item/permissions/requestApproval":
            self._reply(wire_id, {"permissions": {}, "scope": "turn"})
            reason = params.get("reason") or "no reason given"
            return [Notice(text=f"refused Codex's request for more sandbox permissions "
                                f"({reason}): agent-bridge grants none")]
        if method == REQUEST_USER_INPUT:
            try:
                asked = asked_inputs(params, json.dumps(params, ensure_ascii=False))
            except ProtocolError as e:
                self._refuse(wire_id, f"agent-bridge cannot ask this: {e.message}", -32602)
                return [Notice(text=f"refused a malformed question from Codex: {e.message}")]
            self._asked[str(wire_id)] = (wire_id, None)
            item_id = params.get("itemId")
            return [QuestionsAsked(request_id=str(wire_id), questions=asked,
                                   tool_use_id=item_id if isinstance(item_id, str) else None)]
        if method == "mcpServer/elicitation/request":
            return self._elicitation(wire_id, params)
        self._refuse(wire_id, f"agent-bridge does not handle {method}")
        return [Notice(text=f"refused Codex request {method}")]

    def _elicitation(self, wire_id: WireId, params: JSON) -> list[AgentEvent]:
        server = str(params.get("serverName") or "an MCP server")
        meta = params.get("_meta")
        if isinstance(meta, dict) and meta.get("codex_approval_kind") == "mcp_tool_call":
            return [self._mcp_tool_approval(wire_id, server, params, meta)]
        form = form_of(server, str(params.get("message") or ""), params.get("mode"),
                       params.get("requestedSchema"))
        if isinstance(form, str):
            self._reply(wire_id, {"action": "decline", "content": None, "_meta": None})
            return [Notice(text=f"Declined {form} from {server}: agent-bridge answers only "
                                f"choices and text from a chat. {params.get('message') or ''}")]
        self._asked[str(wire_id)] = (wire_id, form)
        return [QuestionsAsked(request_id=str(wire_id), questions=form_questions(form))]

    def _mcp_tool_approval(self, wire_id: WireId, server: str, params: JSON,
                           meta: JSON) -> ApprovalRequested:
        """Codex asks to run an MCP server's tool as an elicitation whose `_meta` says
        `codex_approval_kind: "mcp_tool_call"` (checked with the real 0.169.0; `tool_name`,
        `tool_params`, an empty form): an approval card, answered `accept` or `decline`.
        Its `persist` choices are not offered: allow once, deny or stop only."""
        tool = f"mcp__{server}__{meta.get('tool_name') or 'tool'}"
        tool_params = meta.get("tool_params")
        request_id = str(wire_id)
        self._pending[request_id] = _Pending(wire_id, f"the MCP tool {tool}", elicitation=True)
        message = params.get("message")
        return ApprovalRequested(
            request_id=request_id, tool=tool,
            input=dict(tool_params) if isinstance(tool_params, dict) else {},
            description=message if isinstance(message, str) else None,
            offered=(DecisionKind.ALLOW_ONCE, DecisionKind.DENY, DecisionKind.STOP),
            raw=params,
        )

    def _approval(self, wire_id: WireId, method: str, params: JSON) -> ApprovalRequested:
        item_id = params.get("itemId")
        item = self._items.get(item_id, {}) if isinstance(item_id, str) else {}
        reason = params.get("reason")
        cwd = params.get("cwd") or item.get("cwd") or self.cwd
        tool_input: JSON
        if method == _COMMAND_APPROVAL:
            tool = "Bash"
            command = _command_text(params.get("command") or item.get("command"))
            tool_input = {"command": command, "cwd": cwd}
            what = f"the command `{command}`"
        else:
            # the approval carries no path or diff: they came with the item's item/started
            tool = "Edit"
            tool_input = _file_change_input(item.get("changes"))
            what = f"the changes to {tool_input.get('file_path') or 'files'}"
        if isinstance(reason, str) and reason:
            tool_input["reason"] = reason
        request_id = str(wire_id)
        self._pending[request_id] = _Pending(wire_id, what)
        return ApprovalRequested(
            request_id=request_id,
            tool=tool,
            input=tool_input,
            tool_use_id=item_id if isinstance(item_id, str) else None,
            description=reason if isinstance(reason, str) else None,
            cwd=cwd if isinstance(cwd, str) else None,
            offered=_offered(params.get("availableDecisions")),
            raw=params,
        )

    # notifications

    def _on_notification(self, method: str, params: JSON, m: JSON) -> list[AgentEvent]:
        thread_id = params.get("threadId")
        if thread_id is not None and self._thread_id is not None and thread_id != self._thread_id:
            return []  # another thread (a sub-agent's): its turns are not ours
        if method == "thread/started":
            return self._thread_opened(obj(params["thread"], "thread"), {})
        if method == "turn/started":
            turn = obj(params["turn"], "turn")
            self._turn_busy = True
            self._turn_id = string(turn, "id")
            self._turn_text = self._turn_error = None
            self._maybe_interrupt()
            return [TurnStarted()]
        if method == "turn/completed":
            return self._turn_completed(obj(params["turn"], "turn"))
        if method == "item/started":
            return self._item_started(obj(params["item"], "item"))
        if method == "item/completed":
            return self._item_completed(obj(params["item"], "item"))
        if method == "item/fileChange/patchUpdated":
            item = self._items.get(params.get("itemId") or "")
            if item is not None and "changes" in params:
                item["changes"] = params["changes"]
            return []
        if method == "serverRequest/resolved":
            request_id = str(params["requestId"])
            if (self._pending.pop(request_id, None) is None
                    and self._asked.pop(request_id, None) is None):
                return []  # we answered it: this is Codex confirming
            return [ApprovalWithdrawn(request_id=request_id)]
        if method == "error":
            error = params.get("error")
            text = error_text(error)
            if params.get("willRetry"):
                return [Notice(text=f"Codex error, retrying: {text}")]
            self._turn_error = text
            return []
        if method == "thread/status/changed":
            status = params.get("status")
            if isinstance(status, dict) and status.get("type") == "systemError":
                return [Notice(text="Codex reports a system error on the thread")]
            return []
        if method == "thread/tokenUsage/updated":
            return _usage(params.get("tokenUsage"))
        if method in ("thread/closed", "model/rerouted"):
            return [Notice(text=f"{method}: {json.dumps(params)[:500]}")]
        if method in _QUIET or method.endswith(("Delta", "/delta")):
            return []
        return [UnknownEvent(type=method, raw=m)]

    def _thread_opened(self, thread: JSON, result: JSON) -> list[AgentEvent]:
        if self._thread_id is not None:
            return []  # thread/started after the thread/start answer (or the reverse)
        self._thread_id = string(thread, "id")
        model = result.get("model") or thread.get("model")
        self._thread_model = model if isinstance(model, str) else None
        open_id, self._open_id = self._open_id, None
        events: list[AgentEvent] = [
            SessionStarted(
                agent_session_id=self._thread_id,
                model=result.get("model") or thread.get("model"),
                cwd=result.get("cwd") or thread.get("cwd"),
                version=thread.get("cliVersion") or self._version,
            ),
            ControlAnswered(request_id=str(open_id), ok=True, of="initialize"),
        ]
        self._next_turn()
        return events

    def _turn_completed(self, turn: JSON) -> list[AgentEvent]:
        status = turn.get("status")
        failed = status == "failed"
        events: list[AgentEvent] = []
        error = None
        if failed:
            error = error_text(turn.get("error")) or self._turn_error or "the turn failed"
        elif self._turn_error:
            events.append(Notice(text=f"Codex reported an error: {self._turn_error}"))
        duration = turn.get("durationMs")
        events.append(
            TurnCompleted(
                is_error=failed,
                interrupted=status == "interrupted",
                result_text=self._turn_text or _last_message(turn.get("items")),
                error=error,
                duration_ms=duration if isinstance(duration, int) else None,
                agent_session_id=self._thread_id,
            )
        )
        self._turn_busy = self._interrupt_wanted = False
        self._turn_id = self._turn_text = self._turn_error = None
        self._items.clear()
        self._next_turn()
        return events

    def _item_started(self, item: JSON) -> list[AgentEvent]:
        kind = item["type"]
        item_id = string(item, "id")
        if kind == "commandExecution":
            self._items[item_id] = item
            command = _command_text(item.get("command"))
            return [ToolStarted(tool_use_id=item_id, tool="Bash",
                                input={"command": command, "cwd": item.get("cwd") or self.cwd})]
        if kind == "fileChange":
            self._items[item_id] = item
            return [ToolStarted(tool_use_id=item_id, tool="Edit",
                                input=_file_change_input(item.get("changes")))]
        if kind == "mcpToolCall":
            arguments = item.get("arguments")
            return [ToolStarted(
                tool_use_id=item_id, tool=f"mcp__{item.get('server')}__{item.get('tool')}",
                input=arguments if isinstance(arguments, dict) else {"arguments": arguments})]
        return []

    def _item_completed(self, item: JSON) -> list[AgentEvent]:
        kind = item["type"]
        item_id = string(item, "id")
        self._items.pop(item_id, None)
        status = item.get("status")
        if kind == "agentMessage":
            text = item.get("text")
            if not isinstance(text, str) or not text:
                return []
            self._turn_text = text
            return [AssistantText(text=text)]
        if kind == "commandExecution":
            output = item.get("aggregatedOutput") or ""
            exit_code = item.get("exitCode")
            return [ToolFinished(
                tool_use_id=item_id, is_error=status != "completed",
                output=output or ("" if status == "completed" else str(status)),
                exit_code=exit_code if isinstance(exit_code, int) else None)]
        if kind == "fileChange":
            changes = _changes(item.get("changes"))
            done = "; ".join(f"{c['kind']} {c['path']}" for c in changes)
            if status != "completed":
                done = f"{status}: {done}" if done else str(status)
            return [ToolFinished(tool_use_id=item_id, is_error=status != "completed",
                                 output=done)]
        if kind == "mcpToolCall":
            failed = status != "completed"
            payload = item.get("error") if failed else item.get("result")
            return [ToolFinished(tool_use_id=item_id, is_error=failed,
                                 output=error_text(payload) if failed else _dump(payload))]
        return []

    # answers to our requests

    def _on_response(
        self, method: str, wire_id: int, result: Any, error: str | None
    ) -> list[AgentEvent]:
        if error is not None:
            return self._request_failed(method, wire_id, error)
        if method == "initialize":
            self._version = _version_of(obj(result, "result").get("userAgent"))
            return []
        if method in ("thread/start", "thread/resume"):
            result = obj(result, "result")
            return self._thread_opened(obj(result["thread"], "thread"), result)
        if method == "turn/start":
            turn = obj(result, "result").get("turn")
            if isinstance(turn, dict) and self._turn_busy and self._turn_id is None:
                self._turn_id = string(turn, "id")
                self._maybe_interrupt()
            return []
        if method == "turn/interrupt":
            return [ControlAnswered(request_id=str(wire_id), ok=True, of="interrupt")]
        if method == "turn/steer":
            self._steers.pop(wire_id, None)
        return []

    def _request_failed(self, method: str, wire_id: int, error: str) -> list[AgentEvent]:
        if method == "turn/steer":
            # the turn ended before the steer reached it: the text becomes the next turn,
            # so nothing typed is lost
            text = self._steers.pop(wire_id, None)
            if text is not None:
                self._prompts.append(text)
                self._next_turn()
            return [Notice(text=f"turn/steer refused ({error}): sent as the next turn")]
        if method in ("thread/start", "thread/resume"):
            # the thread never opened: the prompts for it cannot run; the next prompt retries
            self._open_id = None
            self._prompts.clear()
            return [TurnCompleted(is_error=True, error=f"{method} failed: {error}")]
        if method == "turn/start":
            self._turn_busy = False
            self._turn_id = None
            events: list[AgentEvent] = [
                TurnCompleted(is_error=True, error=f"turn/start failed: {error}",
                              agent_session_id=self._thread_id)
            ]
            self._next_turn()
            return events
        of = "interrupt" if method == "turn/interrupt" else method
        return [ControlAnswered(request_id=str(wire_id), ok=False, error=error, of=of)]

    def _maybe_interrupt(self) -> None:
        if self._interrupt_wanted:
            self._interrupt()


def _offered(available: Any) -> tuple[DecisionKind, ...]:
    """The buttons for `availableDecisions`. Decline and cancel are always offered: Codex
    accepts `decline` even when it does not list it, and a person must always be able to
    say no. Object decisions (execpolicy or network amendments) have no button."""
    if available is None:
        return _ALL_DECISIONS
    if not isinstance(available, list):
        raise TypeError("availableDecisions is not a list")
    kinds = {DecisionKind.DENY, DecisionKind.STOP}
    kinds.update(_DECISIONS[d] for d in available if isinstance(d, str) and d in _DECISIONS)
    return tuple(k for k in _ALL_DECISIONS if k in kinds)


def _file_change_input(raw: Any) -> JSON:
    """A file change as the approval card shows it: the first path, and as `content` (the
    body a card previews) every file the patch touches, then the unified diffs; every
    change listed in `changes`. An "allow for session" rule covers exactly these paths."""
    changes = _changes(raw)
    tool_input: JSON = {"changes": changes}
    if changes:
        tool_input["file_path"] = changes[0]["path"]
        diffs = "\n".join(c["diff"] for c in changes if c["diff"])
        if len(changes) > 1 or changes[0].get("move_path"):
            touched = "\n".join(_touched(c) for c in changes)
            count = f"{len(changes)} file{'s' if len(changes) > 1 else ''}"
            diffs = f"{count}:\n{touched}\n\n{diffs}"
        tool_input["content"] = diffs
    return tool_input


def _touched(change: JSON) -> str:
    moved = change.get("move_path")
    return f"{change['kind']} {change['path']}" + (f" → {moved}" if moved else "")


def _changes(raw: Any) -> list[JSON]:
    if not isinstance(raw, list):
        return []
    changes = []
    for change in raw:
        if not isinstance(change, dict):
            continue
        kind = change.get("kind")
        moved = kind.get("move_path") if isinstance(kind, dict) else None
        if isinstance(kind, dict):
            kind = kind.get("type")
        entry: JSON = {"path": str(change.get("path", "")), "kind": str(kind or "update"),
                       "diff": str(change.get("diff") or "")}
        if isinstance(moved, str) and moved:
            entry["move_path"] = moved  # the patch also writes here
        changes.append(entry)
    return changes


def _text_input(text: str) -> JSON:
    return {"type": "text", "text": text, "text_elements": []}



def _command_text(command: Any) -> str:
    """The command exactly as Codex will run it, wrapper and all (`/bin/bash -lc '…'`): the
    card shows it and an "allow for session" rule matches it, so nothing of it may be
    left out (a rule made for `/bin/bash -lc 'X'` must not cover `./bash -lc 'X'`)."""
    if isinstance(command, list):
        return shlex.join(str(c) for c in command)
    if isinstance(command, str):
        return command
    return ""


def _last_message(items: Any) -> str | None:
    if not isinstance(items, list):
        return None
    messages = [i for i in items if isinstance(i, dict) and i.get("type") == "agentMessage"]
    texts = [t for m in messages if isinstance(t := m.get("text"), str) and t]
    return texts[-1] if texts else None


def _version_of(user_agent: Any) -> str | None:
    """`agent-bridge/0.169.0 (Debian 12.0.0; x86_64) …` → `0.169.0`."""
    if not isinstance(user_agent, str) or "/" not in user_agent:
        return None
    return user_agent.split(" ", 1)[0].split("/", 1)[1] or None



def _dump(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)[:4000]


def _usage(usage: object) -> list[AgentEvent]:
    """The thread's running totals; a report without them changes nothing."""
    total = usage.get("total") if isinstance(usage, dict) else None
    if not isinstance(total, dict) or not isinstance(total.get("totalTokens"), int):
        return []

    def count(key: str) -> int:
        value = total.get(key)
        return value if isinstance(value, int) else 0

    return [UsageUpdated(total_tokens=total["totalTokens"], input_tokens=count("inputTokens"),
                         output_tokens=count("outputTokens"))]
