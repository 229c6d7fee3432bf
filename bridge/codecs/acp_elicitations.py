"""ACP elicitations: an agent asks the person to fill a form (the protocol's unstable
`session/create_elicitation`, earlier `elicitation/create`), sent only to a client that
advertised `clientCapabilities.elicitation.form`. A form is the same MCP-style schema as
Claude's and Codex's elicitations (bridge/codecs/elicitation.py): enum fields become option
buttons, text fields a reply; a companion `<name>_custom` text field is the choice's
"Other…" (claude-agent-acp asks AskUserQuestion that way). The answer is `{"action":
"accept", "content": …}`; a form that cannot be answered from a chat is declined with a
notice, and one nobody answered is `cancel` (never a made-up answer).
"""

from __future__ import annotations

from bridge.codecs.elicitation import Form, form_of, form_questions, form_response
from bridge.codecs.jsonrpc import JsonRpcEndpoint, WireId
from bridge.errors import ApprovalError
from bridge.events import (
    JSON,
    AgentEvent,
    AnswerQuestions,
    ApprovalWithdrawn,
    Notice,
    QuestionsAsked,
)

ELICITATION_METHODS = frozenset({"session/create_elicitation", "elicitation/create"})
CLIENT_CAPABILITY: JSON = {"form": {}}  # url mode would need the person to open a link


def elicitation_asked(params: JSON, request_id: str) -> tuple[Form | None, JSON | None,
                                                              list[AgentEvent]]:
    """(the form to keep, or None; the reply to send at once, or None; the events)."""
    message = str(params.get("message") or "")
    form = form_of("the agent", message, params.get("mode"), params.get("requestedSchema"),
                   companions=True)
    if isinstance(form, str):
        return None, {"action": "decline"}, [Notice(
            text=f"Declined {form} from the agent: agent-bridge answers only choices and "
                 f"text from a chat. {message}")]
    call = params.get("toolCallId")
    return form, None, [QuestionsAsked(request_id=request_id, questions=form_questions(form),
                                       tool_use_id=call if isinstance(call, str) else None)]


class AcpForms(JsonRpcEndpoint):
    """The ACP codec's base: the forms an agent asked and waits for, by request id."""

    def __init__(self, max_line: int, *, jsonrpc_member: bool) -> None:
        super().__init__(max_line, jsonrpc_member=jsonrpc_member)
        self._forms: dict[str, tuple[WireId, Form]] = {}

    def _ask_form(self, wire_id: WireId, params: JSON) -> list[AgentEvent]:
        form, reply, events = elicitation_asked(params, str(wire_id))
        if form is not None:
            self._forms[str(wire_id)] = (wire_id, form)
        if reply is not None:
            self._reply(wire_id, reply)
        return events

    def _answer_form(self, command: AnswerQuestions) -> None:
        asked = self._forms.pop(command.request_id, None)
        if asked is None:
            raise ApprovalError(f"the agent no longer waits for request {command.request_id}")
        self._reply(asked[0], form_response(asked[1], command.answers))

    def _cancel_forms(self) -> list[AgentEvent]:
        """Every form still asked answered `cancel` (nobody answered it); withdrawn."""
        events: list[AgentEvent] = []
        for request_id, (wire_id, _) in self._forms.items():
            self._reply(wire_id, {"action": "cancel"})
            events.append(ApprovalWithdrawn(request_id=request_id))
        self._forms.clear()
        return events
