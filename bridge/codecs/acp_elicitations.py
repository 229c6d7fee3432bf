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

from bridge.codecs.elicitation import Form, form_of, form_questions
from bridge.events import JSON, AgentEvent, Notice, QuestionsAsked

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
