"""Agent Client Protocol: JSON-RPC 2.0 over the agent's stdio (reference/agent-protocols.md §3).

Theory of operation. The bridge is the ACP *client*. `start()` sends `initialize`; its
answer says what the agent can do, and the session is opened with `session/new`, or, to
resume, `session/resume` when the agent advertises `sessionCapabilities.resume`, else
`session/load` when it advertises `loadSession` (the history that `session/load` replays
is ignored until the load returns), else the turn fails with the reason. The agent is
"ready" (the neutral `ControlAnswered(of="initialize")`) once the session is open.

A prompt is a `session/prompt` request whose answer (`stopReason`) ends the turn; ACP runs
one prompt at a time, so later prompts wait in a queue. Agent text arrives in chunks and is
emitted as one `AssistantText` when a tool call starts, a permission is asked, or the turn
ends. `session/request_permission` becomes an `ApprovalRequested` whose buttons are the
option kinds the agent offers; it is answered with the agent's own `optionId`
(bridge/codecs/acp_permissions.py; a tool call's name, input and output are
bridge/codecs/acp_tools.py). Cancelling
(`session/cancel`) obliges the client to answer every pending permission `cancelled`.
A form elicitation (bridge/codecs/acp_elicitations.py) becomes `QuestionsAsked`, answered
by `AnswerQuestions`. Requests the bridge never advertised (`fs/*`, `terminal/*`) are
refused with -32601.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from bridge.codecs.acp_elicitations import CLIENT_CAPABILITY, ELICITATION_METHODS, AcpForms
from bridge.codecs.acp_permissions import (
    Permission,
    permission_outcome,
    permission_request,
    rejected_notice,
)
from bridge.codecs.acp_tools import tool_input, tool_name, tool_output
from bridge.codecs.jsonrpc import (
    WireId,
    declined_note,
    obj,
    string,
)
from bridge.errors import ApprovalError
from bridge.events import (
    JSON,
    AgentCommand,
    AgentEvent,
    AnswerApproval,
    AnswerQuestions,
    ApprovalWithdrawn,
    AssistantText,
    ControlAnswered,
    DecisionKind,
    Initialize,
    Interrupt,
    Notice,
    PlanUpdated,
    SendPrompt,
    SessionStarted,
    SetMode,
    SetModel,
    SettingsChanged,
    ToolFinished,
    ToolStarted,
    TurnCompleted,
    TurnStarted,
    UnknownEvent,
)
from bridge.framing import DEFAULT_MAX_LINE
from bridge.plans import plan_steps

PROTOCOL_VERSION = 1
CLIENT_INFO: JSON = {"name": "agent-bridge", "title": "agent-bridge", "version": "0.1"}

_QUIET_UPDATES = frozenset(
    {
        "user_message_chunk", "agent_thought_chunk", "available_commands_update",
        "current_mode_update", "config_option_update", "session_info_update",
    }
)  # fmt: skip
_NOTEWORTHY_STOPS = frozenset({"max_tokens", "max_turn_requests", "refusal"})


class AcpCodec(AcpForms):
    def __init__(
        self, *, cwd: str, resume: str | None = None, max_line: int = DEFAULT_MAX_LINE
    ) -> None:
        super().__init__(max_line, jsonrpc_member=True)  # ACP requires it
        self.cwd = cwd
        self.resume = resume
        self._capabilities: JSON | None = None
        self._agent: JSON = {}
        self._opening = False  # initialize or the session request is in flight
        self._loading = False  # session/load replays history: not news
        self._session_id: str | None = None
        self._prompt_id: int | None = None  # the session/prompt that runs
        self._cancel_wanted = False
        self._cancel_sent = False
        self._prompts: deque[SendPrompt] = deque()
        self._pending: dict[str, Permission] = {}
        self._tools: dict[str, JSON] = {}  # toolCallId → the call, merged with its updates
        self._chunks: list[str] = []
        self._turn_text: str | None = None
        self._cost: float | None = None
        self._declined: list[str] = []  # deny reasons the agent has not heard yet
        # what a person chose before the session was open (sent once it is), and what the
        # agent offers (`modes.availableModes`, `models` in the session/new answer)
        self._wanted: list[SetMode | SetModel] = []
        self._modes: set[str] | None = None
        self._models = False
        self._settings: dict[int, SettingsChanged] = {}  # set_mode/set_model in flight

    # -- outgoing -------------------------------------------------------------------

    def start(self, prompt: str | None) -> None:
        self.send(Initialize())
        if prompt is not None:
            self._prompts.append(SendPrompt(text=prompt))

    def send(self, command: AgentCommand) -> None:
        match command:
            case Initialize():
                self._opening = True
                self._request("initialize", {
                    "protocolVersion": PROTOCOL_VERSION,
                    "clientCapabilities": {
                        "fs": {"readTextFile": False, "writeTextFile": False},
                        "terminal": False,
                        "elicitation": CLIENT_CAPABILITY,
                    },
                    "clientInfo": CLIENT_INFO,
                })
            case SendPrompt():
                self._prompts.append(command)
                self._next_prompt()
            case AnswerApproval():
                self._answer(command)
            case AnswerQuestions():
                self._answer_form(command)
            case SetMode() | SetModel():
                if self._session_id is None:
                    self._wanted.append(command)
                else:
                    self._set(command)
            case Interrupt():
                if self._prompt_id is not None:
                    self._cancel()
                elif self._prompts:
                    self._cancel_wanted = True  # cancelled as soon as it is sent

    def pending_requests(self) -> list[str]:
        return [*self._pending, *self._forms]

    def _set(self, command: SetMode | SetModel) -> None:
        """`session/set_mode` (a mode id the agent offered), `session/set_model` where the
        agent offers models; otherwise the person hears that it cannot."""
        assert self._session_id is not None
        if isinstance(command, SetMode):
            if self._modes is not None and command.mode not in self._modes:
                self._later.append(Notice(
                    text=f"the agent offers no mode {command.mode!r} "
                         f"(it offers: {', '.join(sorted(self._modes)) or 'none'})"))
                return
            wire_id = self._request("session/set_mode", {"sessionId": self._session_id,
                                                         "modeId": command.mode})
            self._settings[wire_id] = SettingsChanged(mode=command.mode)
        elif self._models:
            wire_id = self._request("session/set_model", {"sessionId": self._session_id,
                                                          "modelId": command.model})
            self._settings[wire_id] = SettingsChanged(model=command.model)
        else:
            self._later.append(Notice(text="the agent offers no choice of model"))

    def abandon(self) -> None:
        if self._pending or self._forms:
            self._cancel()

    def _open_session(self) -> list[AgentEvent]:
        caps = self._capabilities or {}
        params: JSON = {"cwd": self.cwd, "mcpServers": []}
        if self.resume is None:
            self._request("session/new", params)
        elif isinstance((caps.get("sessionCapabilities") or {}).get("resume"), dict):
            self._request("session/resume", {"sessionId": self.resume, **params})
        elif caps.get("loadSession") is True:
            self._request("session/load", {"sessionId": self.resume, **params})
            self._loading = True
        else:
            self._opening = False
            self._prompts.clear()
            name = self._agent.get("title") or self._agent.get("name") or "the agent"
            return [TurnCompleted(
                is_error=True,
                error=f"{name} cannot resume a session: it offers neither session/resume "
                      "nor session/load")]
        self._opening = True
        return []

    def _next_prompt(self) -> bool:
        """Send the next queued prompt if the session is open and none runs."""
        if self._session_id is None:
            if not self._opening and self._prompts:
                self.send(Initialize())  # opening failed before: a new prompt tries again
            return False
        if self._prompt_id is not None or not self._prompts:
            return False
        blocks = self._blocks(self._prompts.popleft())
        if self._declined:
            blocks.insert(0, {"type": "text", "text": declined_note(self._declined)})
            self._declined.clear()
        self._prompt_id = self._request(
            "session/prompt", {"sessionId": self._session_id, "prompt": blocks}
        )
        self._cancel_sent = False
        self._turn_text = None
        if self._cancel_wanted:
            self._cancel()
        return True

    def _blocks(self, prompt: SendPrompt) -> list[JSON]:
        """A prompt as content blocks: its text, and its images as image blocks where the
        agent said it takes them (`promptCapabilities.image`); else the text, which names
        every image's path, is all it gets."""
        blocks: list[JSON] = [{"type": "text", "text": prompt.text}]
        prompt_caps = (self._capabilities or {}).get("promptCapabilities")
        if isinstance(prompt_caps, dict) and prompt_caps.get("image") is True:
            blocks.extend({"type": "image", "mimeType": image.media_type, "data": image.data}
                          for image in prompt.images)
        return blocks

    def _cancel(self) -> None:
        """`session/cancel`, then `cancelled` for every pending permission (ACP requires it)."""
        self._cancel_wanted = False
        if self._session_id is not None and self._prompt_id is not None and not self._cancel_sent:
            self._cancel_sent = True
            self._notify("session/cancel", {"sessionId": self._session_id})
        for request_id in list(self._pending):
            permission = self._pending.pop(request_id)
            self._reply(permission.wire_id, {"outcome": {"outcome": "cancelled"}})
        self._later.extend(self._cancel_forms())

    def _answer(self, command: AnswerApproval) -> None:
        permission = self._pending.get(command.request_id)
        if permission is None:
            raise ApprovalError(f"the agent no longer waits for request {command.request_id}")
        if command.decision is DecisionKind.STOP:
            self._cancel()  # answers this one `cancelled` too
            return
        del self._pending[command.request_id]
        self._reply(permission.wire_id,
                    permission_outcome(permission, command.decision, command.choice))
        if command.decision is DecisionKind.DENY and command.message:
            self._declined.append(f"{permission.what}: {command.message}")
            self._later.append(rejected_notice(permission, command.message))

    # -- incoming (JsonRpcEndpoint frames and routes; here is what each message means) --

    def _on_notification(self, method: str, params: JSON, m: JSON) -> list[AgentEvent]:
        if method == "session/update":
            return self._update(obj(params["update"], "update"), m)
        return [UnknownEvent(type=method, raw=m)]

    def _on_request(self, wire_id: WireId, method: str, params: JSON) -> list[AgentEvent]:
        if method == "session/request_permission":
            return [*self._flush_text(),
                    permission_request(self._pending, self._tools, wire_id, params)]
        if method in ELICITATION_METHODS:
            return [*self._flush_text(), *self._ask_form(wire_id, params)]
        # fs/* and terminal/* were not advertised; anything else is unknown to us
        self._refuse(wire_id, f"Method not found: {method}")
        return [Notice(text=f"refused agent request {method}: agent-bridge does not handle it",
                       shown=True)]

    def _update(self, update: JSON, m: JSON) -> list[AgentEvent]:
        if self._loading:
            return []  # the history session/load replays, not news
        kind = update["sessionUpdate"]
        if kind == "current_mode_update" and isinstance(update.get("currentModeId"), str):
            return [SettingsChanged(mode=update["currentModeId"])]  # the agent switched
        if kind == "agent_message_chunk":
            content = update.get("content")
            if isinstance(content, dict) and isinstance(content.get("text"), str):
                self._chunks.append(content["text"])
            return []
        if kind == "tool_call":
            call_id = string(update, "toolCallId")
            self._tools[call_id] = dict(update)
            events = [*self._flush_text(),
                      ToolStarted(tool_use_id=call_id, tool=tool_name(update),
                                  input=tool_input(update))]
            return events + self._tool_finished(call_id)
        if kind == "tool_call_update":
            call_id = string(update, "toolCallId")
            call = self._tools.setdefault(call_id, {"toolCallId": call_id})
            call.update({k: v for k, v in update.items() if v is not None})
            return self._tool_finished(call_id)
        if kind == "plan":  # the agent's whole plan as it stands, steps with status
            return [PlanUpdated(steps=plan_steps(update.get("entries"), text_key="content"))]
        if kind == "usage_update":
            cost = update.get("cost")
            if isinstance(cost, dict) and isinstance(cost.get("amount"), int | float):
                self._cost = float(cost["amount"])  # the session's running total
            return []
        if kind in _QUIET_UPDATES:
            return []
        return [UnknownEvent(type=f"session/update/{kind}", raw=m)]

    def _tool_finished(self, call_id: str) -> list[AgentEvent]:
        call = self._tools[call_id]
        status = call.get("status")
        if status not in ("completed", "failed") or call.get("_finished"):
            return []
        call["_finished"] = True
        return [ToolFinished(tool_use_id=call_id, is_error=status == "failed",
                             output=tool_output(call))]

    def _flush_text(self) -> list[AgentEvent]:
        text = "".join(self._chunks)
        self._chunks.clear()
        if not text:
            return []
        self._turn_text = text
        return [AssistantText(text=text)]

    # answers to our requests

    def _on_response(
        self, method: str, wire_id: int, result: Any, error: str | None
    ) -> list[AgentEvent]:
        if method == "initialize":
            if error is not None:
                self._opening = False
                self._prompts.clear()
                return [TurnCompleted(is_error=True, error=f"initialize failed: {error}")]
            result = obj(result, "result")
            self._capabilities = obj(result.get("agentCapabilities") or {}, "agentCapabilities")
            agent = result.get("agentInfo")
            self._agent = agent if isinstance(agent, dict) else {}
            return self._open_session()
        if method in ("session/new", "session/resume", "session/load"):
            self._loading = False
            if error is not None:
                self._opening = False
                self._prompts.clear()
                return [TurnCompleted(is_error=True, error=f"{method} failed: {error}")]
            return self._session_opened(wire_id, method, result)
        if method == "session/prompt":
            return self._prompt_done(result, error)
        if method in ("session/set_mode", "session/set_model"):
            changed = self._settings.pop(wire_id, None)
            if error is not None:
                return [Notice(text=f"{method} refused: {error}")]
            return [changed] if changed is not None else []
        return []

    def _session_opened(self, wire_id: int, method: str, result: Any) -> list[AgentEvent]:
        result = result if isinstance(result, dict) else {}  # session/load answers null
        if method == "session/new":
            self._session_id = string(result, "sessionId")
        else:
            self._session_id = self.resume
        self._opening = False
        models = result.get("models")
        model = models.get("currentModelId") if isinstance(models, dict) else None
        self._models = isinstance(models, dict)
        modes = result.get("modes")
        if isinstance(modes, dict) and isinstance(modes.get("availableModes"), list):
            self._modes = {m["id"] for m in modes["availableModes"]
                           if isinstance(m, dict) and isinstance(m.get("id"), str)}
        current = modes.get("currentModeId") if isinstance(modes, dict) else None
        events: list[AgentEvent] = [
            SessionStarted(
                agent_session_id=str(self._session_id),
                model=model if isinstance(model, str) else None,
                cwd=self.cwd,
                version=self._agent.get("version"),
                mode=current if isinstance(current, str) else None,
            ),
            ControlAnswered(request_id=str(wire_id), ok=True, of="initialize"),
        ]
        wanted, self._wanted = self._wanted, []
        for command in wanted:  # before the first prompt, so that it runs in them
            self._set(command)
        events.extend(self._later)
        self._later.clear()
        if self._next_prompt():
            events.append(TurnStarted())
        return events

    def _prompt_done(self, result: Any, error: str | None) -> list[AgentEvent]:
        events = self._flush_text()
        self._prompt_id = None
        self._cancel_wanted = False
        for request_id in list(self._pending):  # the turn is over: nobody uses these answers
            permission = self._pending.pop(request_id)
            self._reply(permission.wire_id, {"outcome": {"outcome": "cancelled"}})
            events.append(ApprovalWithdrawn(request_id=request_id))
        events.extend(self._cancel_forms())
        if error is not None:
            events.append(TurnCompleted(is_error=True, error=error, cost_usd=self._cost,
                                        agent_session_id=self._session_id))
        else:
            stop = obj(result, "result")["stopReason"]
            if stop in _NOTEWORTHY_STOPS:
                events.append(Notice(text=f"the agent ended the turn: {stop}"))
            events.append(TurnCompleted(
                is_error=False, interrupted=stop == "cancelled", result_text=self._turn_text,
                cost_usd=self._cost, agent_session_id=self._session_id))
        self._tools.clear()
        if self._next_prompt():
            events.append(TurnStarted())
        return events

