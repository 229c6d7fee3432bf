"""Evidence on approval cards, pure: what each kind of request shows, the whole request as a
file when the card cannot hold it, redaction before any cut."""

from __future__ import annotations

import json

from bridge.approvals import Approval, ApprovalState
from bridge.codecs.acp_tools import tool_input as acp_input
from bridge.codecs.codex_items import file_change_input
from bridge.events import DecisionKind
from bridge.evidence import request_evidence
from bridge.model import SessionView
from bridge.redact import Redactor
from bridge.render import EVIDENCE_CHARS, render_approval_card
from bridge.render_plans import request_attachment
from bridge.session import SessionState

R = Redactor()
CWD = "/home/dev/api"
GH = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
SESSION = SessionView(id="s1", project="api", agent="claude", protocol="claude", cwd=CWD,
                      host="local", state=SessionState.WAITING_APPROVAL, title="t",
                      created_at=0.0, updated_at=0.0)


def approval(tool: str, tool_input: dict, *, on_disk: dict | None = None,
             cwd: str | None = CWD) -> Approval:
    return Approval(id="a1", session_id="s1", request_id="r1", tool=tool, input=tool_input,
                    offered=tuple(DecisionKind), requested_at=0.0, cwd=cwd, on_disk=on_disk)


def card(tool: str, tool_input: dict, **kw) -> str:
    return render_approval_card(approval(tool, tool_input, **kw), SESSION, redactor=R).text


def labels(tool: str, tool_input: dict) -> list[str]:
    rendered = render_approval_card(approval(tool, tool_input), SESSION, redactor=R)
    return [b.label for row in rendered.buttons for b in row]


def test_an_edit_card_shows_the_replaced_text_as_a_diff():
    text = card("Edit", {"file_path": f"{CWD}/app.py", "old_string": "x = 1\ny = 2\n",
                         "new_string": "x = 1\ny = 3\n"})
    assert f"{CWD}/app.py: replaces" in text
    assert "-y = 2" in text and "+y = 3" in text and " x = 1" in text
    assert "@@ -1,2 +1,2 @@" in text


def test_replace_all_is_said():
    text = card("Edit", {"file_path": "a.py", "old_string": "foo", "new_string": "bar",
                         "replace_all": True})
    assert "replaces (every occurrence)" in text and "-foo" in text and "+bar" in text


def test_a_multi_edit_card_shows_every_edit():
    text = card("MultiEdit", {"file_path": "m.py", "edits": [
        {"old_string": "alpha", "new_string": "beta"},
        {"old_string": "gamma", "new_string": "delta", "replace_all": True}]})
    assert "m.py: 2 edits" in text
    assert "edit 1:" in text and "-alpha" in text and "+beta" in text
    assert "edit 2 (every occurrence):" in text and "-gamma" in text and "+delta" in text


def test_a_write_card_says_new_file_or_overwrite_with_size_and_lines():
    body = {"file_path": f"{CWD}/n.py", "content": "print(1)\nprint(2)\n"}
    new = card("Write", body, on_disk={f"{CWD}/n.py": None})
    assert "new file: 18 bytes, 2 lines" in new and "print(1)\nprint(2)" in new
    over = card("Write", body, on_disk={f"{CWD}/n.py": 4096})
    assert "overwrites the existing file (4.0 KB): 18 bytes, 2 lines" in over
    unknown = card("Write", body)
    assert "whether the file exists was not checked" in unknown


def test_a_codex_patch_lists_every_file_with_its_own_hunks():
    tool_input = file_change_input([
        {"path": f"{CWD}/a.py", "kind": {"type": "update", "move_path": None},
         "diff": "@@ -1 +1 @@\n-old a\n+new a\n"},
        {"path": f"{CWD}/new.py", "kind": {"type": "add"}, "diff": "brand\nnew\n"},
        {"path": f"{CWD}/gone.py", "kind": {"type": "delete"}, "diff": "bye\n"},
    ])
    text = card("Edit", tool_input)
    assert "3 files:" in text
    a, new, gone = (text.index(f"── {CWD}/{n}") for n in ("a.py", "new.py", "gone.py"))
    assert a < text.index("-old a") < text.index("+new a") < new
    assert f"── {CWD}/new.py (new file)" in text
    assert new < text.index("+brand\n+new") < gone  # its content, labelled and in its place
    assert f"── {CWD}/gone.py (deleted)" in text and f"── {CWD}/a.py (modified)" in text
    assert gone < text.index("-bye")


