"""A grouped approval card (issue 16): what it shows and offers, pure."""

from __future__ import annotations

from dataclasses import replace

from bridge.approvals import Actor, Approval, ApprovalState
from bridge.events import DecisionKind
from bridge.model import SessionView
from bridge.redact import Redactor
from bridge.render import CARD_LIMIT
from bridge.render_batch import BATCH_MOST, batchable, render_batch_card
from bridge.session import SessionState

REDACTOR = Redactor()
TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def session(n: int) -> SessionView:
    return SessionView(id=f"ses{n:03d}", project="api", agent="claude", protocol="claude",
                       cwd="/src/api", state=SessionState.WAITING_APPROVAL, title="t",
                       host="local", created_at=0.0, updated_at=0.0)


def approval(n: int, command: str = "", **kw: object) -> Approval:
    return Approval(id=f"apr{n:03d}", session_id=f"ses{n:03d}", request_id=f"r{n}",
                    tool="Bash", input={"command": command or f"echo {n}"},
                    offered=tuple(DecisionKind), requested_at=0.0, **kw)  # type: ignore[arg-type]


def test_each_pending_entry_has_its_own_allow_and_deny_and_nothing_broader():
    entries = [(approval(n), session(n)) for n in range(3)]
    card = render_batch_card(entries, redactor=REDACTOR)
    assert card.text.startswith("🔐 3 of 3 approvals waiting")
    assert [[b.label for b in row] for row in card.buttons] == [
        [f"Allow once #{k}", f"Deny #{k}"] for k in (1, 2, 3)]
    assert [[b.action.encode() for b in row] for row in card.buttons][1] == [
        "ao:apr001", "dn:apr001"]
    assert "2. ses001 · api · Bash, request apr001\n$ echo 1" in card.text


def test_a_settled_entry_says_how_and_loses_its_buttons():
    settled = replace(approval(1), state=ApprovalState.ALLOWED,
                      decision=DecisionKind.ALLOW_ONCE, decided_at=60.0,
                      decided_by=Actor(surface="telegram", user_id="1", name="@ann").label)
    card = render_batch_card([(approval(0), session(0)), (settled, session(1))],
                             redactor=REDACTOR)
    assert card.text.startswith("🔐 1 of 2 approvals waiting")
    assert "Allowed once by @ann" in card.text
    assert [b.label for row in card.buttons for b in row] == ["Allow once #1", "Deny #1"]


def test_the_most_entries_fit_and_a_secret_is_redacted_before_any_cut():
    long = f"curl -H 'Authorization: token {TOKEN}' https://x/" + "a" * 5000
    entries = [(approval(n, long), session(n)) for n in range(BATCH_MOST)]
    card = render_batch_card(entries, redactor=REDACTOR)
    assert len(card.text) <= CARD_LIMIT
    assert TOKEN[:12] not in card.text
    assert card.text.count("[redacted") == BATCH_MOST
    assert len(card.buttons) == BATCH_MOST


def test_only_a_pending_tool_call_offering_allow_once_and_deny_goes_grouped():
    assert batchable(approval(0))
    assert not batchable(replace(approval(0), tool="ExitPlanMode"))
    assert not batchable(replace(approval(0), offered=(DecisionKind.ALLOW_ONCE,)))
    assert not batchable(replace(approval(0), state=ApprovalState.DENIED))


def test_settled_entries_with_long_reasons_never_push_a_pending_one_off_the_card():
    """Ten of twenty settled, each denied with a long reason: the card still fits without
    a cut, so each button's entry is there to read."""
    entries = []
    for n in range(BATCH_MOST):
        a = approval(n, "echo " + "x" * 400)
        if n % 2:
            a = replace(a, state=ApprovalState.DENIED, decision=DecisionKind.DENY,
                        decided_at=60.0, reason="no: " + "because " * 100,
                        decided_by=Actor(surface="slack", user_id="U1", name="@bo").label)
        entries.append((a, session(n)))
    card = render_batch_card(entries, redactor=REDACTOR)
    assert len(card.text) <= CARD_LIMIT
    assert card.text.rstrip().endswith("agent-bridge show SESSION.")  # nothing was cut
    pending = [a for a, _ in entries if a.state is ApprovalState.PENDING]
    assert len(card.buttons) == len(pending)
    for a in pending:
        assert f"request {a.id}\n$ echo xxx" in card.text
