"""Claude Code: stream-json on stdio plus the control protocol (`--permission-prompt-tool stdio`).

Wire facts (reference/agent-protocols.md §1): one JSON object per line; route on `type`;
unknown types are kept as `UnknownEvent`; lines that do not start with `{` are stray
output some builds print (kept as `Notice`); a line that starts with `{` and does not
parse is a protocol error. Approvals arrive as `control_request/can_use_tool` and are
answered with `control_response` on the same `request_id`; on allow the original input is
echoed back as `updatedInput` (an empty one broke MCP tools, SDK issue #320).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import count
from typing import Any

from bridge.codecs.claude_questions import ASK_USER_QUESTION, asked_questions
from bridge.codecs.elicitation import Form, form_of, form_questions, form_response
from bridge.codecs.endpoint import JsonLinesEndpoint
from bridge.codecs.limits import claude_rate_limit, claude_refused
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
    SettingsChanged,
    ToolFinished,
    ToolStarted,
    TurnCompleted,
    UnknownEvent,
)
from bridge.framing import DEFAULT_MAX_LINE
from bridge.plans import PLAN_DECISIONS, is_plan

PROTOCOL_FLAGS: tuple[str, ...] = (
    "--output-format",
    "stream-json",
    "--verbose",
    "--input-format",
    "stream-json",
    "--permission-prompt-tool",
    "stdio",
)

# "Approve, accept edits" on a plan: the session's mode, never the user's settings files
ACCEPT_EDITS_MODE: JSON = {"type": "setMode", "mode": "acceptEdits", "destination": "session"}

# Message types that carry nothing the bridge shows; they are dropped, not stored.
_QUIET_TYPES = frozenset({"stream_event", "transcript_mirror", "keep_alive"})
_QUIET_SYSTEM = frozenset(
    {
        "status",
        "session_state_changed",
        "hook_started",
        "hook_response",
        "hook_progress",
        "thinking_tokens",
        "commands_changed",
        "compact_boundary",
        "task_progress",
        "task_updated",
    }
)


def claude_argv(
    command: Sequence[str], *, resume: str | None = None, extra: Sequence[str] = ()
) -> list[str]:
    """The argv that runs Claude Code under the bridge; `--resume=` in one token on purpose
    (a two-token `--resume <id>` can be misparsed when the id starts with a dash)."""
    argv = [*command, *PROTOCOL_FLAGS, *extra]
    if resume:
        argv.append(f"--resume={resume}")
    return argv


def resume_hint(agent_session_id: str) -> str:
    return f"claude --resume {agent_session_id}"


@dataclass(slots=True)
class _Pending:
    tool: str
    input: JSON


class ClaudeCodec(JsonLinesEndpoint):
    """Claude Code's messages routed on `type` over the shared JSON-lines framing."""

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        super().__init__(max_line)
        self._pending: dict[str, _Pending] = {}
        self._ids = count(1)
        self._controls: dict[str, str] = {}  # our outstanding control requests → subtype
        self._forms: dict[str, Form] = {}  # MCP elicitations asked (also in _pending)

    # -- outgoing -------------------------------------------------------------------

    def start(self, prompt: str | None) -> None:
        self.send(Initialize())
        if prompt is not None:
            self.send(SendPrompt(text=prompt))

    def send(self, command: AgentCommand) -> None:
        match command:
            case Initialize():
                self._control({"subtype": "initialize", "hooks": None})
            case Interrupt():
                self._control({"subtype": "interrupt"})
            case SetMode(mode=mode):
                self._control({"subtype": "set_permission_mode", "mode": mode})
            case SetModel(model=model):
                self._control({"subtype": "set_model", "model": model})
            case SendPrompt(text=text, images=images):
                content: str | list[JSON] = text
                if images:  # content blocks: the text, then each image inline (base64)
                    content = [{"type": "text", "text": text}, *(
                        {"type": "image", "source": {"type": "base64",
                                                     "media_type": image.media_type,
                                                     "data": image.data}}
                        for image in images)]
                self._write(
                    {
                        "type": "user",
                        "session_id": "",
                        "message": {"role": "user", "content": content},
                        "parent_tool_use_id": None,
                    }
                )
            case AnswerApproval():
                self._answer(command)
            case AnswerQuestions():
                self._answer_questions(command)

    def pending_requests(self) -> list[str]:
        return list(self._pending)

    def abandon(self) -> None:
        for request_id in list(self._pending):
            if request_id in self._forms:
                self.send(AnswerQuestions(request_id=request_id))  # cancel: not answered
                continue
            self.send(AnswerApproval(request_id=request_id, decision=DecisionKind.DENY,
                                     message="agent-bridge is closing this session."))

    def _control(self, request: JSON) -> str:
        request_id = f"req_{next(self._ids)}_bridge"
        self._controls[request_id] = request["subtype"]
        self._write({"type": "control_request", "request_id": request_id, "request": request})
        return request_id

    def _answer(self, command: AnswerApproval) -> None:
        pending = self._pending.pop(command.request_id, None)
        if pending is None:
            raise ApprovalError(f"the agent no longer waits for request {command.request_id}")
        # the input the person was shown is the one the agent may run
        shown = pending.input if command.input is None else dict(command.input)
        response: JSON
        match command.decision:
            case DecisionKind.ALLOW_ONCE:
                response = {"behavior": "allow", "updatedInput": shown}
            case DecisionKind.ALLOW_SESSION:
                response = {"behavior": "allow", "updatedInput": shown}
                rules = session_rules(pending.tool, shown)
                if rules:
                    response["updatedPermissions"] = rules
            case DecisionKind.ACCEPT_EDITS:  # a plan approved (bridge.plans)
                response = {"behavior": "allow", "updatedInput": shown,
                            "updatedPermissions": [ACCEPT_EDITS_MODE]}
            case DecisionKind.DENY:
                response = {
                    "behavior": "deny",
                    "message": command.message or "Denied by the user.",
                    "interrupt": False,
                }
            case DecisionKind.STOP:
                response = {
                    "behavior": "deny",
                    "message": command.message or "Stopped by the user.",
                    "interrupt": True,
                }
        self._write(
            {
                "type": "control_response",
                "response": {
                    "subtype": "success",
                    "request_id": command.request_id,
                    "response": response,
                },
            }
        )

    def _answer_questions(self, command: AnswerQuestions) -> None:
        """AskUserQuestion is answered as an allow whose `updatedInput` is the input asked
        plus `answers` (question text → the chosen labels joined by ", ", as the CLI's own
        dialog does; checked against the real binary). No answers: the input as asked, and
        the model hears "The user did not answer the questions" (never a made-up answer)."""
        pending = self._pending.pop(command.request_id, None)
        if pending is None:
            raise ApprovalError(f"the agent no longer waits for request {command.request_id}")
        form = self._forms.pop(command.request_id, None)
        if form is not None:  # an MCP elicitation: `{action, content}`
            self._respond(command.request_id, form_response(form, command.answers))
            return
        updated = dict(pending.input)
        if command.answers:
            updated["answers"] = {key: ", ".join(chosen)
                                  for key, chosen in command.answers.items()}
        self._respond(command.request_id, {"behavior": "allow", "updatedInput": updated})

    def _respond(self, request_id: str, response: JSON) -> None:
        self._write({"type": "control_response",
                     "response": {"subtype": "success", "request_id": request_id,
                                  "response": response}})

    # -- incoming -------------------------------------------------------------------

    def _asks_us(self, message: dict[str, Any]) -> bool:
        """A request the bridge must answer (a person may decide it): kept exactly or
        refused."""
        return message.get("type") == "control_request"

    def _message(self, message: JSON, line: bytes) -> list[AgentEvent]:
        if not isinstance(message.get("type"), str):
            raise ProtocolError("a message without a string 'type'", line)
        try:
            return self._route(message)
        except (KeyError, TypeError, AttributeError) as e:
            raise ProtocolError(f"malformed {message['type']} message: {e!r}", line) from e

    def _route(self, m: JSON) -> list[AgentEvent]:
        kind: str = m["type"]
        if kind == "assistant":
            return list(self._assistant(m))
        if kind == "user":
            return list(self._user(m))
        if kind == "control_request":
            return self._control_request(m)
        if kind == "control_response":
            r = m["response"]
            ok = r["subtype"] == "success"
            of = self._controls.pop(r["request_id"], None)
            answered: list[AgentEvent] = [
                ControlAnswered(request_id=r["request_id"], ok=ok, error=r.get("error"), of=of)]
            settled = r.get("response") if ok else None
            if isinstance(settled, dict) and of in ("set_permission_mode", "set_model"):
                # the CLI answers with what it now runs: `{"mode": "plan"}`, and for a model
                # the name it resolved (`sonnet` → the full name)
                mode, model = settled.get("mode"), settled.get("model")
                answered.append(SettingsChanged(
                    mode=mode if isinstance(mode, str) else None,
                    model=model if isinstance(model, str) else None))
            return answered
        if kind == "control_cancel_request":
            request_id = m["request_id"]
            self._forms.pop(request_id, None)
            if self._pending.pop(request_id, None) is None:
                return []
            return [ApprovalWithdrawn(request_id=request_id)]
        if kind == "result":
            return [_result(m)]
        if kind == "system":
            subtype = m.get("subtype")
            if subtype == "init":
                return [
                    SessionStarted(
                        agent_session_id=_required_str(m, "session_id"),
                        model=m.get("model"),
                        cwd=m.get("cwd"),
                        version=m.get("claude_code_version"),
                        mode=_optional_str(m.get("permissionMode")),
                    )
                ]
            if subtype == "status" and isinstance(m.get("permissionMode"), str):
                return [SettingsChanged(mode=m["permissionMode"])]
            if subtype in _QUIET_SYSTEM:
                return []
            return [UnknownEvent(type=f"system/{subtype}", raw=m)]
        if kind in _QUIET_TYPES:
            return []
        if kind == "rate_limit_event":
            return [claude_rate_limit(m)]
        return [UnknownEvent(type=kind, raw=m)]

    def _assistant(self, m: JSON) -> list[AgentEvent]:
        events: list[AgentEvent] = []
        for block in m["message"]["content"]:
            block_type = block.get("type")
            if block_type == "text":
                events.append(AssistantText(text=block["text"]))
            elif block_type in ("tool_use", "server_tool_use"):
                events.append(
                    ToolStarted(tool_use_id=block["id"], tool=block["name"], input=block["input"])
                )
        refused = claude_refused(m, "\n".join(e.text for e in events
                                              if isinstance(e, AssistantText)))
        return [*events, refused] if refused is not None else events

    def _user(self, m: JSON) -> list[AgentEvent]:
        content = m["message"]["content"]
        if isinstance(content, str):
            return []  # an echo of our own prompt
        events: list[AgentEvent] = []
        for block in content:
            if block.get("type") == "tool_result":
                events.append(
                    ToolFinished(
                        tool_use_id=block["tool_use_id"],
                        is_error=bool(block.get("is_error")),
                        output=_text_of(block.get("content")),
                        exit_code=None,
                    )
                )
            elif block.get("type") == "text":
                events.append(Notice(text=block["text"]))
        return events

    def _elicitation(self, request_id: str, request: JSON) -> list[AgentEvent]:
        """An MCP server's form (checked with the real 2.1.331: `mcp_server_name`,
        `message`, `mode`, `requested_schema`, …; answered `{action, content}`): asked as
        questions, or declined with a notice when a chat cannot answer it."""
        server = str(request.get("mcp_server_name") or "an MCP server")
        form = form_of(server, str(request.get("message") or ""), request.get("mode"),
                       request.get("requested_schema"))
        if isinstance(form, str):
            self._respond(request_id, {"action": "decline"})
            return [Notice(text=f"Declined {form} from {server}: agent-bridge answers only "
                                f"choices and text from a chat. {request.get('message') or ''}",
                           shown=True)]
        self._pending[request_id] = _Pending("elicitation", {})
        self._forms[request_id] = form
        return [QuestionsAsked(request_id=request_id, questions=form_questions(form))]

    def _control_request(self, m: JSON) -> list[AgentEvent]:
        request_id = _required_str(m, "request_id")
        if request_id in self._pending:
            # never an overwrite: the answer to the first request would carry the second's
            raise ProtocolError(
                f"request id {request_id!r} reused while that request is still pending",
                json.dumps(m, ensure_ascii=False))
        request = m["request"]
        subtype = request["subtype"]
        if subtype == "can_use_tool":
            tool = _required_str(request, "tool_name")
            tool_input = request["input"]
            if not isinstance(tool_input, dict):
                raise ProtocolError("can_use_tool input is not an object", json.dumps(m))
            self._pending[request_id] = _Pending(tool, tool_input)
            if tool == ASK_USER_QUESTION:
                return [QuestionsAsked(request_id=request_id,
                                       questions=asked_questions(tool_input, json.dumps(m)),
                                       tool_use_id=request.get("tool_use_id"))]
            event = ApprovalRequested(
                request_id=request_id,
                tool=tool,
                input=tool_input,
                tool_use_id=request.get("tool_use_id"),
                description=request.get("description") or request.get("title"),
                raw=request,
            )
            # a plan is approved, approved with edits accepted, or sent back (bridge.plans)
            return [replace(event, offered=PLAN_DECISIONS) if is_plan(tool) else event]
        if subtype == "elicitation":
            return self._elicitation(request_id, request)
        # hook callbacks and MCP messages were never registered by the bridge: refuse them
        # at once so the agent does not wait for an answer that will never come
        self._write(
            {
                "type": "control_response",
                "response": {
                    "subtype": "error",
                    "request_id": request_id,
                    "error": f"agent-bridge does not handle {subtype}",
                },
            }
        )
        return [Notice(text=f"Refused the agent's control request {subtype}: agent-bridge "
                            "does not handle it.", shown=True)]


