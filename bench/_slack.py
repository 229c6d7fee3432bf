"""bench/responsiveness.py on Slack: the daemon in Socket Mode against the fake Slack.

Setup: the fake Slack Web API (tests/fakes/slack_api.py) with its limits as they are, which
are Slack's documented ones: chat.postMessage 10 per rolling 10 s per channel ("about one a
second, short bursts allowed"), chat.update 50 per rolling 60 s (Tier 3), chat.postEphemeral
100 per rolling 60 s (Tier 4), 429 + Retry-After beyond them. `response_url` posts (the
answers to slash commands) are not limited. The daemon is the plain `agent-bridge run` with
`[slack] mode = "socket"`; N sessions run in one channel, a thread each (the thread's parent
is the session's status card). The agents are those of the Telegram run. A person, through
Socket Mode envelopes as Slack sends them:
- taps "Allow once" on every approval card 1 s after it is posted (a block_actions
  interaction);
- every 3–6 s does the next of: the slash commands `/agent status ID` and `/sessions` (the
  bot's commands are slash commands; a message starting with "/" would be answered the same
  way, but through chat.postEphemeral), a reply in a session's thread (a message event).

Figures per N, each next to its floor:
- command answer: the slash command pushed → the daemon's answer accepted on the command's
  own `response_url` (an ephemeral answer, which is how the daemon answers slash commands;
  it spends no chat.* budget). Floor: 0, nothing limits a `response_url`.
- approval card: the agent writes `can_use_tool` → the card's chat.postMessage accepted.
  Floor: the new cards alone, first come first served through the channel's post window
  (10 per rolling 10 s; a simulation over the run's own ask times). Thread openings,
  summaries and replies posted in threads count in that window too, and are left out.
- status-card staleness, sampled every second per session as for Telegram (the parent
  message's "last tool:" line vs the agent's latest call). Floor: the chat.update budget
  (50 a minute, no first-class traffic in it) round-robin over the N cards, each refreshed
  every N / (50/60) s (at most the run's length); p50 ≈ half of that, p99 ≈ all of it.
  The decided-card edits (chat.update too, one per approval) are not taken off, so this is
  a lower bound, like every floor here.
- 429s: the fake's own limit answers, by method.
"""

from __future__ import annotations

import asyncio
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    AGENT,
    ANSWER_WAIT,
    ASK_RATIO,
    TAP_DELAY,
    Daemon,
    Key,
    cards_in,
    read_times,
    staleness,
    window_floor,
)

from tests.fakes.slack_api import CHANNEL, FakeSlack, RateLimit
from tests.slack_harness import ThreadedSlack
from tests.threaded import Threaded

POSTS = RateLimit(10, 10.0)  # chat.postMessage, per channel
UPDATES = RateLimit(50, 60.0)  # chat.update
EPHEMERALS = RateLimit(100, 60.0)  # chat.postEphemeral
SPENDING = ("chat.postMessage", "chat.update")


def section_text(blocks: Any) -> str:
    return "\n".join(b["text"]["text"] for b in blocks or []
                     if b.get("type") == "section" and isinstance(b.get("text"), dict))