def test_an_acp_edit_lists_every_file_as_a_diff_new_files_labelled():
    call = {"toolCallId": "c1", "kind": "edit", "title": "Edit two files", "content": [
        {"type": "diff", "path": f"{CWD}/x.py", "oldText": "a\nb\n", "newText": "a\nc\n"},
        {"type": "diff", "path": f"{CWD}/y.py", "oldText": None, "newText": "fresh\n"},
    ]}
    tool_input = acp_input(call)
    assert tool_input["diffs"][1]["old_text"] is None
    text = card("Edit", tool_input)
    assert "2 files:" in text
    assert f"── {CWD}/x.py (modified)" in text and "-b" in text and "+c" in text
    assert f"── {CWD}/y.py (new file)" in text and "+fresh" in text


def test_a_command_card_shows_the_cwd_and_the_whole_command():
    command = "pytest -q " + " ".join(f"tests/test_{n}.py" for n in range(150))
    assert len(command) > 2000
    text = card("Bash", {"command": command, "cwd": "/srv/x"}, cwd="/srv/x")
    assert f"$ {command}" in text and "cwd: /srv/x" in text
    assert "Allow for session" in labels("Bash", {"command": command})


def test_any_other_tool_shows_its_input_as_json_with_secrets_redacted():
    text = card("mcp__db__query", {"sql": f"select '{GH}'", "db": "main"})
    assert '"db": "main"' in text and GH not in text and "[redacted]" in text


def test_a_request_too_long_for_the_card_is_cut_and_attached_whole():
    content = "".join(f"row {i}\n" for i in range(2000))
    request = approval("Write", {"file_path": f"{CWD}/big.txt", "content": content},
                       on_disk={f"{CWD}/big.txt": None})
    rendered = render_approval_card(request, SESSION, redactor=R)
    assert "row 0" in rendered.text and "row 1999" not in rendered.text
    assert "the whole request is attached as request-a1.txt" in rendered.text
    assert len(rendered.text) < 4096
    # the rule for the session would cover more than the card shows
    assert "Allow for session" not in [b.label for row in rendered.buttons for b in row]
    attached = request_attachment(request, SESSION, redactor=R)
    assert attached is not None and attached.filename == "request-a1.txt"
    assert "row 1999" in attached.text and "new file" in attached.text
    assert f"cwd: {CWD}" in attached.text
    short = approval("Write", {"file_path": "s.txt", "content": "hi\n"})
    assert request_attachment(short, SESSION, redactor=R) is None


def test_a_secret_across_the_cut_is_redacted_before_the_cut():
    filler = "x" * (EVIDENCE_CHARS - 60)
    content = f"{filler}\ntoken = {GH}\n" + "y\n" * 3000
    text = card("Write", {"file_path": "f.txt", "content": content})
    assert GH[:12] not in text  # not even its beginning survives the cut


def test_a_settled_card_keeps_its_evidence_and_says_who_decided():
    settled = approval("Edit", {"file_path": "a.py", "old_string": "1", "new_string": "2"})
    from dataclasses import replace
    settled = replace(settled, state=ApprovalState.ALLOWED, decision=DecisionKind.ALLOW_ONCE,
                      decided_by="ana", decided_at=0.0)
    text = render_approval_card(settled, SESSION, redactor=R).text
    assert "-1" in text and "+2" in text and "Allowed once by ana" in text


def test_evidence_of_an_unserialisable_input_still_renders():
    text = request_evidence("mcp__x__y", {"value": object()}, redactor=R)
    assert "value" in text
    assert json.loads(request_evidence("mcp__x__y", {"n": 1}, redactor=R)) == {"n": 1}
