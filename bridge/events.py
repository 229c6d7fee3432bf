"""Agent-neutral events (agent → daemon) and commands (daemon → agent).

Every codec turns its wire messages into these events and these commands into its wire
messages, so the supervisor, the store and the surfaces never see an agent's protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

JSON = dict[str, Any]


class DecisionKind(StrEnum):
    """What a person decided on an approval card (also the button verbs)."""

    ALLOW_ONCE = "allow_once"
    ALLOW_SESSION = "allow_session"
    ACCEPT_EDITS = "accept_edits"  # a plan approved, and the session's edits accepted
    DENY = "deny"
    STOP = "stop"


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStarted:
    """The agent announced its session (Claude `system/init`, Codex thread, ACP session)."""

    agent_session_id: str
    model: str | None = None
    cwd: str | None = None
    version: str | None = None
    mode: str | None = None  # the permission mode it runs in, where it says


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingsChanged:
    """The agent runs (or, for Codex, will run its next turn) in this mode or with this
    model: what a `SetMode`/`SetModel` was answered with, or what the agent announced."""

    mode: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AssistantText:
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolStarted:
    tool_use_id: str
    tool: str
    input: JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolFinished:
    tool_use_id: str
    is_error: bool
    output: str
    exit_code: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentChoice:
    """One of the agent's own ways to allow a request (ACP's permission options on a plan:
    "Yes, and auto-accept edits", …): shown with the agent's label, answered with its id."""

    id: str
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequested:
    """The agent waits for a yes or no. `request_id` is the agent's own id for the request."""

    request_id: str
    tool: str
    input: JSON
    tool_use_id: str | None = None
    description: str | None = None
    cwd: str | None = None
    offered: tuple[DecisionKind, ...] = (
        DecisionKind.ALLOW_ONCE,
        DecisionKind.ALLOW_SESSION,
        DecisionKind.DENY,
        DecisionKind.STOP,
    )
    # the agent's own ways to allow it, each a button of its own (a choice is an allow once
    # that names the option); empty: the card's buttons are `offered`'s
    choices: tuple[AgentChoice, ...] = ()
    raw: JSON = field(default_factory=dict)
    # filled in by the daemon when it arrives: each file a Write would create or overwrite
    # → the size of the file there now, or None when there is none (see `Approval.on_disk`)
    on_disk: dict[str, int | None] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QuestionOption:
    label: str
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AskedQuestion:
    """One question as an agent asks it, in no agent's words. `key` is what the agent's
    answer is keyed by (Claude: the question text; Codex: the question's id)."""

    key: str
    text: str
    header: str | None = None
    options: tuple[QuestionOption, ...] = ()
    multi_select: bool = False
    is_other: bool = False  # a free-text answer is accepted besides the options
    is_secret: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class QuestionsAsked:
    """The agent waits for a person's answers to `questions` (Claude AskUserQuestion).
    Not an approval: it is answered with labels, never allowed or denied."""

    request_id: str
    questions: tuple[AskedQuestion, ...]
    tool_use_id: str | None = None


class StepStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanStep:
    text: str
    status: StepStatus = StepStatus.PENDING


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanUpdated:
    """The agent's plan as it stands: its steps with their status (Codex
    `turn/plan/updated`, ACP `plan` updates) and/or its text (a Codex `plan` item). Shown,
    never answered: a plan that waits for approval is an `ApprovalRequested`."""

    steps: tuple[PlanStep, ...] = ()
    text: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalWithdrawn:
    """The agent no longer waits for this request (Claude `control_cancel_request`)."""

    request_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnStarted:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnCompleted:
    is_error: bool
    interrupted: bool = False
    result_text: str | None = None
    error: str | None = None
    cost_usd: float | None = None
    duration_ms: int | None = None
    num_turns: int | None = None
    agent_session_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageUpdated:
    """The session's running token totals (agents that report tokens rather than a cost)."""

    total_tokens: int
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlAnswered:
    """The agent answered a control request the daemon sent (e.g. initialize, interrupt)."""

    request_id: str
    ok: bool
    error: str | None = None
    of: str | None = None  # what the answered request was ("initialize", "interrupt")


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    """Something worth keeping in the transcript that changes nothing (stray output, logs).
    `shown`: people must see it in the session's thread (a request the bridge refused, a
    reason that could not travel with a deny), not only in the transcript."""

    text: str
    shown: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageLimit:
    """The agent's account limit as it reports it (Claude `rate_limit_event`, Codex
    `account/rateLimits/updated` and its usage-limit errors). `hit`: its requests are refused
    until `resets_at` (epoch seconds, None when it does not say); `warning`: close to it.
    Neither: the limit allows work again."""

    hit: bool = False
    warning: bool = False
    resets_at: float | None = None
    limit: str | None = None  # which limit, in the agent's words ("five_hour", "primary")
    text: str | None = None  # what the agent said about it, when it said something


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent:
    """A well-formed message of a type this codec does not know: stored, otherwise ignored."""

    type: str
    raw: JSON


AgentEvent = (
    SessionStarted
    | SettingsChanged
    | AssistantText
    | ToolStarted
    | ToolFinished
    | ApprovalRequested
    | ApprovalWithdrawn
    | QuestionsAsked
    | PlanUpdated
    | TurnStarted
    | TurnCompleted
    | UsageUpdated
    | ControlAnswered
    | Notice
    | UsageLimit
    | UnknownEvent
)


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True, kw_only=True)
class Initialize:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageInput:
    """An image given with a prompt: where it was saved on the agent's host (`path`), its
    media type, and its bytes in base64 (`data`) for the protocols that carry them inline."""

    path: str
    media_type: str
    data: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SendPrompt:
    text: str
    images: tuple[ImageInput, ...] = ()  # the text names their paths too


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerApproval:
    """Answer the agent's request `request_id`. `message` is the reason given on a deny.

    `input` is the tool input the person was shown (the stored approval's): where the
    protocol echoes an input back with an allow (Claude's `updatedInput`), it is this one,
    never what the codec last heard under this id."""

    request_id: str
    decision: DecisionKind
    message: str | None = None
    input: JSON | None = None
    choice: str | None = None  # the id of the agent's own option the person chose


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerQuestions:
    """Answer the agent's questions request `request_id`: question key → the chosen labels
    (or the one free-text answer). An empty mapping says the user did not answer."""

    request_id: str
    answers: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Interrupt:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMode:
    """Run in permission mode `mode` (a `bridge.modes.Mode` value) from now on."""

    mode: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetModel:
    """Use the model `model` from now on (the next turn, where the agent switches per turn)."""

    model: str


AgentCommand = (
    Initialize | SendPrompt | AnswerApproval | AnswerQuestions | Interrupt | SetMode | SetModel
)


def event_kind(event: AgentEvent) -> str:
    """The stable name an event is stored under."""
    return _KINDS[type(event)]


_KINDS: dict[type, str] = {
    SessionStarted: "session_started",
    SettingsChanged: "settings_changed",
    AssistantText: "assistant_text",
    ToolStarted: "tool_started",
    ToolFinished: "tool_finished",
    ApprovalRequested: "approval_requested",
    ApprovalWithdrawn: "approval_withdrawn",
    QuestionsAsked: "questions_asked",
    PlanUpdated: "plan_updated",
    TurnStarted: "turn_started",
    TurnCompleted: "turn_completed",
    UsageUpdated: "usage",
    ControlAnswered: "control_answered",
    Notice: "notice",
    UsageLimit: "usage_limit",
    UnknownEvent: "unknown",
}
