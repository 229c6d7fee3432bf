"""What the bench scripts share: a daemon in a temporary state dir, the bench agent's side
files and approval cards, /proc readings, statistics, and what responsiveness.py measures on
both platforms. The fakes live in bench/_telegram.py and bench/_slack.py.

The approach is the one `tests/harness.py` takes (a real `agent-bridge run` subprocess, a temp
config and state dir, fake agents, the control socket), without pytest. Every process a bench
starts carries BENCH_TAG in its environment, so teardown finds and ends every one of them.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
AGENT = BENCH / "bench_agent.py"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def _ensure_venv() -> None:
    """`python bench/X.py` with a Python that lacks the project: re-run under the repo's .venv."""
    try:
        import aiohttp  # noqa: F401
        import telegram  # noqa: F401
    except ImportError:
        if VENV_PYTHON.exists() and Path(sys.executable) != VENV_PYTHON:
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
        raise


_ensure_venv()
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from daemon.client import call as api_call  # noqa: E402
from tests.fakes.slack_api import APP_TOKEN as SLACK_APP_TOKEN  # noqa: E402
from tests.fakes.slack_api import BOT_TOKEN as SLACK_BOT_TOKEN  # noqa: E402
from tests.fakes.telegram_api import FORUM_CHAT_ID as FORUM_CHAT_ID  # noqa: E402
from tests.fakes.telegram_api import USER_ID as USER_ID  # noqa: E402
from tests.harness import agent_bridge_argv as agent_bridge_argv  # noqa: E402
from tests.harness import tagged_pids as _tagged_pids  # noqa: E402

T = TypeVar("T")
TOKEN = "123456:BENCH-token"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- processes


def tagged_pids(tag: str) -> list[int]:
    return _tagged_pids(tag, "BENCH_TAG")


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (not its children), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kb(pid: int, key: str) -> int:
    """A `kB` line of /proc/<pid>/status: VmRSS, VmHWM, ..."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def harness_without_gc() -> None:
    """Turn this process's garbage collector off (after one last collection): this process
    hosts the fake API, which takes the timestamps, and its collector's pauses (tens of ms
    once the fake has recorded thousands of calls) must not be counted against the daemon.
    A bench process lives for a minute or two; what it would have collected waits."""
    gc.collect()
    gc.freeze()
    gc.disable()


def wait_until(check: Callable[[], T], timeout: float, what: str,
               interval: float = 0.01) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Daemon:
    """`agent-bridge run` with its own config and state dir under `tmp`.

    `agents` maps an agent name to its argv; `telegram` and `slack` are config sections
    (with `slack`, the fake's tokens are in the environment); `raise_limits` and `profile` run
    the daemon through bench/_daemon.py, which lifts the surface's own message budget or
    records a cProfile of the whole run (see there).
    """

    def __init__(self, tmp: Path, *, agents: dict[str, list[str]] | None = None,
                 telegram: str = "", slack: str = "", raise_limits: int | None = None,
                 profile: Path | None = None, gc_log: Path | None = None,
                 log_level: str = "info") -> None:
        self.tmp = tmp
        self.tag = uuid.uuid4().hex
        self.project = tmp / "project"
        self.project.mkdir(parents=True, exist_ok=True)
        self.state = tmp / "state"
        self.config = tmp / "config.toml"
        self.log = tmp / "daemon.log"
        home = tmp / "home"
        home.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "BENCH_TAG": self.tag,
            "TELEGRAM_BOT_TOKEN": TOKEN,
        }
        self.env.pop("AGENT_BRIDGE_CONFIG", None)
        if slack:
            self.env.update(SLACK_BOT_TOKEN=SLACK_BOT_TOKEN, SLACK_APP_TOKEN=SLACK_APP_TOKEN)
        if raise_limits is not None:
            self.env["BENCH_RAISE_LIMITS"] = str(raise_limits)
        if profile is not None:
            self.env["BENCH_PROFILE"] = str(profile.resolve())
        if gc_log is not None:
            self.env["BENCH_GC_LOG"] = str(gc_log.resolve())
        self.wrapped = raise_limits is not None or profile is not None or gc_log is not None
        lines = [
            "[daemon]",
            f"state_dir = {json.dumps(str(self.state))}",
            'shutdown_grace = "1s"',
            f'log_level = "{log_level}"',
            "[approvals]",
            "timeout = 3600",
        ]
        for name, argv in (agents or {}).items():
            lines += [f"[agents.{name}]", 'protocol = "claude"', f"command = {json.dumps(argv)}"]
        lines += ["[[projects]]", 'name = "demo"', f"path = {json.dumps(str(self.project))}",
                  telegram, slack]
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.state / "agent-bridge.sock"

    @property
    def database(self) -> Path:
        return self.state / "agent-bridge.db"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def argv(self, *args: str) -> list[str]:
        wrapper = [sys.executable, str(BENCH / "_daemon.py")]
        base = wrapper if self.wrapped else agent_bridge_argv()
        return [*base, "--config", str(self.config), *args]

    def spawn(self) -> float:
        """Start `agent-bridge run`; returns time.monotonic() taken just before the fork."""
        handle = self.log.open("ab")
        t0 = time.monotonic()
        self.process = subprocess.Popen(self.argv("run"), env=self.env, stdout=handle,
                                        stderr=subprocess.STDOUT, cwd=self.tmp)
        handle.close()
        return t0

    def accepting(self) -> bool:
        """Whether the control socket accepts a connection and answers `ping`."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the daemon exited: {self.log_text()}")
        try:
            api_call(self.socket, "ping", timeout=5)
        except Exception:
            return False
        return True

    def start(self, timeout: float = 30.0) -> float:
        """Start and wait until the socket answers; returns the seconds that took."""
        t0 = self.spawn()
        wait_until(self.accepting, timeout, f"the daemon to answer (log: {self.log})",
                   interval=0.002)
        return time.monotonic() - t0

    def api(self, op: str, **args: Any) -> Any:
        return api_call(self.socket, op, **args)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True,
                              timeout=120, cwd=self.tmp, check=True)

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        finally:
            self.process = None

    def cleanup(self) -> list[int]:
        """Stop the daemon, then end whatever it left behind; returns the leftover pids."""
        with contextlib.suppress(Exception):
            self.stop()
        try:
            wait_until(lambda: not tagged_pids(self.tag), 10, "agents to exit", interval=0.05)
            return []
        except TimeoutError:
            left = tagged_pids(self.tag)
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return left

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)


