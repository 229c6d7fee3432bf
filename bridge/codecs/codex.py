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
per question) answered by `AnswerQuestions`. Every other server request is refused at once,
so that nothing the agent waits on is left unanswered. `serverRequest/resolved` for a
request still pending means Codex no longer waits for it (interrupt): `ApprovalWithdrawn`.
All of that is the base class, bridge/codecs/codex_requests.py; the items of a turn become
tool events in bridge/codecs/codex_items.py. The `jsonrpc` member is accepted when present
and never sent (the app-server omits it on the wire).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from typing import Any

from bridge.codecs.codex_items import (
    QUIET,
    REMEMBERED,
    last_message,
    tool_finished,
    tool_started,
    usage,
    version_of,
)
from bridge.codecs.codex_requests import CodexServerRequests
from bridge.codecs.jsonrpc import declined_note, error_text, obj, string
from bridge.codecs.limits import codex_limit_error, codex_rate_limits
from bridge.events import (
    JSON,
    AgentCommand,
    AgentEvent,
    AnswerApproval,
    AnswerQuestions,
    AssistantText,
    ControlAnswered,
    Initialize,
    Interrupt,
    Notice,
    PlanUpdated,
    SendPrompt,
    SessionStarted,
    SetMode,
    SetModel,
    TurnCompleted,
    TurnStarted,
    UnknownEvent,
)
from bridge.framing import DEFAULT_MAX_LINE
from bridge.modes import codex_turn_settings
from bridge.plans import plan_steps

CLIENT_INFO: JSON = {"name": "agent-bridge", "title": "agent-bridge", "version": "0.1"}


def codex_argv(command: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    """The argv that runs the app-server. No resume flag: resuming is `thread/resume`."""
    return [*command, *extra]


def resume_hint(agent_session_id: str) -> str:
    return f"codex resume {agent_session_id}"


class CodexCodec(CodexServerRequests):
    def __init__(
        self,
        *,
        cwd: str,
        approval_policy: str = "on-request",
        sandbox: str = "workspace-write",
        resume: str | None = None,
        max_line: int = DEFAULT_MAX_LINE,
    ) -> None:
        super().__init__(cwd=cwd, max_line=max_line)
        self.approval_policy = approval_policy
        self.sandbox = sandbox
        self.resume = resume
        self._open_id: int | None = None  # the thread/start or thread/resume in flight
        self._thread_id: str | None = None
        self._version: str | None = None
        self._turn_busy = False  # a turn/start was sent and its turn/completed is not in
        self._turn_id: str | None = None
        self._interrupt_wanted = False
        self._prompts: deque[SendPrompt] = deque()
        self._turn_text: str | None = None
        self._turn_error: str | None = None
        # per-turn settings a person chose (None: as the thread was opened); the model the
        # thread runs, which Codex's collaboration mode must name
        self._mode: str | None = None
        self._model: str | None = None
        self._thread_model: str | None = None
        self._steers: dict[int, SendPrompt] = {}  # turn/steer in flight → its prompt

    # -- outgoing -------------------------------------------------------------------

    def start(self, prompt: str | None) -> None:
        self.send(Initialize())
        self._open_thread()
        if prompt is not None:
            self._prompts.append(SendPrompt(text=prompt))

    def send(self, command: AgentCommand) -> None:
        match command:
            case Initialize():
                self._request(
                    "initialize",
                    {"clientInfo": CLIENT_INFO, "capabilities": {"experimentalApi": True}},
                )
                self._notify("initialized")
            case SendPrompt():
                if not self._steer(command):
                    self._prompts.append(command)
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

    def _steer(self, prompt: SendPrompt) -> bool:
        """Add `prompt` to the running turn; False when no turn runs that can take it."""
        if not self.steers or self._prompts:
            return False
        wire_id = self._request("turn/steer", {"threadId": self._thread_id,
                                               "expectedTurnId": self._turn_id,
                                               "input": _inputs(prompt)})
        self._steers[wire_id] = prompt
        return True

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
        items = _inputs(self._prompts.popleft())
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

    # -- incoming (JsonRpcEndpoint frames and routes; here is what each message means) --

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
        if method == "turn/plan/updated":  # the model's update_plan: steps with status
            explanation = params.get("explanation")
            return [PlanUpdated(steps=plan_steps(params.get("plan"), text_key="step"),
                                text=explanation if isinstance(explanation, str) else None)]
        if method == "serverRequest/resolved":
            return self._resolved(params)
        if method == "error":
            error = params.get("error")
            text = error_text(error)
            if params.get("willRetry"):
                return [Notice(text=f"Codex error, retrying: {text}")]
            self._turn_error = text
            limited = codex_limit_error(error)
            return [limited] if limited is not None else []
        if method == "account/rateLimits/updated":
            limits = codex_rate_limits(params)
            return [limits] if limits is not None else []
        if method == "thread/status/changed":
            status = params.get("status")
            if isinstance(status, dict) and status.get("type") == "systemError":
                return [Notice(text="Codex reports a system error on the thread")]
            return []
        if method == "thread/tokenUsage/updated":
            return usage(params.get("tokenUsage"))
        if method in ("thread/closed", "model/rerouted"):
            return [Notice(text=f"{method}: {json.dumps(params)[:500]}")]
        if method in QUIET or method.endswith(("Delta", "/delta")):
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
            limited = codex_limit_error(turn.get("error"))
            if limited is not None:
                events.append(limited)
        elif self._turn_error:
            events.append(Notice(text=f"Codex reported an error: {self._turn_error}"))
        duration = turn.get("durationMs")
        events.append(
            TurnCompleted(
                is_error=failed,
                interrupted=status == "interrupted",
                result_text=self._turn_text or last_message(turn.get("items")),
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
        if kind in REMEMBERED:
            self._items[item_id] = item
        started = tool_started(kind, item_id, item, self.cwd)
        return [started] if started is not None else []

    def _item_completed(self, item: JSON) -> list[AgentEvent]:
        kind = item["type"]
        item_id = string(item, "id")
        self._items.pop(item_id, None)
        if kind == "agentMessage":
            text = item.get("text")
            if not isinstance(text, str) or not text:
                return []
            self._turn_text = text
            return [AssistantText(text=text)]
        if kind == "plan":  # the plan a plan-mode turn proposes, as Markdown
            text = item.get("text")
            plan = text.strip() if isinstance(text, str) else ""
            return [PlanUpdated(text=plan)] if plan else []
        finished = tool_finished(kind, item_id, item)
        return [finished] if finished is not None else []

    # answers to our requests

    def _on_response(
        self, method: str, wire_id: int, result: Any, error: str | None
    ) -> list[AgentEvent]:
        if error is not None:
            return self._request_failed(method, wire_id, error)
        if method == "initialize":
            self._version = version_of(obj(result, "result").get("userAgent"))
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
            prompt = self._steers.pop(wire_id, None)
            if prompt is not None:
                self._prompts.append(prompt)
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



def _text_input(text: str) -> JSON:
    return {"type": "text", "text": text, "text_elements": []}


def _inputs(prompt: SendPrompt) -> list[JSON]:
    """A prompt as `UserInput` items: its text, then each image by its path on the agent's
    host (`localImage`: Codex reads the file itself)."""
    return [_text_input(prompt.text),
            *({"type": "localImage", "path": image.path} for image in prompt.images)]
