"""Files sent in a thread, the pure part: safe names, image types, the prompt, and how each
codec puts images on the wire (Claude image blocks, Codex `localImage`, ACP image blocks
only where the agent advertised them)."""

import json

import pytest

from bridge.codecs.acp import AcpCodec
from bridge.codecs.claude import ClaudeCodec
from bridge.codecs.codex import CodexCodec
from bridge.config import load_config
from bridge.errors import ConfigError
from bridge.events import ImageInput, SendPrompt
from bridge.surface import FileKind
from bridge.uploads import (
    DEFAULT_IMAGE_PROMPT,
    DEFAULT_PROMPT,
    MAX_NAME,
    SavedFile,
    fallback_name,
    image_type,
    safe_name,
    too_big,
    upload_prompt,
)

IMAGE = ImageInput(path="/w/.agent-bridge/uploads/shot.png", media_type="image/png",
                   data="iVBORw0KGgo=")


@pytest.mark.parametrize(("name", "expected"), [
    ("report.pdf", "report.pdf"),
    ("../../etc/passwd", "passwd"),
    ("..\\..\\Windows\\win.ini", "win.ini"),
    (".bashrc", "bashrc"),
    ("...", "fallback.bin"),
    ("", "fallback.bin"),
    ("/", "fallback.bin"),
    ("-rf", "rf"),
    ("a\x00b\nc.txt", "a_b_c.txt"),
    ("résumé 2026 (final).docx", "résumé 2026 (final).docx"),
    ("$(rm -rf ~).sh", "(rm -rf _).sh"),
    ("name.with.dots.tar.gz", "name.with.dots.tar.gz"),
])
def test_safe_names_have_no_separators_no_leading_dot_and_no_control_characters(name, expected):
    got = safe_name(name, taken=set(), fallback="fallback.bin")
    assert got == expected
    assert "/" not in got and "\\" not in got and not got.startswith((".", "-"))


def test_safe_names_are_unique_and_keep_the_suffix():
    taken = {"shot.png", "shot-2.png"}
    assert safe_name("shot.png", taken=taken, fallback="x") == "shot-3.png"
    assert safe_name("README", taken={"README"}, fallback="x") == "README-2"


def test_a_long_name_is_cut_keeping_its_suffix():
    got = safe_name("a" * 500 + ".log", taken=set(), fallback="x")
    assert len(got) == MAX_NAME and got.endswith(".log")
    again = safe_name("a" * 500 + ".log", taken={got}, fallback="x")
    assert len(again) == MAX_NAME and again.endswith("-2.log") and again != got


def test_image_types_by_declared_type_suffix_and_telegram_photos():
    assert image_type(FileKind.IMAGE, "", "") == "image/jpeg"  # a Telegram photo
    assert image_type(FileKind.IMAGE, "x.png", "image/png") == "image/png"
    assert image_type(FileKind.DOCUMENT, "x.PNG", "application/octet-stream") == "image/png"
    assert image_type(FileKind.DOCUMENT, "x.png", "text/plain") is None
    assert image_type(FileKind.IMAGE, "x.svg", "image/svg+xml") is None  # not readable inline
    assert image_type(FileKind.DOCUMENT, "log.txt", "text/plain") is None
    assert image_type(FileKind.VOICE, "v.ogg", "audio/ogg") is None
    assert fallback_name(FileKind.IMAGE, "image/jpeg", "s1-1") == "photo-s1-1.jpg"
    assert fallback_name(FileKind.VOICE, None, "s1-2") == "voice-s1-2.ogg"


def test_the_caption_is_the_prompt_and_every_file_is_named_by_its_path():
    shot = SavedFile(path="/w/.agent-bridge/uploads/shot.png", name="shot.png",
                     media_type="image/png", size=10)
    log = SavedFile(path="/w/.agent-bridge/uploads/build.log", name="build.log",
                    media_type="text/plain", size=2048)
    text = upload_prompt("why does this fail?", [shot, log])
    assert text.startswith("why does this fail?\n")
    assert "- /w/.agent-bridge/uploads/shot.png (image, attached)" in text
    assert "- /w/.agent-bridge/uploads/build.log (2.0 KB)" in text
    assert upload_prompt("  ", [shot]).startswith(DEFAULT_IMAGE_PROMPT)
    assert upload_prompt("", [shot, log]).startswith(DEFAULT_PROMPT)
    refusal = too_big("huge.zip", 30 * 1024 * 1024, 20 * 1024 * 1024)
    assert "huge.zip is 30.0 MB" in refusal and "20.0 MB" in refusal
    assert "[uploads] max_bytes" in refusal and "nothing was sent" in refusal


