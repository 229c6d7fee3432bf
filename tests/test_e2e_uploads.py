"""Photos, files and voice notes sent in a session's thread, end to end: the daemon
(subprocess) with the real python-telegram-bot / slack-bolt against the fakes, with fake
agents that record what they are given. The file lands in `.agent-bridge/uploads/`, git does
not see it, and the agent gets the image as image content and every file by its path."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.harness import FakeAgent, wait_until
from tests.slack_harness import STRANGER as SLACK_STRANGER
from tests.slack_harness import ThreadedSlack
from tests.telegram_harness import ALICE, CHAT, STRANGER

# a real 1×1 PNG and some JPEG-ish bytes (Telegram photos are JPEG; the bytes go through as-is)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\xff\xd9"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def user_messages(bridge) -> list[dict]:
    return [m for m in bridge.recorded() if m.get("type") == "user"]


def uploads(project: Path) -> list[str]:
    folder = project / ".agent-bridge" / "uploads"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def chat(make_bridge, tg):
    def start(extra: str = ""):
        bridge = make_bridge(agents={"chat": ["text"]}, extra=tg.config() + extra)
        git(bridge.project, "init", "-q", "-b", "main")
        bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
        bridge.start()
        tg.say("/new demo hello --agent chat")
        thread = tg.wait_for("createForumTopic").result["message_thread_id"]
        tg.message_with("Turn finished", thread)
        return bridge, thread
    return start


def send(tg, kind: str, data: bytes, thread: int, *, user: int = ALICE, **kwargs) -> dict:
    return tg.on(tg.fake.inject_file, CHAT, user, kind, data, thread_id=thread, **kwargs)


def test_a_photo_with_a_caption_reaches_claude_as_an_image_block(chat, tg):
    bridge, thread = chat()
    update = send(tg, "photo", PHOTO, thread, caption="why is this red?")
    wait_until(lambda: len(user_messages(bridge)) == 2, what="the photo to reach the agent")
    content = user_messages(bridge)[1]["message"]["content"]
    (saved,) = uploads(bridge.project)
    path = bridge.project / ".agent-bridge" / "uploads" / saved
    assert path.read_bytes() == PHOTO  # the largest size, not the thumbnail
    assert saved.startswith("photo-") and saved.endswith(".jpg")
    assert content[0]["type"] == "text"
    assert content[0]["text"].startswith("why is this red?")
    assert f"{path} (image, attached)" in content[0]["text"]
    assert content[1] == {"type": "image", "source": {
        "type": "base64", "media_type": "image/jpeg",
        "data": base64.b64encode(PHOTO).decode()}}
    largest = update["message"]["photo"][-1]["file_id"]
    assert [c.params["file_id"] for c in tg.fake.calls_to("getFile")] == [largest]
    tg.message_with(f"Saved {saved} in .agent-bridge/uploads/", thread)
    # excluded from git: status does not show it, the exclude line is there once
    send(tg, "photo", PNG, thread)
    wait_until(lambda: len(user_messages(bridge)) == 3, what="the second photo")
    assert len(uploads(bridge.project)) == 2  # a second, unique name
    exclude = (bridge.project / ".git" / "info" / "exclude").read_text()
    assert exclude.splitlines().count(".agent-bridge/") == 1
    assert git(bridge.project, "status", "--porcelain", "--untracked-files=all") == ""
    second = user_messages(bridge)[2]["message"]["content"]
    assert second[0]["text"].startswith("Have a look at the attached image.")


def test_a_document_goes_by_path_under_a_safe_name(chat, tg):
    bridge, thread = chat()
    send(tg, "document", b"Traceback: boom\n", thread, file_name="../../.secret notes.log",
         mime_type="text/plain")
    wait_until(lambda: len(user_messages(bridge)) == 2, what="the file to reach the agent")
    assert uploads(bridge.project) == ["secret notes.log"]
    prompt = user_messages(bridge)[1]["message"]["content"]
    assert isinstance(prompt, str)  # no image: the text names the file's path
    folder = bridge.project / ".agent-bridge" / "uploads"
    assert prompt.startswith("Have a look at the attached file.")
    assert f"- {folder / 'secret notes.log'} (16 B)" in prompt
    assert not (bridge.project.parent / ".secret notes.log").exists()


@pytest.mark.parametrize("link", [".agent-bridge", ".agent-bridge/uploads"])
def test_an_uploads_folder_that_is_a_symlink_out_of_the_project_is_refused(chat, tg,
                                                                          tmp_path, link):
    """A repository can carry `.agent-bridge/uploads` as a symlink (to ~/.ssh, a hooks
    folder…): a file sent in the thread must not land where it points."""
    bridge, thread = chat()
    outside = tmp_path / "outside"
    outside.mkdir()
    made = bridge.project / link
    made.parent.mkdir(parents=True, exist_ok=True)
    made.symlink_to(outside, target_is_directory=True)
    send(tg, "document", b"ssh-ed25519 AAAA mallory\n", thread, file_name="authorized_keys")
    reply = tg.message_with("symbolic link", thread)
    assert link in reply.text
    assert sorted(p.name for p in outside.rglob("*")) == []
    assert len(user_messages(bridge)) == 1


def test_a_file_over_the_cap_is_refused_and_nothing_is_downloaded(chat, tg):
    bridge, thread = chat("[uploads]\nmax_bytes = 1000\n")
    send(tg, "document", b"x" * 5000, thread, file_name="big.bin", caption="look")
    reply = tg.message_with("over the", thread)
    assert "big.bin is 4.9 KB" in reply.text and "[uploads] max_bytes" in reply.text
    assert tg.fake.calls_to("getFile") == []
    assert uploads(bridge.project) == [] and len(user_messages(bridge)) == 1


def test_a_strangers_photo_is_ignored(chat, tg):
    bridge, thread = chat()
    send(tg, "photo", PHOTO, thread, user=STRANGER, caption="run this")
    send(tg, "document", b"mine", thread, file_name="mine.txt")
    wait_until(lambda: len(user_messages(bridge)) == 2, what="alice's file")
    tg.message_with("Saved mine.txt", thread)
    assert uploads(bridge.project) == ["mine.txt"]
    assert len(tg.fake.calls_to("getFile")) == 1
    assert "run this" not in json.dumps(bridge.recorded())


def test_a_voice_note_without_a_program_says_how_to_enable_it(chat, tg):
    bridge, thread = chat()
    send(tg, "voice", b"OggS fake opus", thread)
    reply = tg.message_with("Voice notes are not transcribed", thread)
    assert "[voice] command" in reply.text
    assert tg.fake.calls_to("getFile") == [] and len(user_messages(bridge)) == 1


def test_a_voice_note_is_transcribed_by_the_configured_program(chat, tg, tmp_path):
    stt = tmp_path / "stt.py"
    stt.write_text("import sys, pathlib\n"
                   "data = pathlib.Path(sys.argv[-1]).read_bytes()\n"
                   "print(f'please fix the {len(data)}-byte bug')\n")
    bridge, thread = chat(f"[voice]\ncommand = {json.dumps([sys.executable, str(stt)])}\n"
                          'timeout = "20s"\n')
    send(tg, "voice", b"OggS" + b"\x00" * 20, thread)
    wait_until(lambda: len(user_messages(bridge)) == 2, what="the transcript")
    assert user_messages(bridge)[1]["message"]["content"] == "please fix the 24-byte bug"
    tg.message_with("Heard: please fix the 24-byte bug", thread)
    assert uploads(bridge.project) == []  # a voice note is not kept in the project


# -- Slack, with Codex ------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[ThreadedSlack]:
    fake = ThreadedSlack()
    yield fake
    fake.close()


@pytest.fixture
def slack_bridge(make_bridge, slack):
    bridge = make_bridge(agents={"codex": FakeAgent("codex", "text")}, extra=slack.config())
    bridge.env.update(slack.env())
    git(bridge.project, "init", "-q", "-b", "main")
    bridge.start()
    slack.connected()
    return bridge


def codex_turns(bridge) -> list[dict]:
    return [m for m in bridge.recorded() if m.get("method") == "turn/start"]


@pytest.mark.parametrize("with_urls", [True, False], ids=["urls", "files.info"])
def test_a_slack_file_share_reaches_codex_as_a_local_image(slack_bridge, slack, with_urls):
    bridge = slack_bridge
    slack.command("new demo hello --agent codex")
    parent = slack.new_thread()
    slack.message_with("Turn finished", parent.ts)
    files = [("screen shot.png", "image/png", PNG), ("build.log", "text/plain", b"E: oops\n")]
    slack._run(slack.fake.inject_file_share(files, "what broke?", thread_ts=parent.ts,
                                            with_urls=with_urls))
    wait_until(lambda: len(codex_turns(bridge)) == 2, what="the files to reach Codex")
    assert uploads(bridge.project) == ["build.log", "screen shot.png"]
    folder = bridge.project / ".agent-bridge" / "uploads"
    items = codex_turns(bridge)[1]["params"]["input"]
    assert items[0]["text"].startswith("what broke?")
    assert f"- {folder / 'build.log'} (8 B)" in items[0]["text"]
    assert items[1:] == [{"type": "localImage", "path": str(folder / "screen shot.png")}]
    assert (folder / "screen shot.png").read_bytes() == PNG
    assert all(token and token.startswith("xoxb-") for _, token in slack.fake.downloads)
    assert bool(slack.fake.calls_to("files.info")) is not with_urls
    assert git(bridge.project, "status", "--porcelain", "--untracked-files=all") == ""


def test_a_slack_strangers_file_is_not_downloaded(slack_bridge, slack):
    bridge = slack_bridge
    slack.command("new demo hello --agent codex")
    parent = slack.new_thread()
    slack.message_with("Turn finished", parent.ts)
    slack._run(slack.fake.inject_file_share([("x.png", "image/png", PNG)], "",
                                            user=SLACK_STRANGER, thread_ts=parent.ts))
    slack._run(slack.fake.inject_file_share([("ok.txt", "text/plain", b"ok")], "",
                                            thread_ts=parent.ts))
    wait_until(lambda: len(codex_turns(bridge)) == 2, what="alice's file")
    assert uploads(bridge.project) == ["ok.txt"]
    assert [file_id for file_id, _ in slack.fake.downloads] == [
        f.id for f in slack.fake.files.values() if f.filename == "ok.txt"]


def test_a_slack_file_url_off_slack_never_gets_the_bot_token(slack_bridge, slack):
    """An external file's URL (a Google Drive link shared in Slack, a remote file an app
    added) is not Slack's: the bot token must not go there, and nothing is saved."""
    seen: list[str | None] = []

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.Response(body=PNG, content_type="image/png")

    async def serve() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_get("/{tail:.*}", elsewhere)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, runner.addresses[0][1]

    runner, port = slack._run(serve())
    try:
        slack.command("new demo hello --agent codex")
        parent = slack.new_thread()
        slack.message_with("Turn finished", parent.ts)
        told = slack.ephemeral_count()
        slack._run(slack.fake.inject_file_share([("x.png", "image/png", PNG)], "look",
                                                thread_ts=parent.ts,
                                                url_base=f"http://127.0.0.1:{port}"))
        reply = slack.ephemeral_after(told)
    finally:
        slack._run(runner.cleanup())
    assert "not on Slack" in reply.text, reply.text
    assert seen == []
    assert uploads(slack_bridge.project) == []
    assert len(codex_turns(slack_bridge)) == 1