def session_rules(tool: str, shown: JSON) -> list[JSON]:
    """`updatedPermissions` for "allow for session": one session rule (never written into
    the user's settings files) that matches exactly the command the person was shown, or
    none. The CLI's own suggestions are not used: they are prefixes (`npm run:*`), modes
    (`acceptEdits`) or whole tools, all broader than the card. A rule's content is a
    pattern to the CLI (`*` is a wildcard, `:*` a prefix, file rules are gitignore globs
    relative to the project), so only a plain Bash command is passed on; for everything
    else the daemon keeps the exact rule and answers the next request itself."""
    command = shown.get("command")
    if tool != "Bash" or not isinstance(command, str) or not command.strip():
        return []
    if any(c in command for c in "*()\\") or "\n" in command:
        return []
    rule: JSON = {"toolName": "Bash", "ruleContent": command}
    return [{"type": "addRules", "rules": [rule], "behavior": "allow", "destination": "session"}]


def _result(m: JSON) -> TurnCompleted:
    is_error = m["is_error"]
    subtype = _required_str(m, "subtype")
    if not isinstance(is_error, bool):
        raise TypeError("is_error is not a boolean")
    terminal = m.get("terminal_reason") or ""
    error = None
    if is_error:
        errors = m.get("errors") or []
        error = "; ".join(str(e) for e in errors) or m.get("result") or subtype
    cost = m.get("total_cost_usd")
    return TurnCompleted(
        is_error=is_error,
        interrupted=terminal.startswith("aborted"),
        result_text=m.get("result"),
        error=error,
        cost_usd=float(cost) if isinstance(cost, int | float) else None,
        duration_ms=m.get("duration_ms"),
        num_turns=m.get("num_turns"),
        agent_session_id=_required_str(m, "session_id"),
    )


def _required_str(m: JSON, key: str) -> str:
    value = m[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} is not a string")
    return value


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [b.get("text", "") for b in content if isinstance(b, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return json.dumps(content)

