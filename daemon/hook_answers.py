"""What a terminal session's hook answers (daemon/terminal.py), drawn from what the session
machine would have sent the agent: an approval's decision or a question's answers, in the
shape `agent-bridge hook` prints for Claude Code and Codex (daemon/hook.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.events import AnswerApproval, AnswerQuestions, DecisionKind
from bridge.facts import Facts


@dataclass(frozen=True, slots=True)
class HookAnswer:
    """What the hook prints: allow, deny (with the message the model gets), or nothing."""

    behavior: str | None  # "allow", "deny", or None: no decision, the terminal asks
    message: str | None = None
    updated_input: dict[str, Any] | None = None  # a question's answers (Claude only)

    def json(self) -> dict[str, Any]:
        return {"behavior": self.behavior, "message": self.message,
                "updated_input": self.updated_input}


NO_DECISION = HookAnswer(None)


def hook_answer(command: AnswerApproval, facts: Facts) -> HookAnswer:
    """An approval's decision as the hook says it. "Allow for session" is kept by the
    daemon as a rule (the agents' own permission rules are not touched: Codex refuses them)."""
    match command.decision:
        case DecisionKind.ALLOW_ONCE | DecisionKind.ALLOW_SESSION:
            return HookAnswer("allow")
        case _:
            who = next((a.decided_by for a in facts.settled if a.decided_by), "someone")
            return HookAnswer("deny", command.message or f"Denied from agent-bridge by {who}.")


def questions_answer(asked: dict[str, Any], command: AnswerQuestions) -> HookAnswer:
    """As the Claude codec answers AskUserQuestion: the input asked plus `answers` (question
    text → the chosen labels joined by ", "); no answers: the input as asked."""
    updated = dict(asked)
    if command.answers:
        updated["answers"] = {key: ", ".join(chosen) for key, chosen in command.answers.items()}
    return HookAnswer("allow", updated_input=updated)
