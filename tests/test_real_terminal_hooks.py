"""Conformance: the REAL Claude Code and Codex in their interactive terminal UIs (under tmux),
with the hooks `agent-bridge hooks install` wrote, against the mock model API and the real
daemon with the fake Telegram. A person at a terminal started them; the phone answers.

- away: the permission request is a card in a "terminal · …" thread; the tap runs the command,
  and the turn's end posts the summary there;
- not away: the terminal shows its own dialog;
- daemon down: the terminal shows its own dialog within 1 s of the model's tool call.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.model_api import (
    ANTHROPIC,
    OPENAI,
    ExecCommand,
    ModelRequest,
    Reply,
    Script,
    Text,
    ThreadedModelAPI,
    bash,
    tool_then_finish,
)
from tests.harness import Bridge, wait_until
from tests.real_binaries import CLAUDE, CODEX, CODEX_CONFIG, START, use_real_claude
from tests.test_real_claude_plans import PLAN, planner
from tests.test_real_claude_questions import DB, ask
from tests.test_terminal_hooks import git_project

pytestmark = pytest.mark.real_agents

CLAUDE_DIALOG = "Do you want to proceed?"
CODEX_DIALOG = "Would you like to run the following command?"


class Terminal:
    """One tmux server of its own, running one command in a pane."""

    def __init__(self, bridge: Bridge) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is needed for the terminal-UI tests: apt-get install tmux")
        self.bridge = bridge
        self.name = f"ab-{bridge.tag[:12]}"

    def start(self, env: dict[str, str], argv: list[str], cwd: Path) -> None:
        script = self.bridge.tmp / f"{self.name}.sh"
        exports = "".join(f"export {k}={_q(v)}\n" for k, v in env.items())
        script.write_text(f"{exports}cd {_q(str(cwd))}\nexec {' '.join(map(_q, argv))}\n")
        subprocess.run(["tmux", "-L", self.name, "new-session", "-d", "-x", "160", "-y", "50",
                        f"bash {_q(str(script))}"], check=True, env=self.bridge.env, timeout=30)

    def screen(self) -> str:
        result = subprocess.run(["tmux", "-L", self.name, "capture-pane", "-p"],
                                capture_output=True, text=True, timeout=30)
        return result.stdout

    def wait_for(self, text: str, timeout: float = START) -> str:
        try:
            return wait_until(lambda: text in (s := self.screen()) and s, timeout=timeout,
                              interval=0.01, what=f"{text!r} in the terminal")
        except AssertionError as e:
            raise AssertionError(f"{e}\nscreen:\n{self.screen()}\ndaemon log:\n"
                                 f"{self.bridge.log_text()[-1500:]}") from None

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-L", self.name, "send-keys", *keys], check=True, timeout=30)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.name, "kill-server"], capture_output=True,
                       timeout=30)


def _q(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@pytest.fixture
def model(request) -> Iterator[ThreadedModelAPI]:
    api = ThreadedModelAPI()
    yield api
    api.close()


@pytest.fixture
def chat(make_bridge, tg) -> Bridge:
    bridge = make_bridge(extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    git_project(bridge)
    return bridge


@pytest.fixture
def terminal(chat) -> Iterator[Terminal]:
    term = Terminal(chat)
    yield term
    term.close()


# -- Claude Code ---------------------------------------------------------------------------------


def claude_in_terminal(chat: Bridge, model: ThreadedModelAPI, terminal: Terminal, *,
                       script: Script | None = None, args: tuple[str, ...] = (
                           "--permission-mode", "default"),
                       config_dir: Path | None = None) -> Path:
    """Install the hooks into a private Claude config (as `hooks install` does for a person),
    then start `claude` in its terminal UI with a prompt that makes the model run `touch`
    (or what `script` says)."""
    binary = CLAUDE.require()
    made = chat.project / "made-by-claude"
    model.script = script or tool_then_finish(bash(f"touch {made}"))
    config_dir = config_dir or chat.tmp / "claude-tui"
    config_dir.mkdir(exist_ok=True)
    # what a person's first run leaves behind: onboarding done, the folder trusted, the key
    # approved (the terminal UI would otherwise ask, and try the vendor's hosts)
    (config_dir / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "theme": "dark",
        "customApiKeyResponses": {"approved": ["sk-ant-dummy"], "rejected": []},
        "projects": {str(chat.project): {"hasTrustDialogAccepted": True}},
    }))
    chat.env["CLAUDE_CONFIG_DIR"] = str(config_dir)
    installed = chat.cli("hooks", "install", "--claude", "--yes")
    assert "PermissionRequest" in installed.stdout
    env = {
        "ANTHROPIC_BASE_URL": model.base_url, "ANTHROPIC_API_KEY": "sk-ant-dummy",
        "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0", "CLAUDE_CONFIG_DIR": str(config_dir),
        "HOME": chat.env["HOME"], "AGENT_BRIDGE_TEST_TAG": chat.tag,
        "PATH": chat.env["PATH"], "TERM": "xterm-256color",
    }
    terminal.start(env, [str(binary), *args, "make a file"], chat.project)
    return made


def test_claude_away_the_tap_on_the_phone_runs_the_command(chat, tg, model, terminal):
    chat.start()
    chat.cli("away", "on")
    made = claude_in_terminal(chat, model, terminal)
    topic = tg.wait_for("createForumTopic", timeout=START)
    assert "terminal · " in topic.params["name"] and "project@main" in topic.params["name"]
    thread = topic.result["message_thread_id"]
    card = tg.message_with("Approval needed", thread, timeout=START)
    assert f"touch {made}" in card.text
    assert not made.exists()
    # Claude Code shows its own dialog while the hook runs: whichever answers first decides
    terminal.wait_for(CLAUDE_DIALOG)
    tg.answer(tg.tap(card, f"ao:{card.callback_data[0].split(':')[1]}"))
    wait_until(made.exists, timeout=START, what="the command to run after the tap")
    summary = tg.message_with("Turn finished", thread, timeout=START)  # the Stop hook
    assert "All done." in summary.text
    wait_until(lambda: CLAUDE_DIALOG not in terminal.screen(), timeout=START,
               what="the terminal's dialog to close once the phone answered")
    session = chat.json("sessions")[0]
    assert session["agent"] == "claude" and session["agent_session_id"]


def test_claude_away_answered_at_the_terminal_first_withdraws_the_card(chat, tg, model,
                                                                      terminal):
    chat.start()
    chat.cli("away", "on")
    made = claude_in_terminal(chat, model, terminal)
    card = tg.message_with("Approval needed", timeout=START)
    terminal.wait_for(CLAUDE_DIALOG)
    terminal.keys("Enter")  # "1. Yes", at the desk after all
    wait_until(made.exists, timeout=START, what="the command to run after the keypress")
    sid = chat.json("sessions")[0]["id"]
    wait_until(lambda: chat.session(sid)["approvals"][0]["state"] == "withdrawn",
               timeout=START, what="the card withdrawn at the turn's end (Claude leaves the "
                                   "hook running when its own dialog answers first)")
    tg.wait_for("editMessageText", lambda c: c.params.get("message_id") == card.message_id)
    tg.message_with("Turn finished", timeout=START)


def button(card, label: str) -> str:
    return next(b["callback_data"] for b in card.buttons if b["text"] == label)


def test_claude_away_a_question_is_answered_from_the_phone(chat, tg, model, terminal):
    chat.start()
    chat.cli("away", "on")
    claude_in_terminal(chat, model, terminal, script=tool_then_finish(ask(DB)))
    card = tg.message_with("Which database?", timeout=START)
    assert "Answered: SQLite" in tg.answer(tg.tap(card, button(card, "SQLite"))).text
    tg.message_with("Turn finished", timeout=START)
    result = model.requests(ANTHROPIC)[-1].tool_results()[-1]
    assert '"Which database?"="SQLite"' in result


def test_claude_away_a_plan_review_stays_in_the_terminal(chat, tg, model, terminal):
    """Claude Code 2.1.331's terminal UI runs the PermissionRequest hook for ExitPlanMode but
    keeps its own plan dialog whatever the hook answers (checked: an allow changes nothing),
    so no card is posted that could not decide: the plan is reviewed at the terminal."""
    chat.start()
    chat.cli("away", "on")
    claude_in_terminal(chat, model, terminal, script=planner(str(chat.project / "out.txt")),
                       args=("--permission-mode", "plan"))
    terminal.wait_for("Ready to code?")
    assert PLAN.splitlines()[0].lstrip("# ") in terminal.screen()
    assert not [m for m in tg.messages() if "Plan to approve" in (m.text or "")]
    assert not [m for m in tg.messages() if "Approval needed" in (m.text or "")]


def test_claude_approved_from_the_phone_then_adopted_into_chat(chat, tg, model, terminal):
    """The story's end: approved from the phone, the terminal closed, the session is still a
    terminal session to adopt (`sessions --local`), and adopting it continues its history."""
    config_dir = use_real_claude(chat, CLAUDE.require(), model.base_url)  # the daemon's
    chat.start()
    chat.cli("away", "on")
    made = chat.project / "made-by-claude"

    def script(request: ModelRequest) -> Reply:
        if "say hi" in request.prompts()[-1]:
            return Text(text="hi again")
        if request.tool_results():
            return Text(text="All done.")
        return bash(f"touch {made}")

    claude_in_terminal(chat, model, terminal, script=script, config_dir=config_dir)
    card = tg.message_with("Approval needed", timeout=START)
    tg.answer(tg.tap(card, f"ao:{card.callback_data[0].split(':')[1]}"))
    tg.message_with("Turn finished", timeout=START)
    assert made.exists()
    seen = chat.json("sessions")[0]["agent_session_id"]
    terminal.close()  # the person closes the terminal
    listed = [s for s in chat.json("sessions", "--local")["sessions"] if s["id"] == seen]
    assert listed, chat.json("sessions", "--local")
    hooks_session = chat.json("sessions")[0]["id"]
    adopted = chat.json("adopt", listed[0]["key"], "say hi")
    assert adopted["id"] != hooks_session  # a daemon session of its own, with its thread
    wait_until(lambda: any("say hi" in p for r in model.requests(ANTHROPIC)
                           for p in r.prompts()[-1:]), timeout=START,
               what="the adopted session's prompt at the model")
    last = [r for r in model.requests(ANTHROPIC) if "say hi" in r.prompts()[-1]][-1]
    assert "make a file" in last.prompts()  # the earlier history came along


def test_claude_not_away_the_terminal_asks_itself(chat, tg, model, terminal):
    chat.start()
    made = claude_in_terminal(chat, model, terminal)
    terminal.wait_for(CLAUDE_DIALOG)
    assert not made.exists()
    assert chat.json("sessions") == []  # nothing went to chat
    assert not [c for c in tg.fake.calls if c.method == "createForumTopic"]


def test_claude_daemon_down_the_dialog_comes_within_a_second(chat, tg, model, terminal,
                                                             capsys):
    chat.start()
    chat.cli("away", "on")
    chat.stop()  # away, but the daemon is down: the hook must not hold the terminal
    made = claude_in_terminal(chat, model, terminal)
    model.wait_for(lambda r: r.api == ANTHROPIC and r.offers_tools, timeout=START,
                   what="the model call that asks for the tool")
    asked = time.monotonic()
    terminal.wait_for(CLAUDE_DIALOG)
    waited = time.monotonic() - asked
    with capsys.disabled():
        print(f"\ndaemon down: Claude's own dialog {waited * 1000:.0f} ms after the model "
              "was asked for the tool call")
    assert waited < 1.0
    assert not made.exists()


# -- Codex ---------------------------------------------------------------------------------------


def codex_trust(codex: Path, home: Path, env: dict[str, str]) -> None:
    """What a person does in Codex's /hooks: trust the hooks (Codex computes the hash; the
    app-server's hooks/list reports it, and config.toml keeps it under hooks.state)."""
    process = subprocess.Popen([str(codex), "app-server"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env={**env, "CODEX_HOME": str(home)})
    assert process.stdin is not None and process.stdout is not None
    try:
        for message in ({"id": 1, "method": "initialize",
                         "params": {"clientInfo": {"name": "test", "version": "1"}}},
                        {"method": "initialized"},
                        {"id": 2, "method": "hooks/list", "params": {"cwds": [str(home)]}}):
            process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()
        while True:
            line = process.stdout.readline()
            assert line, "codex app-server ended before answering hooks/list"
            answer = json.loads(line)
            if answer.get("id") == 2:
                break
    finally:
        process.kill()
        process.wait(10)
    hooks = answer["result"]["data"][0]["hooks"]
    trust = "".join(f'\n[hooks.state."{h["key"]}"]\ntrusted_hash = "{h["currentHash"]}"\n'
                    for h in hooks if "agent-bridge" in h["command"])
    assert trust.count("trusted_hash") == 2, hooks
    with (home / "config.toml").open("a") as f:
        f.write(trust)


def codex_in_terminal(chat: Bridge, model: ThreadedModelAPI, terminal: Terminal) -> Path:
    binary = CODEX.require()
    made = chat.project / "made-by-codex"
    # the terminal UI takes only on-request (or never): Codex asks for what the model marks
    # as needing escalation
    model.script = tool_then_finish(ExecCommand(cmd=f"touch {made}", escalated=True))
    home = chat.tmp / "codex-tui"
    home.mkdir()
    (home / "config.toml").write_text(
        CODEX_CONFIG.format(base_url=model.base_url)
        + f'\n[projects."{chat.project}"]\ntrust_level = "trusted"\n')
    chat.env["CODEX_HOME"] = str(home)
    chat.cli("hooks", "install", "--codex", "--yes")
    env = {"CODEX_HOME": str(home), "MOCK_API_KEY": "dummy", "HOME": chat.env["HOME"],
           "AGENT_BRIDGE_TEST_TAG": chat.tag, "PATH": chat.env["PATH"],
           "TERM": "xterm-256color"}
    codex_trust(binary, home, env)
    # --no-daemon: the terminal UI would otherwise leave its shared app-server running (and
    # run the hooks from there), which outlives the test
    terminal.start(env, [str(binary), "--no-daemon", "--ask-for-approval", "on-request",
                         "make a file"],
                   chat.project)
    return made


def test_codex_away_the_tap_on_the_phone_runs_the_command(chat, tg, model, terminal):
    chat.start()
    chat.cli("away", "on")
    made = codex_in_terminal(chat, model, terminal)
    topic = tg.wait_for("createForumTopic", timeout=START)
    thread = topic.result["message_thread_id"]
    card = tg.message_with("Approval needed", thread, timeout=START)
    assert f"touch {made}" in card.text
    assert not made.exists()
    # unlike Claude Code, Codex runs the hook first and shows its dialog only without an answer
    assert CODEX_DIALOG not in terminal.screen()
    tg.answer(tg.tap(card, f"ao:{card.callback_data[0].split(':')[1]}"))
    wait_until(made.exists, timeout=START, what="the command to run after the tap")
    tg.message_with("Turn finished", thread, timeout=START)
    assert chat.json("sessions")[0]["agent"] == "codex"
    assert model.requests(OPENAI)
    assert CODEX_DIALOG not in terminal.screen()


def test_codex_not_away_the_terminal_asks_itself(chat, tg, model, terminal):
    chat.start()
    made = codex_in_terminal(chat, model, terminal)
    terminal.wait_for(CODEX_DIALOG)
    assert not made.exists()
    assert chat.json("sessions") == []


def test_codex_daemon_down_the_dialog_comes_within_a_second(chat, tg, model, terminal,
                                                            capsys):
    chat.start()
    chat.cli("away", "on")
    chat.stop()
    made = codex_in_terminal(chat, model, terminal)
    model.wait_for(lambda r: r.api == OPENAI and r.offers_tools, timeout=START,
                   what="the model call that asks for the command")
    asked = time.monotonic()
    terminal.wait_for(CODEX_DIALOG)
    waited = time.monotonic() - asked
    with capsys.disabled():
        print(f"\ndaemon down: Codex's own dialog {waited * 1000:.0f} ms after the model "
              "was asked for the command")
    assert waited < 1.0
    assert not made.exists()
