"""ACP's `session/request_permission` → `ApprovalRequested`, and the outcome that answers it.

The card's buttons are the decisions whose option kinds the agent offers (stop always: it
cancels the turn); the answer is the agent's own `optionId` for the decision, or
`cancelled` when it offers none. A permission outcome carries nothing else, so the reason
for a rejection is told with the next prompt.

A plan (claude-agent-acp's ExitPlanMode, or any `switch_mode` call) is shown with the
agent's own allow options as its buttons (`ApprovalRequested.choices`), and answered with
the id of the one a person tapped: what each does ("clear context", "auto-accept edits") is
the agent's, and the person read its label. Options that leave the person out of every later
decision (bypass permissions, auto mode, don't ask) are never offered from a card.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bridge.codecs.acp_tools import tool_input, tool_name
from bridge.codecs.jsonrpc import WireId, obj
from bridge.events import JSON, AgentChoice, ApprovalRequested, DecisionKind, Notice
from bridge.plans import is_plan

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


# an option that takes the person out of every later decision (by its id or its name):
# bypassPermissions, dontAsk, "use auto mode" (not "auto-accept edits", which still asks)
_NEVER_ASKS = re.compile(r"bypass|dont_?ask|don't ask|\bauto\b(?!-accept)", re.IGNORECASE)


@dataclass(slots=True)
class Permission:
    wire_id: WireId
    options: dict[str, str]  # option kind → the agent's optionId (the first of that kind)
    what: str
    choices: list[str] = field(default_factory=list)  # a plan's allow options shown, by id


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
    choices = plan_choices(params["options"]) if is_plan(tool) or known.get(
        "kind") == "switch_mode" else ()
    if choices:
        offered = (DecisionKind.ALLOW_ONCE,
                   *(k for k in offered if k in (DecisionKind.DENY, DecisionKind.STOP)))
    pending[request_id] = Permission(wire_id, options, f"{tool} `{what}`",
                                     [c.id for c in choices])
    title = known.get("title")
    return ApprovalRequested(
        request_id=request_id,
        tool=tool,
        input=shown,
        tool_use_id=call_id if isinstance(call_id, str) else None,
        description=title if isinstance(title, str) else None,
        offered=offered,
        choices=choices,
        raw=params,
    )


def plan_choices(options: list[JSON]) -> tuple[AgentChoice, ...]:
    """A plan's allow options as its card's buttons, in the agent's order, but for those
    that never ask again."""
    return tuple(
        AgentChoice(id=o["optionId"], label=o.get("name") or o["optionId"])
        for o in options
        if o.get("kind") in ("allow_once", "allow_always") and isinstance(o.get("optionId"), str)
        and not _NEVER_ASKS.search(f"{o['optionId']} {o.get('name') or ''}"))


def permission_outcome(permission: Permission, decision: DecisionKind,
                       choice: str | None = None) -> JSON:
    """The answer to a permission for any decision but stop (which cancels the turn): the
    agent's option a person chose on a plan's card (a plan approved without naming one:
    the first shown), else the option of the decision's kind."""
    option = None
    if permission.choices and decision is DecisionKind.ALLOW_ONCE:
        once = permission.options.get("allow_once")
        option = (choice if choice in permission.choices
                  else once if once in permission.choices else permission.choices[0])
    option = option or next((permission.options[k] for k in _ANSWER_KINDS[decision]
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
