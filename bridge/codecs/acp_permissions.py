"""ACP's `session/request_permission` → `ApprovalRequested`, and the outcome that answers it.

The card's buttons are the decisions whose option kinds the agent offers (stop always: it
cancels the turn); the answer is the agent's own `optionId` for the decision, or
`cancelled` when it offers none. A permission outcome carries nothing else, so the reason
for a rejection is told with the next prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.codecs.acp_tools import tool_input, tool_name
from bridge.codecs.jsonrpc import WireId, obj
from bridge.events import JSON, ApprovalRequested, DecisionKind, Notice

# the option kinds that offer each decision (all of them)
_OPTION_KINDS: dict[DecisionKind, tuple[str, ...]] = {
    DecisionKind.ALLOW_ONCE: ("allow_once",),
    DecisionKind.ALLOW_SESSION: ("allow_always", "allow_once"),
    DecisionKind.DENY: ("reject_once", "reject_always"),
}
# and the ones that answer it, best first. "Allow for session" is answered `allow_once`, and
# only offered when the agent has it: what `allow_always` does is the agent's choice (the
# whole tool, every command with the same first word, or for claude-agent-acp's plan "clear
# context and use auto mode"), never what the card showed; the daemon keeps the session rule
# itself, exactly, and answers the next matching request.
_ANSWER_KINDS: dict[DecisionKind, tuple[str, ...]] = {
    DecisionKind.ALLOW_ONCE: ("allow_once",),
    DecisionKind.ALLOW_SESSION: ("allow_once",),
    DecisionKind.DENY: ("reject_once", "reject_always"),
}


@dataclass(slots=True)
class Permission:
    wire_id: WireId
    options: dict[str, str]  # option kind → the agent's optionId (the first of that kind)
    what: str


def permission_request(
    pending: dict[str, Permission], tools: dict[str, JSON], wire_id: WireId, params: JSON
) -> ApprovalRequested:
    """The card for a permission request, kept in `pending`; `tools` holds the calls seen
    so far (the request may name one by its id alone)."""
    options: dict[str, str] = {}
    for option in params["options"]:
        kind, option_id = option["kind"], option["optionId"]
        if isinstance(kind, str) and isinstance(option_id, str):
            options.setdefault(kind, option_id)
    call = obj(params.get("toolCall") or {}, "toolCall")
    call_id = call.get("toolCallId")
    seen = tools.get(call_id, {}) if isinstance(call_id, str) else {}
    known = {**seen, **{k: v for k, v in call.items() if v is not None}}
    offered = tuple(
        kind for kind in DecisionKind
        if kind is DecisionKind.STOP
        or (kind in _OPTION_KINDS and all(k in options for k in _OPTION_KINDS[kind]))
        or (kind is DecisionKind.DENY and any(k in options for k in _ANSWER_KINDS[kind]))
    )
    tool, shown = tool_name(known), tool_input(known)
    request_id = str(wire_id)
    what = shown.get("command") or known.get("title") or tool
    pending[request_id] = Permission(wire_id, options, f"{tool} `{what}`")
    title = known.get("title")
    return ApprovalRequested(
        request_id=request_id,
        tool=tool,
        input=shown,
        tool_use_id=call_id if isinstance(call_id, str) else None,
        description=title if isinstance(title, str) else None,
        offered=offered,
        raw=params,
    )


def permission_outcome(permission: Permission, decision: DecisionKind) -> JSON:
    """The answer to a permission for any decision but stop (which cancels the turn)."""
    option = next((permission.options[k] for k in _ANSWER_KINDS[decision]
                   if k in permission.options), None)
    outcome: JSON = (
        {"outcome": "selected", "optionId": option} if option else {"outcome": "cancelled"}
    )
    return {"outcome": outcome}


def rejected_notice(permission: Permission, message: str) -> Notice:
    # a permission outcome is an option id and nothing else: the reason cannot travel with
    # the rejection. It is kept visible and told with the next prompt instead.
    return Notice(text=f"ACP cannot carry a reason with a rejection; it will be told with the "
                       f"next prompt. Rejected {permission.what}: {message}", shown=True)