# --------------------------------------------------------------------------- profiling


def print_profile(path: Path, limit: int = 25) -> None:
    """The functions of a cProfile dump (bench/_daemon.py) with the most time in them,
    themselves and below."""
    import pstats

    print(f"\nprofile of the daemon ({path}), by cumulative time:")
    pstats.Stats(str(path), stream=sys.stdout).sort_stats("cumulative").print_stats(limit)


# --------------------------------------------------------------------------- cards

# an approval card of bench_agent.py's (either platform): its session and the agent's step
APPROVAL_CARD = re.compile(r"Approval needed · (\w+) ·")
STEP = re.compile(r"echo (\d+) > bench\.txt")
Key = tuple[str, int]
# an entry of a grouped card (daemon/grouping.py): "2. SESSION · place · Bash, request ID"
GROUP_ENTRY = re.compile(r"^\d+\. (\w+) · .*, request (\w+)\n\$ echo (\d+) > bench\.txt", re.M)
SINGLE_REQUEST = re.compile(r", request (\w+)\n")


def cards_in(text: str) -> list[tuple[Key, str]]:
    """The approvals a message shows, as ((session, the agent's step), the "Allow once"
    button's data): one for an approval card, each entry's for a grouped card."""
    if "approvals waiting" in text:
        return [((m[1], int(m[3])), f"ao:{m[2]}") for m in GROUP_ENTRY.finditer(text)]
    card, step, request = APPROVAL_CARD.search(text), STEP.search(text), SINGLE_REQUEST.search(text)
    if card is None or step is None or request is None:
        return []
    return [((card[1], int(step[1])), f"ao:{request[1]}")]


# --------------------------------------------------------------------------- side files