def test_config_keys_for_uploads_and_voice():
    config = load_config('[uploads]\nmax_bytes = 1000\n[voice]\ncommand = ["stt", "-f"]\n'
                         'timeout = "30s"\n')
    assert config.uploads.max_bytes == 1000
    assert config.voice.command == ["stt", "-f"] and config.voice.timeout == 30
    with pytest.raises(ConfigError) as caught:
        load_config("[uploads]\nmax_bytes = 0\n")
    assert caught.value.key == "uploads.max_bytes"
    with pytest.raises(ConfigError) as caught:
        load_config('[voice]\ncommand = "stt"\n')
    assert caught.value.key == "voice.command"


def lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.splitlines()]


def test_claude_gets_the_text_then_base64_image_blocks():
    codec = ClaudeCodec()
    codec.send(SendPrompt(text="look", images=(IMAGE,)))
    (user,) = lines(codec.data_to_send())
    assert user["message"]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "iVBORw0KGgo="}}]
    codec.send(SendPrompt(text="plain"))
    assert lines(codec.data_to_send())[0]["message"]["content"] == "plain"  # as before


def test_codex_gets_local_images_on_turn_start_and_on_steer():
    codec = CodexCodec(cwd="/w")
    codec.start(None)
    start = lines(codec.data_to_send())[-1]
    codec.receive(json.dumps({"id": start["id"], "result": {"thread": {"id": "t1"}}}).encode()
                  + b"\n")
    codec.data_to_send()
    codec.send(SendPrompt(text="look", images=(IMAGE,)))
    (turn,) = lines(codec.data_to_send())
    assert turn["method"] == "turn/start"
    assert turn["params"]["input"] == [
        {"type": "text", "text": "look", "text_elements": []},
        {"type": "localImage", "path": IMAGE.path}]
    codec.receive(json.dumps({"method": "turn/started", "params": {
        "threadId": "t1", "turn": {"id": "u1", "status": "inProgress"}}}).encode() + b"\n")
    codec.send(SendPrompt(text="and this", images=(IMAGE,)))
    (steer,) = lines(codec.data_to_send())
    assert steer["method"] == "turn/steer"
    assert steer["params"]["input"][1] == {"type": "localImage", "path": IMAGE.path}


def acp_prompt(image_capable: bool) -> dict:
    codec = AcpCodec(cwd="/w")
    codec.start(None)
    codec.data_to_send()
    caps = {"promptCapabilities": {"image": image_capable, "audio": False}}
    codec.receive(json.dumps({"jsonrpc": "2.0", "id": 0, "result": {
        "protocolVersion": 1, "agentCapabilities": caps}}).encode() + b"\n")
    codec.receive(json.dumps({"jsonrpc": "2.0", "id": 1, "result": {
        "sessionId": "s1"}}).encode() + b"\n")
    codec.data_to_send()
    codec.send(SendPrompt(text=f"look at {IMAGE.path}", images=(IMAGE,)))
    (prompt,) = lines(codec.data_to_send())
    assert prompt["method"] == "session/prompt"
    return prompt


def test_acp_sends_image_blocks_only_to_an_agent_that_takes_them():
    blocks = acp_prompt(True)["params"]["prompt"]
    assert blocks == [{"type": "text", "text": f"look at {IMAGE.path}"},
                      {"type": "image", "mimeType": "image/png", "data": "iVBORw0KGgo="}]
    blocks = acp_prompt(False)["params"]["prompt"]
    assert blocks == [{"type": "text", "text": f"look at {IMAGE.path}"}]  # by path only
