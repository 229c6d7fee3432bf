"""Evidence and turn diffs with the REAL Claude Code (the version pinned in
tests/real_agents/package.json) against the mock model API: an Edit card shows the text it
replaces, a Write card says it makes a new file, and each turn's diff is its own change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.model_api import (
    ExecCommand,
    ModelRequest,
    Reply,
    Text,
    ThreadedModelAPI,
    ToolUse,
    tool_then_finish,
    write,
)
from tests.fakes.telegram_api import StoredMessage
from tests.real_binaries import CLAUDE, CODEX, START, use_real_claude, use_real_codex
from tests.telegram_harness import ALICE
from tests.test_e2e_changes import make_repo

pytestmark = pytest.mark.real_agents


@pytest.fixture
def model() -> Iterator[ThreadedModelAPI]:
    api = ThreadedModelAPI()
    yield api
    api.close()
    assert not api.api.errors, api.api.errors


@pytest.fixture
def claude_binary() -> Path:
    return CLAUDE.require()


def private_chat(make_bridge, tg, model, binary):
    # a private chat: a group's 20 messages a minute would pace a two-turn story too slowly
    bridge = make_bridge(extra=tg.config(chat=ALICE))
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    make_repo(bridge.project)
    use_real_claude(bridge, binary, model.base_url)
    bridge.start()
    return bridge


def texts(tg, needle: str) -> list[StoredMessage]:
    return [m for m in tg.messages(chat=ALICE) if needle in (m.text or "")]


def wait_count(tg, needle: str, n: int) -> list[StoredMessage]:
    tg.wait_until(lambda: len(texts(tg, needle)) >= n, timeout=START)
    return texts(tg, needle)


def allow(tg, card: StoredMessage) -> None:
    tg.tap(card, f"ao:{card.callback_data[0].split(':')[1]}")


def test_an_edit_card_from_the_real_claude_shows_the_replaced_text(make_bridge, tg, model,
                                                                   claude_binary):
    bridge = private_chat(make_bridge, tg, model, claude_binary)
    target = bridge.project / "app.py"  # make_repo's: "line 0\n" … "line 49\n"

    def script(request: ModelRequest) -> Reply:
        # the real Edit tool refuses a file it has not read: Read, then Edit, then finish
        done = len(request.tool_results())
        if done == 0:
            return ToolUse(name="Read", input={"file_path": str(target)})
        if done == 1:
            return ToolUse(name="Edit", input={"file_path": str(target),
                                               "old_string": "line 7\nline 8\n",
                                               "new_string": "line 7\nline eight\n"})
        return Text(text="Edited.")

    model.script = script
    tg.say("/new demo please edit app.py", chat=ALICE)
    card = wait_count(tg, "Approval needed", 1)[0]
    assert f"{target}: replaces" in card.text
    assert "-line 8" in card.text and "+line eight" in card.text
    assert " line 7" in card.text  # context around the change
    allow(tg, card)
    wait_count(tg, "Turn finished", 1)
    assert "line eight\n" in target.read_text() and "line 8\n" not in target.read_text()


def test_two_real_turns_each_attach_only_their_own_change(make_bridge, tg, model,
                                                          claude_binary):
    bridge = private_chat(make_bridge, tg, model, claude_binary)

    def script(request: ModelRequest) -> Reply:
        if request.tool_results():
            return Text(text="Written.")
        latest = request.prompts()[-1]
        name = "second.txt" if "second" in latest else "first.txt"
        return write(str(bridge.project / name), f"from the {name[:-4]} turn\n")

    model.script = script
    tg.say("/new demo write the first file", chat=ALICE)
    card = wait_count(tg, "Approval needed", 1)[0]
    assert "new file: 20 bytes, 1 line" in card.text  # the daemon looked: none there
    allow(tg, card)
    first = wait_count(tg, "Turn finished", 1)[0]
    assert "This turn (turn 1): 1 file changed, +1" in first.text
    tg.on(tg.fake.inject_message, ALICE, ALICE, "now write the second file",
          reply_to_message_id=first.message_id)
    allow(tg, wait_count(tg, "Approval needed", 2)[-1])
    second = wait_count(tg, "Turn finished", 2)[-1]
    assert "This turn (turn 2): 1 file changed, +1" in second.text
    assert "Since the session started: 2 files changed, +2 −0" in second.text
    diffs = [m.text or "" for m in wait_count(tg, "diff --git", 2)]
    assert "first.txt" in diffs[0] and "second.txt" not in diffs[0]
    assert "+from the second turn" in diffs[1] and "first.txt" not in diffs[1]
    assert (bridge.project / "second.txt").read_text() == "from the second turn\n"


PATCH = """apply_patch <<'EOF'
*** Begin Patch
*** Update File: app.py
@@
 line 2
-line 3
+line three
 line 4
*** Add File: brand_new.py
+print("brand new")
+print("second line")
*** Delete File: README.md
*** End Patch
EOF
"""


def test_a_real_codex_patch_card_lists_every_file_with_its_hunks(make_bridge, tg, model):
    binary = CODEX.require()
    bridge = make_bridge(extra=tg.config(chat=ALICE))
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    make_repo(bridge.project)
    use_real_codex(bridge, binary, model.base_url)
    bridge.start()
    model.script = tool_then_finish(ExecCommand(cmd=PATCH))
    tg.say("/new demo patch three files --agent codex", chat=ALICE)
    card = wait_count(tg, "Approval needed", 1)[0]
    text = card.text
    assert "3 files:" in text
    sections = {part.split(" ", 1)[0].rsplit("/", 1)[-1]: part
                for part in text.split("── ")[1:]}  # each file's own part of the card
    assert set(sections) == {"app.py", "brand_new.py", "README.md"}
    assert "(modified)" in sections["app.py"]
    assert "-line 3\n+line three" in sections["app.py"]
    assert "(new file)" in sections["brand_new.py"]
    assert '+print("brand new")\n+print("second line")' in sections["brand_new.py"]
    assert "(deleted)" in sections["README.md"] and "-# demo" in sections["README.md"]
    assert "line three" not in sections["brand_new.py"] + sections["README.md"]
    allow(tg, card)
    wait_count(tg, "Turn finished", 1)
    assert (bridge.project / "brand_new.py").exists()
    assert not (bridge.project / "README.md").exists()