class TappingSlack(FakeSlack):
    """The fake Slack, tapping "Allow once" on every approval card `tap_delay` s after the
    card's chat.postMessage is accepted, and timing each answer on a `response_url`."""

    def __init__(self, tap_delay: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tap_delay = tap_delay
        self.cards: dict[Key, float] = {}  # (session, the agent's step) → card accepted
        self.answered: dict[str, tuple[float, str, list[str]]] = {}  # rid → (t, text, labels)
        self._taps: set[asyncio.Task[str]] = set()

    def _record(self, method: str, params: dict[str, Any], token: str, status: int,
                response: dict[str, Any] | None, error: str | None) -> None:
        super()._record(method, params, token, status, response, error)
        if method != "chat.postMessage" or error is not None or response is None:
            return
        text = section_text(params.get("blocks"))
        for step, value in cards_in(text):
            self.cards[step] = self.calls[-1].time
            asyncio.get_running_loop().call_later(self.tap_delay, self._tap,
                                                  str(response["channel"]),
                                                  str(response["ts"]), value)

    def _tap(self, channel: str, ts: str, value: str) -> None:
        message = self.message(channel, ts)
        if message is None:
            return
        task = asyncio.ensure_future(self.inject_tap(message, value))
        self._taps.add(task)
        task.add_done_callback(self._taps.discard)

    async def _handle_respond(self, request: Any) -> Any:
        rid = request.match_info["rid"]
        answer = await super()._handle_respond(request)
        if rid not in self.answered and self.responses and self.responses[-1][0] == rid:
            body = self.responses[-1][1]
            labels = [e["text"]["text"] for b in body.get("blocks") or []
                      if b.get("type") == "actions" for e in b.get("elements", [])]
            self.answered[rid] = (self._clock(), section_text(body.get("blocks"))
                                  or str(body.get("text", "")), labels)
        return answer


class BenchSlack(ThreadedSlack):
    def __init__(self, tap_delay: float) -> None:
        Threaded.__init__(self, lambda: TappingSlack(tap_delay, post_limit=POSTS,
                                                     update_limit=UPDATES,
                                                     ephemeral_limit=EPHEMERALS))


def run_slack(n: int, duration: float, seed: int, base: Path) -> dict[str, Any]:
    times_dir = base / "times"
    times_dir.mkdir()
    slack = BenchSlack(TAP_DELAY)
    agent = [sys.executable, str(AGENT), "--times-dir", str(times_dir), "--tools-for",
             str(duration), "--tool-gap", "1,3", "--ask-ratio", str(ASK_RATIO), "--seed",
             str(seed)]
    daemon = Daemon(base / "daemon", agents={"tools": agent}, slack=slack.config())
    fake: TappingSlack = slack.fake  # type: ignore[assignment]
    rng = random.Random(seed)
    replies: list[tuple[str, str, float]] = []  # (sid, marker, sent)
    sent_commands: list[tuple[str, str, float, str]] = []  # (kind, sid, sent, response id)
    stale: list[float] = []
    try:
        daemon.start()
        slack.connected(30)
        t_start = time.monotonic()
        sids = [daemon.api("new", project="demo", prompt=f"work {i}", agent="tools",
                           worktree=False)["id"] for i in range(n)]
        began = {sid: time.monotonic() for sid in sids}
        end = t_start + duration
        step = 0
        next_action = time.monotonic() + rng.uniform(3, 6)
        next_sample = time.monotonic() + 1.0

        def status_cards() -> dict[str, tuple[str, str]]:
            """Each session's thread parent: (its text, its ts)."""
            found: dict[str, tuple[str, str]] = {}
            for m in fake.top_level(CHANNEL):
                shown = section_text(m.blocks)
                for sid in sids:
                    if m.bot_id and re.match(rf"^\S+ {sid} · ", shown):
                        found[sid] = (shown, m.ts)
            return found

        def command(kind: str, sid: str) -> tuple[float, str]:
            async def send() -> tuple[float, str]:
                if kind == "/status":
                    envelope = await fake.inject_command("/agent", f"status {sid}")
                else:
                    envelope = await fake.inject_command("/sessions", "")
                payload = next(e.payload for e in fake.envelopes if e.id == envelope)
                return fake._clock(), str(payload["response_url"]).rsplit("/", 1)[1]

            return slack._run(send())

        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_action:  # the person does not wait for an answer to go on
                next_action = now + rng.uniform(3, 6)
                sid = rng.choice(sids)
                kind = ("/status", "/sessions", "reply")[step % 3]
                step += 1
                if kind == "reply":
                    cards = slack.on(status_cards)
                    if sid in cards:
                        marker = f"note {step}"
                        replies.append((sid, marker, time.monotonic()))
                        slack.say(marker, thread_ts=cards[sid][1])
                else:
                    sent, rid = command(kind, sid)
                    sent_commands.append((kind, sid, sent, rid))
            if now >= next_sample:
                next_sample += 1.0
                cards = slack.on(status_cards)
                for sid in sids:
                    tools = [r for r in read_times(times_dir / f"{sid}.jsonl")
                             if r["ev"] == "tool" and r["t"] <= now]
                    stale.append(staleness(cards[sid][0] if sid in cards else None, tools,
                                           now, began[sid]))
            time.sleep(0.05)

        # the load has stopped; the last answers may still come
        def answers() -> list[float | None]:
            found: list[float | None] = []
            for kind, sid, _, rid in sent_commands:
                hit = fake.answered.get(rid)
                right = hit is not None and (
                    re.match(rf"^\S+ {sid} · ", hit[1]) if kind == "/status"
                    else any(label.endswith(" status") for label in hit[2]))
                found.append(hit[0] if hit is not None and right else None)
            return found

        last_sent = max((c[2] for c in sent_commands), default=0.0)
        while None in (found := slack.on(answers)) and \
                time.monotonic() < last_sent + ANSWER_WAIT:
            time.sleep(0.25)
        wrong = slack.on(lambda: sum(rid in fake.answered for *_, rid in sent_commands)) - \
            sum(a is not None for a in found)
        commands = [(kind, sent, a if a is None or a - sent <= ANSWER_WAIT else None)
                    for (kind, _, sent, _), a in zip(sent_commands, found, strict=True)]
        asks: list[float] = []
        received: dict[tuple[str, str], float] = {}
        card_lat: list[float] = []
        cards_at = slack.on(lambda: dict(fake.cards))
        for sid in sids:
            for r in read_times(times_dir / f"{sid}.jsonl"):
                if r["ev"] == "ask":
                    asks.append(r["t"])
                    key = (sid, r["i"])
                    card_lat.append(cards_at[key] - r["t"] if key in cards_at
                                    else time.monotonic() - r["t"])  # not out yet: a lower bound
                elif r["ev"] == "user":
                    for _, marker, _ in replies:
                        if marker in r["text"]:
                            received.setdefault((sid, marker), r["t"])
        violations = slack.on(lambda: [v.method for v in fake.violations])
        calls = slack.on(lambda: [(c.method, c.ok) for c in fake.calls])
    finally:
        leftovers = daemon.cleanup()
        slack.close()
    answered = [a if a is not None else sent + ANSWER_WAIT for _, sent, a in commands]
    command_lat = [a - s for (_, s, _), a in zip(commands, answered, strict=True)]
    reply_lat = [received[(sid, m)] - s if (sid, m) in received else float("inf")
                 for sid, m, s in replies]
    left = UPDATES.count / UPDATES.window
    refresh = min(n / left, duration)
    methods: dict[str, int] = {}
    for method in violations:
        methods[method] = methods.get(method, 0) + 1
    return {
        "n": n, "commands": command_lat, "command_floor": [0.0] * len(command_lat),
        "unanswered": sum(a is None for _, _, a in commands), "wrong": wrong,
        "cards": card_lat, "card_floor": window_floor(asks, [(POSTS.count, POSTS.window)]),
        "stale": stale, "stale_floor": (refresh / 2, refresh), "replies": reply_lat,
        "429": len(violations), "scopes": methods, "leftovers": leftovers,
        "calls": len(calls), "asks": len(asks), "api": "Web API", "spent": "posts+updates",
        "sends_edits": sum(1 for m, ok in calls if ok and m in SPENDING),
    }
