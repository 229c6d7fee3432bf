"""`agent-bridge sessions --local` through the real daemon over hand-written session files:
a big Claude transcript read only at its ends (with corrupt lines), a Codex rollout, newest
first, `--limit`, and the daemon's own sessions (whose files sit beside them) left out."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.harness import FakeAgent

BIG = "aaaaaaaa-1111-4111-8111-111111111111"
ROLL = "bbbbbbbb-2222-4222-8222-222222222222"


def jsonl(*items: object) -> str:
    return "".join(json.dumps(i) + "\n" for i in items)


def claude_file(home: Path) -> Path:
    path = home / "projects" / "-w-api" / f"{BIG}.jsonl"
    path.parent.mkdir(parents=True)
    filler = json.dumps({"type": "attachment", "blob": "x" * 4000}) + "\n"
    with path.open("w") as f:
        f.write(jsonl({"type": "user", "message": {"content": "first: the login bug"},
                       "cwd": "/w/api", "gitBranch": "main"}))
        f.write("{not json at all\n")
        f.write(filler * 1500)  # ~6 MB between the first prompt and the last
        f.write(jsonl({"type": "user", "message": {"content": "last: and the logout"},
                       "cwd": "/w/api", "gitBranch": "fix/logout"},
                      {"type": "assistant", "message": {"content": [
                          {"type": "text", "text": "Both done."}]}}))
        f.write('{"type": "user", "message": {"content": "being writ')  # cut mid-write
    return path


def codex_file(home: Path) -> Path:
    path = home / "sessions" / "2026" / "12" / "02" / f"rollout-2026-12-02T05-35-14-{ROLL}.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(jsonl(
        {"type": "session_meta", "payload": {"id": ROLL, "cwd": "/w/web",
                                             "git": {"branch": "dev"}}},
        {"type": "event_msg", "payload": {"type": "user_message", "message": "build it"}},
        {"type": "unknown_future_kind", "payload": {}},
    ))
    return path


def test_sessions_local_lists_terminal_sessions_but_not_the_daemons_own(make_bridge, tmp_path):
    claude_home = tmp_path / "fake-claude-home"
    setting = f"env = {{ CLAUDE_CONFIG_DIR = {json.dumps(str(claude_home))} }}"
    bridge = make_bridge(agents={
        "claude": FakeAgent(protocol="claude", scenario="approve", settings=(setting,)),
        "codex": FakeAgent(protocol="codex")})
    big = claude_file(claude_home)
    rollout = codex_file(Path(bridge.env["CODEX_HOME"]))
    os.utime(big, (1_000_000, 2_000_000_000))
    os.utime(rollout, (1_000_000, 1_900_000_000))
    bridge.start()
    # a session the daemon runs: its agent writes its file under the same directory
    sid = bridge.json("new", "demo", "please run a command")["id"]
    (pending,) = bridge.wait_approval(sid)
    bridge.cli("approve", pending["id"])
    own = bridge.wait_state(sid, "idle")["agent_session_id"]
    assert list(claude_home.glob(f"projects/*/{own}.jsonl"))

    found = bridge.json("sessions", "--local")
    assert found["notes"] == []
    first, second = found["sessions"]
    assert (first["id"], second["id"]) == (BIG, ROLL)  # newest first, not the daemon's
    assert first == {
        "id": BIG, "key": BIG.replace("-", "")[:16], "agent": "claude", "protocol": "claude",
        "host": "local", "cwd": "/w/api", "branch": "fix/logout",
        "first_prompt": "first: the login bug", "last_prompt": "last: and the logout",
        "updated_at": 2_000_000_000.0, "attached": "no", "holder": None, "path": str(big)}
    assert (second["agent"], second["cwd"], second["branch"], second["first_prompt"]) == (
        "codex", "/w/web", "dev", "build it")
    assert [s["id"] for s in bridge.json("sessions", "--local", "--limit", "1")["sessions"]] \
        == [BIG]
    bad = bridge.cli("sessions", "--local", "--limit", "0", check=False)
    assert bad.returncode == 1 and "--limit must be between 1 and 200" in bad.stderr
    unknown = bridge.cli("adopt", "cccccccc", check=False)
    assert unknown.returncode == 1 and "no terminal session 'cccccccc'" in unknown.stderr
    short = bridge.cli("adopt", "aaaa", check=False)
    assert short.returncode == 1 and "at least 6 characters" in short.stderr
    ours = bridge.cli("adopt", own, check=False)  # the daemon's own: the CLI's way to go on
    assert ours.returncode == 1 and "already the bridge's session" in ours.stderr
    assert f"continue it with `agent-bridge resume {sid}` (or /resume {sid})" in ours.stderr