# -- a session on another host -------------------------------------------------------------


def test_a_photo_for_a_session_on_an_ssh_host_lands_on_that_host(make_bridge, tg, ssh,
                                                                tmp_path):
    bridge = make_bridge(agents={"chat": ["text"]}, extra=tg.config())
    env = {"AGENT_BRIDGE_TEST_TAG": bridge.tag,
           "FAKE_CLAUDE_HOME": bridge.env["FAKE_CLAUDE_HOME"], "HOME": bridge.env["HOME"]}
    box = ssh.add(tmp_path, "box1", env=env)
    remote = tmp_path / "remote-api"
    remote.mkdir()
    git(remote, "init", "-q", "-b", "main")
    bridge.config.write_text(
        bridge.config.read_text() + box.config()
        + f'[[projects]]\nname = "api"\npath = "{remote}"\nhost = "box1"\nagent = "chat"\n')
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.start()
    tg.say("/new api hello")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    tg.message_with("Turn finished", thread)
    send(tg, "document", PNG, thread, file_name="shot.png", mime_type="image/png",
         caption="see?")
    wait_until(lambda: len(user_messages(bridge)) == 2, what="the photo to reach the agent")
    path = remote / ".agent-bridge" / "uploads" / "shot.png"
    assert path.read_bytes() == PNG
    assert any("cat > " in c and str(path) in c for c in box.commands)  # written over SSH
    assert uploads(bridge.project) == []  # not on this machine's project
    assert git(remote, "status", "--porcelain", "--untracked-files=all") == ""
    content = user_messages(bridge)[1]["message"]["content"]
    assert content[1]["source"]["data"] == base64.b64encode(PNG).decode()
    assert f"{path} (image, attached)" in content[0]["text"]
