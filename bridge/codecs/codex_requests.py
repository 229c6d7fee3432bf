"""The requests Codex sends the bridge, and their answers: `CodexServerRequests`, the base
of `CodexCodec` that keeps every request still waiting for a person.

`item/commandExecution/requestApproval` and `item/fileChange/requestApproval` become an
approval card keyed by `str(id)`; the buttons are the `availableDecisions` the bridge can
press (decline and stop always). A file-change approval carries no path or diff: they come
from the item's `item/started`, which the codec keeps. An MCP tool call Codex asks to run
arrives as an elicitation (`_meta.codex_approval_kind: "mcp_tool_call"`) and is answered
as one. `item/tool/requestUserInput` and an MCP form elicitation become `QuestionsAsked`
(bridge/codecs/codex_questions.py, elicitation.py). Every other request is refused at once,
so that nothing the agent waits on is left unanswered. A reply echoes the original id value
(an int stays an int).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bridge.codecs.codex_items import command_text, file_change_input
from bridge.codecs.codex_questions import REQUEST_USER_INPUT, asked_inputs, input_answers
from bridge.codecs.elicitation import Form, form_of, form_questions, form_response
from bridge.codecs.jsonrpc import JsonRpcEndpoint, WireId
from bridge.errors import ApprovalError, ProtocolError
from bridge.events import (
    JSON,
    AgentEvent,
    AnswerApproval,
    AnswerQuestions,
    ApprovalRequested,
    ApprovalWithdrawn,
    DecisionKind,
    Notice,
    QuestionsAsked,
)

_DECISIONS: dict[str, DecisionKind] = {
    "accept": DecisionKind.ALLOW_ONCE,
    "acceptForSession": DecisionKind.ALLOW_SESSION,
    "decline": DecisionKind.DENY,
    "cancel": DecisionKind.STOP,
}
_ANSWERS: dict[DecisionKind, str] = {kind: wire for wire, kind in _DECISIONS.items()}
_ALL_DECISIONS = tuple(_DECISIONS.values())  # what Codex can be answered
COMMAND_APPROVAL = "item/commandExecution/requestApproval"
FILE_APPROVAL = "item/fileChange/requestApproval"


@dataclass(slots=True)
class Pending:
    wire_id: WireId  # echoed back exactly as received
    what: str  # "the command `ls`", for notes about this request
    elicitation: bool = False  # an MCP tool-call approval, answered as an elicitation


class CodexServerRequests(JsonRpcEndpoint):
    """The server → client half of the Codex codec: the requests still waiting for an
    answer, and the reasons for declines Codex has not heard yet."""

    def __init__(self, *, cwd: str, max_line: int) -> None:
        super().__init__(max_line, jsonrpc_member=False)  # the app-server omits it
        self.cwd = cwd
        self._pending: dict[str, Pending] = {}
        # questions asked (requestUserInput, elicitations): request id → wire id and, for
        # an elicitation, its form
        self._asked: dict[str, tuple[WireId, Form | None]] = {}
        self._items: dict[str, JSON] = {}  # item id → the item as item/started showed it
        self._declined: list[str] = []  # deny reasons Codex has not heard yet

    def pending_requests(self) -> list[str]:
        return [*self._pending, *self._asked]

    def abandon(self) -> None:
        for request_id in list(self._asked):
            self._answer_questions(AnswerQuestions(request_id=request_id))
        for request_id in list(self._pending):
            self._answer(AnswerApproval(request_id=request_id, decision=DecisionKind.DENY))

    def _answer(self, command: AnswerApproval) -> None:
        pending = self._pending.pop(command.request_id, None)
        if pending is None:
            raise ApprovalError(f"the agent no longer waits for request {command.request_id}")
        self._reply(pending.wire_id, approval_answer(pending, command.decision))
        if command.decision is DecisionKind.DENY and command.message:
            self._declined.append(f"{pending.what}: {command.message}")
            self._later.append(declined_notice(pending, command.message))

    def _answer_questions(self, command: AnswerQuestions) -> None:
        asked = self._asked.pop(command.request_id, None)
        if asked is None:
            raise ApprovalError(f"the agent no longer waits for request {command.request_id}")
        wire_id, form = asked
        self._reply(wire_id, input_answers(command.answers) if form is None
                    else {**form_response(form, command.answers), "_meta": None})

    def _on_request(self, wire_id: WireId, method: str, params: JSON) -> list[AgentEvent]:
        if method in (COMMAND_APPROVAL, FILE_APPROVAL):
            item_id = params.get("itemId")
            item = self._items.get(item_id, {}) if isinstance(item_id, str) else {}
            return [approval(self._pending, wire_id, method, params, item, self.cwd)]
        if method == "item/permissions/requestApproval":
            self._reply(wire_id, {"permissions": {}, "scope": "turn"})
            reason = params.get("reason") or "no reason given"
            return [Notice(text=f"refused Codex's request for more sandbox permissions "
                                f"({reason}): agent-bridge grants none", shown=True)]
        if method == REQUEST_USER_INPUT:
            try:
                asked = asked_inputs(params, json.dumps(params, ensure_ascii=False))
            except ProtocolError as e:
                self._refuse(wire_id, f"agent-bridge cannot ask this: {e.message}", -32602)
                return [Notice(text=f"refused a malformed question from Codex: {e.message}",
                               shown=True)]
            self._asked[str(wire_id)] = (wire_id, None)
            item_id = params.get("itemId")
            return [QuestionsAsked(request_id=str(wire_id), questions=asked,
                                   tool_use_id=item_id if isinstance(item_id, str) else None)]
        if method == "mcpServer/elicitation/request":
            return self._elicitation(wire_id, params)
        self._refuse(wire_id, f"agent-bridge does not handle {method}")
        return [Notice(text=f"refused Codex request {method}: agent-bridge does not handle "
                            "it", shown=True)]

    def _elicitation(self, wire_id: WireId, params: JSON) -> list[AgentEvent]:
        server = str(params.get("serverName") or "an MCP server")
        meta = params.get("_meta")
        if isinstance(meta, dict) and meta.get("codex_approval_kind") == "mcp_tool_call":
            return [mcp_tool_approval(self._pending, wire_id, server, params, meta)]
        form = form_of(server, str(params.get("message") or ""), params.get("mode"),
                       params.get("requestedSchema"))
        if isinstance(form, str):
            self._reply(wire_id, {"action": "decline", "content": None, "_meta": None})
            return [Notice(text=f"Declined {form} from {server}: agent-bridge answers only "
                                f"choices and text from a chat. {params.get('message') or ''}",
                           shown=True)]
        self._asked[str(wire_id)] = (wire_id, form)
        return [QuestionsAsked(request_id=str(wire_id), questions=form_questions(form))]

    def _resolved(self, params: JSON) -> list[AgentEvent]:
        """`serverRequest/resolved`: for a request still pending, Codex no longer waits for
        it (an interrupt)."""
        request_id = str(params["requestId"])
        if (self._pending.pop(request_id, None) is None
                and self._asked.pop(request_id, None) is None):
            return []  # we answered it: this is Codex confirming
        return [ApprovalWithdrawn(request_id=request_id)]


def approval(
    pending: dict[str, Pending], wire_id: WireId, method: str, params: JSON, item: JSON,
    cwd: str,
) -> ApprovalRequested:
    """A command or file-change approval, kept in `pending`; `item` is what its
    item/started showed."""
    item_id = params.get("itemId")
    reason = params.get("reason")
    cwd = params.get("cwd") or item.get("cwd") or cwd
    tool_input: JSON
    if method == COMMAND_APPROVAL:
        tool = "Bash"
        command = command_text(params.get("command") or item.get("command"))
        tool_input = {"command": command, "cwd": cwd}
        what = f"the command `{command}`"
    else:
        # the approval carries no path or diff: they came with the item's item/started
        tool = "Edit"
        tool_input = file_change_input(item.get("changes"))
        what = f"the changes to {tool_input.get('file_path') or 'files'}"
    if isinstance(reason, str) and reason:
        tool_input["reason"] = reason
    request_id = str(wire_id)
    pending[request_id] = Pending(wire_id, what)
    return ApprovalRequested(
        request_id=request_id,
        tool=tool,
        input=tool_input,
        tool_use_id=item_id if isinstance(item_id, str) else None,
        description=reason if isinstance(reason, str) else None,
        cwd=cwd if isinstance(cwd, str) else None,
        offered=offered(params.get("availableDecisions")),
        raw=params,
    )


def mcp_tool_approval(
    pending: dict[str, Pending], wire_id: WireId, server: str, params: JSON, meta: JSON
) -> ApprovalRequested:
    """Codex asks to run an MCP server's tool as an elicitation whose `_meta` says
    `codex_approval_kind: "mcp_tool_call"` (checked with the real 0.169.0; `tool_name`,
    `tool_params`, an empty form): an approval card, answered `accept` or `decline`.
    Its `persist` choices are not offered: allow once, deny or stop only."""
    tool = f"mcp__{server}__{meta.get('tool_name') or 'tool'}"
    tool_params = meta.get("tool_params")
    request_id = str(wire_id)
    pending[request_id] = Pending(wire_id, f"the MCP tool {tool}", elicitation=True)
    message = params.get("message")
    return ApprovalRequested(
        request_id=request_id, tool=tool,
        input=dict(tool_params) if isinstance(tool_params, dict) else {},
        description=message if isinstance(message, str) else None,
        offered=(DecisionKind.ALLOW_ONCE, DecisionKind.DENY, DecisionKind.STOP),
        raw=params,
    )


def approval_answer(pending: Pending, decision: DecisionKind) -> JSON:
    """The reply to an approval request: a decision, or an elicitation's action."""
    if pending.elicitation:
        action = {DecisionKind.ALLOW_ONCE: "accept", DecisionKind.DENY: "decline"}.get(
            decision, "cancel")
        return {"action": action, "content": {} if action == "accept" else None, "_meta": None}
    return {"decision": _ANSWERS[decision]}


def declined_notice(pending: Pending, message: str) -> Notice:
    # Codex's approval response is `{"decision": …}` and nothing else: the reason a person
    # gave cannot travel with the decline. It is kept visible (a Notice) and told to the
    # model with the next prompt rather than lost.
    return Notice(text=f"Codex cannot receive a reason with a decline; it will be told with "
                       f"the next prompt. Declined {pending.what}: {message}", shown=True)


def offered(available: Any) -> tuple[DecisionKind, ...]:
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
