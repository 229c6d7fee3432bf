"""Outbox intents and surface references (bridge/outbox.py, bridge/refs.py): plain,
synchronous tests of the encoded form the daemon writes and delivery reads back."""

from __future__ import annotations

import pytest

from bridge.outbox import (
    Intent,
    MalformedIntent,
    OpenThread,
    OutboxKind,
    PostApproval,
    PostDiff,
    PostDigest,
    PostNotice,
    PostQuestion,
    PostSummary,
    PostText,
    RefreshStatus,
    RemindApproval,
    SendFile,
    SetArchived,
    ShowPlan,
    UnknownIntent,
    UpdateApproval,
    UpdateQuestion,
    decode,
    encode,
)
from bridge.refs import (
    DIGEST_LAST,
    ApprovalCardRef,
    MessageRef,
    StatusRef,
    ThreadRef,
    parse_ref,
    session_of,
)

EVERY_INTENT: list[Intent] = [
    OpenThread(),
    RefreshStatus(),
    PostApproval(approval_id="a1"),
    UpdateApproval(approval_id="a1"),
    RemindApproval(approval_id="a1"),
    PostQuestion(question_id="q1"),
    UpdateQuestion(question_id="q1"),
    UpdateQuestion(question_id="q1", toggled=True),
    ShowPlan(key="k1", steps=(("Write it", "completed"), ("Check it", "pending")),
             text="Greeting work"),
    PostSummary(final_text="done", is_error=False, interrupted=True, stopped_by="alice",
                error=None, cost_usd=0.25, duration_ms=1200, num_turns=3),
    PostDiff(),
    SetArchived(archived=True),
    SetArchived(archived=False),
    PostText(text="hello"),
    SendFile(filename="x.bin", data=b"\x00\xffdata", caption="a file"),
    PostDigest(requested=True),
    PostNotice(text="refused agent request fs/read_text_file"),
    PostNotice(text="You've hit your limit", limit=True),
]


@pytest.mark.parametrize("intent", EVERY_INTENT, ids=lambda i: type(i).__name__)
def test_every_intent_survives_its_encoded_form(intent):
    kind, payload = encode(intent)
    assert isinstance(kind, OutboxKind)
    assert decode(str(kind), payload) == intent


def test_every_kind_is_written_by_some_intent():
    assert {encode(i)[0] for i in EVERY_INTENT} == set(OutboxKind)


def test_the_encoded_form_is_the_one_stored_by_earlier_versions():
    assert encode(PostApproval(approval_id="a1")) == ("approval", {"approval_id": "a1"})
    assert encode(SetArchived(archived=False)) == ("unarchived", {})
    assert encode(SendFile(filename="f", data=b"ab", caption="c")) == (
        "file", {"filename": "f", "hex": "6162", "caption": "c"})
    assert encode(PostDigest(requested=False)) == ("digest", {"requested": False})


def test_rows_of_older_versions_decode_with_defaults_and_extra_fields_are_ignored():
    assert decode("summary", {"final_text": "ok"}) == PostSummary(final_text="ok")
    assert decode("summary", {"final_text": "ok", "changes": "old", "new_field": 1}) == \
        PostSummary(final_text="ok")
    assert decode("text", {}) == PostText(text="")
    assert decode("digest", {}) == PostDigest(requested=False)
    assert decode("file", {"filename": "f", "hex": ""}) == SendFile(filename="f", data=b"")
    assert decode("status", {"anything": True}) == RefreshStatus()


def test_an_unknown_kind_is_a_clear_error():
    with pytest.raises(UnknownIntent) as caught:
        decode("hologram", {})
    assert caught.value.kind == "hologram"
    assert "hologram" in str(caught.value)


def test_a_missing_required_field_names_it():
    with pytest.raises(MalformedIntent) as caught:
        decode("approval_reminder", {})
    assert (caught.value.kind, caught.value.field) == ("approval_reminder", "approval_id")


def test_a_field_of_the_wrong_form_is_a_value_error():
    with pytest.raises(ValueError):
        decode("file", {"filename": "x", "hex": "not hex at all"})


# -- surface references -----------------------------------------------------------------


def test_reference_keys_are_the_stored_ones():
    assert ThreadRef(session_id="s1").key == "thread:s1"
    assert StatusRef(session_id="s1").key == "status:s1"
    assert MessageRef(session_id="s1", message="m9").key == "msg:s1/m9"
    assert ApprovalCardRef(approval_id="a1").key == "approval:a1"
    assert DIGEST_LAST.key == "digest:last"


@pytest.mark.parametrize("ref", [
    ThreadRef(session_id="s1"), StatusRef(session_id="s1"),
    MessageRef(session_id="s1", message='{"c": -100, "m": 7}'),
    ApprovalCardRef(approval_id="a1"), DIGEST_LAST,
], ids=lambda r: type(r).__name__)
def test_a_key_parses_back_to_its_reference(ref):
    assert parse_ref(ref.key) == ref


def test_the_session_of_a_key():
    assert session_of("thread:s1") == "s1"
    assert session_of("msg:s1/ref/with/slashes") == "s1"
    assert session_of("status:s1") == "s1"
    assert session_of("approval:a1") is None
    assert session_of("digest:last") is None
    assert parse_ref("nonsense") is None
    assert parse_ref("msg:no-slash") is None
