"""Evidence and turn diffs end to end, through the fake Telegram with fake agents: a Write
card says whether it overwrites (the daemon looked), a long request goes whole as a file,
and each turn's diff attachment is that turn's own change."""

from __future__ import annotations

import pytest

from tests.fakes.telegram_api import StoredMessage
from tests.harness import FakeAgent
from tests.telegram_harness import ALICE
from tests.test_e2e_changes import git, make_repo

SECRET = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


@pytest.fixture
def chat(make_bridge, tg):
    bridge = make_bridge(agents={"turns": ["write_each_turn"], "writer": ["write"]},
                         extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    make_repo(bridge.project)
    bridge.start()
    return bridge


def allow(tg, card) -> None:
    tg.tap(card, f"ao:{card.callback_data[0].split(':')[1]}")


def documents(tg, name: str):
    return [d for d in tg.on(lambda: list(tg.fake.documents.values())) if d.file_name == name]


def test_a_write_card_says_whether_it_creates_or_overwrites(chat, tg):
    bridge = chat
    (bridge.project / "hello.py").write_text("old = 1\n" * 40)  # 320 bytes there already
    tg.say("/new demo write hello --agent writer")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    card = tg.message_with("Approval needed", thread)
    assert "overwrites the existing file (320 bytes)" in card.text
    assert "print('hi')" in card.text and "12 bytes, 1 line" in card.text
    allow(tg, card)
    tg.message_with("Turn finished", thread)
    # turn 1 of another session: the file is not there, and the card says so
    (bridge.project / "turn-1.txt").unlink(missing_ok=True)
    tg.say("/new demo write --agent turns")
    thread2 = tg.wait_for("createForumTopic", lambda c: c.result["message_thread_id"] != thread
                          ).result["message_thread_id"]
    card = tg.message_with("Approval needed", thread2)
    assert "new file: 18 bytes, 1 line" in card.text and "written in turn 1" in card.text


def test_each_turn_attaches_its_own_change_and_diff_turn_gives_one(make_bridge, tg):
    # a private chat: a group's 20 messages a minute would pace this story past the test's
    # patience (two turns, their cards, summaries and diffs, and /diff)
    bridge = make_bridge(agents={"turns": ["write_each_turn"]}, extra=tg.config(chat=ALICE))
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    make_repo(bridge.project)
    bridge.start()

    def texts(needle: str) -> list[StoredMessage]:
        return [m for m in tg.messages(chat=ALICE) if needle in (m.text or "")]

    def wait_count(needle: str, n: int) -> list[StoredMessage]:
        tg.wait_until(lambda: len(texts(needle)) >= n, timeout=30)
        return texts(needle)

    tg.say("/new demo write --agent turns", chat=ALICE)
    allow(tg, wait_count("Approval needed", 1)[0])
    first = wait_count("Turn finished", 1)[0]
    assert "This turn (turn 1): 1 file changed, +1" in first.text
    sid = bridge.json("sessions")[0]["id"]
    tg.on(tg.fake.inject_message, ALICE, ALICE, "once more",
          reply_to_message_id=first.message_id)
    allow(tg, wait_count("Approval needed", 2)[-1])
    second = wait_count("Turn finished", 2)[-1]
    assert "This turn (turn 2): 1 file changed, +1" in second.text
    assert "Since the session started: 2 files changed, +2 −0" in second.text
    # the diffs go inline when small: the second holds only turn 2's file
    inline = [m.text or "" for m in wait_count("diff --git", 2)]
    assert "turn-1.txt" in inline[0] and "turn-2.txt" not in inline[0]
    assert "turn-2.txt" in inline[1] and "turn-1.txt" not in inline[1]
    # /diff ID turn 1: that turn alone
    tg.say(f"/diff {sid} turn 1", chat=ALICE)
    wait_count(f"Diff of {sid} (demo@main), turn 1 alone", 1)
    third = [m.text or "" for m in wait_count("diff --git", 3)][-1]
    assert "turn-1.txt" in third and "turn-2.txt" not in third
    tg.say(f"/diff {sid} turn 7", chat=ALICE)
    wait_count("has had 2 turn(s)", 1)
    # the CLI: --turn N, and the whole diff without it
    one = bridge.json("diff", sid, "--turn", "2")
    assert [f["path"] for f in one["files"]] == ["turn-2.txt"] and one["turn"] == 2
    assert "+written in turn 2" in one["diff"]
    whole = bridge.json("diff", sid)
    assert sorted(f["path"] for f in whole["files"]) == ["turn-1.txt", "turn-2.txt"]
    refused = bridge.cli("diff", sid, "--turn", "3", check=False)
    assert refused.returncode != 0 and "from 1 to 2" in refused.stderr
    # a change made after a turn ended is not that turn's
    (bridge.project / "README.md").write_text("# demo\nedited by hand\n")
    assert [f["path"] for f in bridge.json("diff", sid, "--turn", "1")["files"]] == [
        "turn-1.txt"]
    assert git(bridge.project, "status", "--porcelain").count("\n") == 3  # untouched


def test_a_request_too_long_for_its_card_goes_whole_as_a_file(make_bridge, tg):
    bridge = make_bridge(agents={"big": ["big_write"]}, extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.start()
    tg.say("/new demo write a big file --agent big")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    card = tg.message_with("Approval needed", thread)
    assert "new file" in card.text and "line 0 of the new content" in card.text
    assert "line 399" not in card.text
    assert "the whole request is attached as request-" in card.text
    assert "Allow once" in str(card.callback_data) or card.callback_data
    tg.wait_until(lambda: any((d.file_name or "").startswith("request-")
                              for d in tg.on(lambda: list(tg.fake.documents.values()))))
    (document,) = [d for d in tg.on(lambda: list(tg.fake.documents.values()))
                   if (d.file_name or "").startswith("request-")]
    text = document.data.decode()
    assert "line 399 of the new content" in text and "cwd: " in text
    assert SECRET not in text and "[redacted]" in text


def test_an_acp_edit_card_lists_each_file_as_a_diff(make_bridge, tg):
    bridge = make_bridge(agents={"acp": FakeAgent(protocol="acp", scenario="edit")},
                         extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    make_repo(bridge.project)
    bridge.start()
    tg.say("/new demo edit two files --agent acp")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    card = tg.message_with("Approval needed", thread)
    sections = {part.split(" ", 1)[0].rsplit("/", 1)[-1]: part
                for part in card.text.split("── ")[1:]}
    assert set(sections) == {"app.py", "fresh.py"}
    assert "(modified)" in sections["app.py"] and "-line 3\n+line three" in sections["app.py"]
    assert "(new file)" in sections["fresh.py"] and "+print('fresh')" in sections["fresh.py"]
    allow(tg, card)
    tg.message_with("Turn finished", thread)
    assert (bridge.project / "fresh.py").read_text() == "print('fresh')\n"
