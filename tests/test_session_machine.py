import pytest

from bridge.errors import IllegalTransition
from bridge.session import (
    LIVE_STATES,
    RESUMABLE_STATES,
    TRANSITIONS,
    SessionState,
    Trigger,
    apply,
)

S = SessionState
T = Trigger


def test_a_turn_with_an_approval():
    state = S.STARTING
    for trigger, expected in [
        (T.AGENT_READY, S.RUNNING),
        (T.APPROVAL_PENDING, S.WAITING_APPROVAL),
        (T.APPROVAL_PENDING, S.WAITING_APPROVAL),
        (T.APPROVALS_SETTLED, S.RUNNING),
        (T.TURN_ENDED, S.IDLE),
        (T.TURN_STARTED, S.RUNNING),
        (T.TURN_ENDED, S.IDLE),
        (T.EXITED, S.COMPLETED),
        (T.RESUMED, S.STARTING),
    ]:
        state = apply(state, trigger)
        assert state is expected


def test_every_state_has_a_row_and_terminal_states_resume():
    assert set(TRANSITIONS) == set(S)
    for state in RESUMABLE_STATES:
        assert apply(state, T.RESUMED) is S.STARTING
    for state in LIVE_STATES:
        with pytest.raises(IllegalTransition):
            apply(state, T.RESUMED)


def test_illegal_moves_raise_with_both_ends():
    with pytest.raises(IllegalTransition) as info:
        apply(S.COMPLETED, T.APPROVAL_PENDING)
    assert info.value.current == "completed"
    assert info.value.target == "approval_pending"


def test_a_stopped_session_is_not_revived_by_what_the_agent_says_while_closing():
    for trigger in (T.AGENT_READY, T.TURN_STARTED, T.APPROVAL_PENDING, T.TURN_ENDED, T.EXITED,
                    T.CRASHED, T.TURN_FAILED):
        assert apply(S.STOPPED, trigger) is S.STOPPED


def test_exiting_while_an_approval_waits_is_a_failure_not_a_completion():
    assert apply(S.WAITING_APPROVAL, T.EXITED) is S.FAILED
    assert apply(S.WAITING_APPROVAL, T.CRASHED) is S.FAILED


def test_a_failed_turn_can_be_continued_in_the_same_process():
    assert apply(apply(S.RUNNING, T.TURN_FAILED), T.TURN_STARTED) is S.RUNNING
