"""The session state machine.

Theory of operation: the supervisor never sets a state; it reports what happened (a
`Trigger`) and `apply()` looks the move up in `TRANSITIONS`. A move that is not in the
table is a bug somewhere and raises `IllegalTransition` instead of silently corrupting
what the user sees. `archived` is a flag on the session, not a state: an archived
session keeps the state it had.

    starting ──ready/turn──► running ◄──settled── waiting_approval
        │                      │  ▲                     ▲
        │                      │  └──turn── idle        │
        │                      └──approval──────────────┘
        ▼                      ▼
    completed / failed / stopped / disconnected ──resumed──► starting
"""

from __future__ import annotations

from enum import StrEnum

from bridge.errors import IllegalTransition


class SessionState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    IDLE = "idle"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"
    DISCONNECTED = "disconnected"


class Trigger(StrEnum):
    AGENT_READY = "agent_ready"  # the agent announced its session
    TURN_STARTED = "turn_started"  # a prompt was sent or the agent is producing output
    APPROVAL_PENDING = "approval_pending"
    APPROVALS_SETTLED = "approvals_settled"  # no approval is pending any more
    TURN_ENDED = "turn_ended"
    TURN_FAILED = "turn_failed"
    EXITED = "exited"  # the process ended cleanly (stdin closed by us, exit 0)
    CRASHED = "crashed"  # the process died, or broke the protocol
    STOPPED = "stopped"  # a person stopped the session
    RESUMED = "resumed"  # a new process continues the agent's session
    DISCONNECTED = "disconnected"  # the host the agent runs on is unreachable


S = SessionState
T = Trigger

_ACTIVE_EXITS: dict[Trigger, SessionState] = {
    T.TURN_FAILED: S.FAILED,
    T.EXITED: S.COMPLETED,
    T.CRASHED: S.FAILED,
    T.STOPPED: S.STOPPED,
    T.DISCONNECTED: S.DISCONNECTED,
}

TRANSITIONS: dict[SessionState, dict[Trigger, SessionState]] = {
    S.STARTING: {
        T.AGENT_READY: S.RUNNING,
        T.TURN_STARTED: S.RUNNING,
        T.APPROVAL_PENDING: S.WAITING_APPROVAL,
        T.TURN_ENDED: S.IDLE,
        **_ACTIVE_EXITS,
    },
    S.RUNNING: {
        T.AGENT_READY: S.RUNNING,
        T.TURN_STARTED: S.RUNNING,
        T.APPROVAL_PENDING: S.WAITING_APPROVAL,
        T.APPROVALS_SETTLED: S.RUNNING,
        T.TURN_ENDED: S.IDLE,
        **_ACTIVE_EXITS,
    },
    S.WAITING_APPROVAL: {
        T.AGENT_READY: S.WAITING_APPROVAL,
        T.TURN_STARTED: S.WAITING_APPROVAL,
        T.APPROVAL_PENDING: S.WAITING_APPROVAL,
        T.APPROVALS_SETTLED: S.RUNNING,
        T.TURN_ENDED: S.IDLE,
        **_ACTIVE_EXITS,
        T.EXITED: S.FAILED,  # exiting while the agent waits on a person is not a clean end
    },
    S.IDLE: {
        T.AGENT_READY: S.RUNNING,
        T.TURN_STARTED: S.RUNNING,
        T.APPROVAL_PENDING: S.WAITING_APPROVAL,
        T.APPROVALS_SETTLED: S.IDLE,
        T.TURN_ENDED: S.IDLE,
        **_ACTIVE_EXITS,
    },
    S.COMPLETED: {
        T.RESUMED: S.STARTING,
        T.EXITED: S.COMPLETED,
        T.STOPPED: S.COMPLETED,
        T.APPROVALS_SETTLED: S.COMPLETED,
    },
    S.FAILED: {
        T.RESUMED: S.STARTING,
        # an error result leaves the process alive: a reply starts a new turn in it
        T.TURN_STARTED: S.RUNNING,
        T.AGENT_READY: S.RUNNING,
        T.APPROVAL_PENDING: S.WAITING_APPROVAL,
        T.TURN_ENDED: S.IDLE,
        T.TURN_FAILED: S.FAILED,
        T.EXITED: S.FAILED,
        T.CRASHED: S.FAILED,
        T.STOPPED: S.STOPPED,
        T.DISCONNECTED: S.DISCONNECTED,  # its host dropped while it waited for a reply
        T.APPROVALS_SETTLED: S.FAILED,
    },
    S.STOPPED: {
        T.RESUMED: S.STARTING,
        # what the agent says while it is being shut down does not revive the session
        T.AGENT_READY: S.STOPPED,
        T.TURN_STARTED: S.STOPPED,
        T.APPROVAL_PENDING: S.STOPPED,
        T.APPROVALS_SETTLED: S.STOPPED,
        T.TURN_ENDED: S.STOPPED,
        T.TURN_FAILED: S.STOPPED,
        T.EXITED: S.STOPPED,
        T.CRASHED: S.STOPPED,
        T.STOPPED: S.STOPPED,
    },
    S.DISCONNECTED: {
        T.RESUMED: S.STARTING,
        T.STOPPED: S.STOPPED,
        T.EXITED: S.DISCONNECTED,
        T.CRASHED: S.DISCONNECTED,
        T.DISCONNECTED: S.DISCONNECTED,
        T.APPROVALS_SETTLED: S.DISCONNECTED,
    },
}

#: states in which an agent process may be attached
LIVE_STATES = frozenset({S.STARTING, S.RUNNING, S.WAITING_APPROVAL, S.IDLE})
#: states a session can be resumed from
RESUMABLE_STATES = frozenset({S.COMPLETED, S.FAILED, S.STOPPED, S.DISCONNECTED})


#: states in which a turn is in progress: the agent works, or waits on a person
TURN_STATES = frozenset({S.STARTING, S.RUNNING, S.WAITING_APPROVAL})


def closed_under(during: SessionState, cause: str) -> tuple[Trigger, str | None]:
    """How a session ends whose agent we closed, without a person asking, while it was
    `during`: the daemon stopped (cleanly: the agent is closed at shutdown; or not: the
    session is found live after a restart), or the idle timeout fired as a turn began.

    A turn in progress did not complete, whatever the agent does once its approvals are
    refused and its input closed: it crashed, the reason saying how to continue. A session
    at rest exited, with nothing to say. The trigger applies to the state the session has
    by then (a refused approval may have ended its turn meanwhile)."""
    if during in TURN_STATES:
        return T.CRASHED, (f"{cause} while this session was "
                           f"{during.value.replace('_', ' ')}; resume to continue")
    return T.EXITED, None


#: the cause `closed_under` gives when the daemon stopped
DAEMON_STOPPED = "the daemon stopped"


def apply(current: SessionState, trigger: Trigger) -> SessionState:
    """The state after `trigger` in `current`; raises `IllegalTransition` if not allowed."""
    try:
        return TRANSITIONS[current][trigger]
    except KeyError:
        raise IllegalTransition("session", current.value, trigger.value) from None