def read_times(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    return records


# --------------------------------------------------------------------------- baselines


def http_round_trips(port: int, count: int = 300) -> list[float]:
    """Seconds per keep-alive POST getMe to the fake (the cheapest Bot API call)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times = []
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            conn.request("POST", f"/bot{TOKEN}/getMe", body=b"",
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            times.append(time.perf_counter() - t0)
    finally:
        conn.close()
    return times


def sqlite_commits(directory: Path, count: int = 300) -> list[float]:
    """Seconds per one-row INSERT + COMMIT in a WAL database with synchronous=NORMAL."""
    path = directory / "baseline.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, ts REAL, data TEXT)")
    times = []
    try:
        for i in range(count):
            t0 = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t (ts, data) VALUES (?, ?)", (time.time(), f"row {i}"))
            db.execute("COMMIT")
            times.append(time.perf_counter() - t0)
    finally:
        db.close()
    return times


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50) * 1000,
        "p99": percentile(values, 99) * 1000,
        "max": max(values) * 1000 if values else float("nan"),
        "mean": statistics.fmean(values) * 1000 if values else float("nan"),
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(rows: Iterable[Sequence[Any]], header: Sequence[str]) -> str:
    data = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in data) for i in range(len(header))]
    lines = []
    for n, row in enumerate(data):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0]
    return (f"{os.cpu_count()} CPU(s), {model}, Python {sys.version.split()[0]}, "
            f"sqlite {sqlite3.sqlite_version}, load average {load:.2f}")


def max_in_window(times: Sequence[float], window: float) -> int:
    """The most timestamps that fall in any `window`-second span."""
    ordered = sorted(times)
    best = 0
    lo = 0
    for hi, t in enumerate(ordered):
        while t - ordered[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# --------------------------------------------------------------------------- responsiveness

# bench/responsiveness.py, both platforms: the person, the agents, the targets (issue 16)
TAP_DELAY = 1.0
ASK_RATIO = 0.3
ANSWER_WAIT = 60.0
TARGET_COMMAND_S = 2.0
TARGET_CARD_S = 5.0
TARGET_STALE_S = 60.0
LAST_TOOL = re.compile(r"last tool: Bash (?:\$ )?echo (\d+) > bench\.txt")  # "Bash $ echo 3 …"


def window_floor(arrivals: Sequence[float], windows: Sequence[tuple[int, float]]) -> list[float]:
    """Each message's delay (in arrival order) if only these were sent, first come first
    served, each one call counted in every rolling window (at most `count` per `seconds`)."""
    kept: list[deque[float]] = [deque() for _ in windows]
    delays = []
    for t in sorted(arrivals):
        at = t
        while True:
            waits = []
            for (count, seconds), sent in zip(windows, kept, strict=True):
                while sent and sent[0] <= at - seconds:
                    sent.popleft()
                if len(sent) >= count:
                    waits.append(sent[0] + seconds)
            if not waits:
                break
            at = max(waits)
        for sent in kept:
            sent.append(at)
        delays.append(at - t)
    return delays


def grouped_floor(answers: Sequence[float], asks: Sequence[float],
                  windows: Sequence[tuple[int, float]]) -> tuple[list[float], list[float]]:
    """The delays (each list in arrival order) if only these were sent, answers first, each
    one message, and every approval waiting when a slot comes carried by that one message
    (a grouped card): the best the budget allows even when cards are grouped. Each message
    is one call in every rolling window (at most `count` per `seconds`)."""
    kept: list[deque[float]] = [deque() for _ in windows]
    arrivals = sorted([(t, 0, i) for i, t in enumerate(answers)] +
                      [(t, 1, i) for i, t in enumerate(asks)])
    answer_delay = [0.0] * len(answers)
    ask_delay = [0.0] * len(asks)
    waiting_answers: deque[int] = deque()
    waiting_asks: list[int] = []
    nxt = 0
    t = arrivals[0][0] if arrivals else 0.0
    while nxt < len(arrivals) or waiting_answers or waiting_asks:
        while nxt < len(arrivals) and arrivals[nxt][0] <= t:
            _, kind, i = arrivals[nxt]
            (waiting_answers.append if kind == 0 else waiting_asks.append)(i)
            nxt += 1
        if not waiting_answers and not waiting_asks:
            t = arrivals[nxt][0]
            continue
        slot = t
        for (count, seconds), sent in zip(windows, kept, strict=True):
            while sent and sent[0] <= t - seconds:
                sent.popleft()
            if len(sent) >= count:
                slot = max(slot, sent[len(sent) - count] + seconds)
        if slot > t:
            t = slot  # what arrives meanwhile may join
            continue
        if waiting_answers:
            i = waiting_answers.popleft()
            answer_delay[i] = t - answers[i]
        else:
            for i in waiting_asks:
                ask_delay[i] = t - asks[i]
            waiting_asks.clear()
        for sent in kept:
            sent.append(t)
    return answer_delay, ask_delay


def best_grouped_floor(answers: Sequence[float], asks: Sequence[float],
                       windows: Sequence[tuple[int, float]], targets: tuple[float, float]
                       ) -> tuple[list[float], list[float], float]:
    """`grouped_floor` under the platform's windows and, besides, one message at most every
    `gap` seconds (sending at every free slot spends a window early, and what comes later
    waits for the window to turn), for the gap that comes closest to both `targets` (the
    answers' and the approvals' p99: the larger of each p99 over its target is smallest):
    the answers' and approvals' delays, and that gap."""
    best: tuple[float, list[float], list[float], float] | None = None
    for gap in (0.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0):
        paced = [*windows, (1, gap)] if gap else list(windows)
        answer_delay, ask_delay = grouped_floor(answers, asks, paced)
        score = max(p(answer_delay, 99) / targets[0] if answer_delay else 0.0,
                    p(ask_delay, 99) / targets[1] if ask_delay else 0.0)
        if best is None or score < best[0]:
            best = (score, answer_delay, ask_delay, gap)
    assert best is not None
    return best[1], best[2], best[3]


def staleness(shown: str | None, tools: Sequence[dict[str, Any]], now: float,
              began: float) -> float:
    """How long a status card showing `shown` (None: no card yet) has not been true at `now`:
    0 while its "last tool" is the agent's latest call (`tools`: the agent's "tool" records up
    to now), else since the agent's next call after the one shown; before any card, since the
    session began."""
    if shown is None:
        return now - began
    match = LAST_TOOL.search(shown)
    step = int(match[1]) if match else -1
    if not tools or tools[-1]["i"] <= step:
        return 0.0
    return now - next(r["t"] for r in tools if r["i"] > step)


def p(values: Sequence[float], q: float) -> float:
    return percentile(values, q) if values else float("nan")


def fmt(values: Sequence[float]) -> str:
    """p50 / p99, or — without values."""
    if not values:
        return "—"
    return f"{p(values, 50):.2f} / {p(values, 99):.2f}"
