"""Finding the Claude Code and Codex sessions started in terminals, on this machine and on
the configured SSH hosts, that the daemon does not run.

Theory of operation: the same two small POSIX shell commands run on every host through its
command runner (`Hosts.runner_for`: a local subprocess, or over the host's SSH connection).
The first lists the session files with their size and modification time (a `find`, no file
is opened); the daemon drops the sessions it runs itself, sorts newest first and keeps the
first `limit`. The second prints only the first and last bytes of those files (`head -c`,
`tail -c`: a big transcript is never copied) and the agent processes it can see in /proc
(argv, cwd, open session files, whether the daemon started them). Parsing all of it is pure
(`bridge/terminal.py`). Where the files are: `$CLAUDE_CONFIG_DIR` (default `~/.claude`) and
`$CODEX_HOME` (default `~/.codex`), as the agent's `env`, the host's `env` or the host's
own environment set them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bridge.config import Config
from bridge.terminal import (
    PROTOCOLS,
    ProcessInfo,
    SessionFile,
    TerminalSession,
    attach,
    names,
    parse_session,
    session_id_of,
)
from daemon.errors import DaemonError
from daemon.gitrun import CommandRunner, WorkdirNotFound

log = logging.getLogger(__name__)
HEAD_BYTES = 96 * 1024
TAIL_BYTES = 160 * 1024
LIST_TIMEOUT = 20.0
CONTEXT = 20  # sessions read beside a wanted one (see `find`)
ROOT_VARIABLE = {"claude": "CLAUDE_CONFIG_DIR", "codex": "CODEX_HOME"}

# args: NONCE, then (index, protocol, root or "") per source. Prints, per source,
# "@@NONCE S index root" and one "mtime size path" line per session file.
LIST_SCRIPT = r"""
n=$1; shift
# GNU or BSD stat, with the mtime to the nanosecond where it can tell (two sessions
# written in one second must not tie: the newest is the one a plain `claude` holds), its
# fraction after a '.' whatever the host's locale
LC_ALL=C; export LC_ALL
if stat -c %Y / >/dev/null 2>&1; then
  gnu=1; y=%Y; stat -c %.9Y / >/dev/null 2>&1 && y=%.9Y
else
  gnu=; m=%m; stat -f %Fm / >/dev/null 2>&1 && m=%Fm
fi
while [ $# -ge 3 ]; do
  i=$1; p=$2; r=$3; shift 3
  if [ "$p" = claude ]; then
    [ -n "$r" ] || r="${CLAUDE_CONFIG_DIR:-$HOME/.claude}"; d="$r/projects"; depth=2; pat='*.jsonl'
  else
    [ -n "$r" ] || r="${CODEX_HOME:-$HOME/.codex}"; d="$r/sessions"; depth=4; pat='rollout-*.jsonl'
  fi
  echo "@@$n S $i $r"
  [ -d "$d" ] || continue
  if [ -n "$gnu" ]; then f='-c'; fmt="$y %s %n"; else f='-f'; fmt="$m %z %N"; fi
  find "$d" -mindepth $depth -maxdepth $depth -type f -name "$pat" \
    -exec stat "$f" "$fmt" {} + 2>/dev/null
done
exit 0
"""

# args: NONCE HEAD TAIL, then (index, path, 0|1 whether its tail is wanted) per file. Prints
# "@@NONCE H index", the head, "@@NONCE T index", the tail; then "@@NONCE P" and one line
# per agent process "pid<TAB>bridge<TAB>cwd<TAB>argv (\037-separated)<TAB>open .jsonl files",
# or "@@NONCE NOPROC" when there is no /proc to read.
READ_SCRIPT = r"""
n=$1; hb=$2; tb=$3; shift 3
while [ $# -ge 3 ]; do
  i=$1; f=$2; t=$3; shift 3
  echo "@@$n H $i"; head -c "$hb" "$f" 2>/dev/null; echo
  if [ "$t" = 1 ]; then echo "@@$n T $i"; tail -c "$tb" "$f" 2>/dev/null; echo; fi
done
if [ -r /proc/self/cmdline ]; then
  echo "@@$n P"
  for d in /proc/[0-9]*; do
    c=$(tr '\000' '\037' < "$d/cmdline" 2>/dev/null) || continue
    case "$c" in *claude*|*codex*) ;; *) continue ;; esac
    w=$(readlink "$d/cwd" 2>/dev/null)
    b=0; grep -q -a AGENT_BRIDGE_SESSION= "$d/environ" 2>/dev/null && b=1
    fl=$(for x in "$d"/fd/*; do readlink "$x"; done 2>/dev/null | grep '\.jsonl$' | tr '\n' '\037')
    printf '%s\t%s\t%s\t%s\t%s\n' "${d#/proc/}" "$b" "$w" "$c" "$fl"
  done
else
  echo "@@$n NOPROC"
fi
exit 0
"""


@dataclass(frozen=True, slots=True)
class Source:
    """Where one agent's sessions are on one host; `root` None: the host's default."""

    host: str
    protocol: str
    agent: str
    root: str | None


@dataclass(frozen=True, slots=True)
class Listed:
    source: Source
    path: str
    size: int
    mtime: float
    id: str


@dataclass(frozen=True, slots=True)
class Found:
    """The sessions found, newest first, and what could not be read (per host)."""

    sessions: list[TerminalSession]
    notes: list[str]


def _seconds(text: str) -> bool:
    """Whether `text` is an mtime as stat prints it: seconds, maybe with a fraction."""
    whole, _, fraction = text.partition(".")
    return whole.isdigit() and (not fraction or fraction.isdigit())


class DiscoveryError(DaemonError):
    code = "discovery"


def sources(config: Config) -> list[Source]:
    """One source per host and place: each configured Claude or Codex agent on this machine
    and on every `[hosts.NAME]` (agents sharing a place are listed once, under the first)."""
    found: dict[tuple[str, str, str | None], Source] = {}
    for host in ["local", *config.hosts]:
        host_env = config.hosts[host].env if host != "local" else {}
        for name, agent in config.agents.items():
            if agent.protocol not in PROTOCOLS:
                continue
            var = ROOT_VARIABLE[agent.protocol]
            root = agent.env.get(var) or host_env.get(var)
            found.setdefault((host, agent.protocol, root),
                             Source(host, agent.protocol, name, root))
    return list(found.values())


class Discovery:
    def __init__(self, *, config: Config, runner_for: Callable[[str], CommandRunner],
                 known_ids: Callable[[], Awaitable[set[str]]]) -> None:
        self.config = config
        self.runner_for = runner_for
        self.known_ids = known_ids  # the agent session ids of the daemon's own sessions

    async def find(self, *, limit: int = 20, wanted: str | None = None) -> Found:
        """The newest `limit` terminal sessions (those whose id starts with `wanted`, when
        given), each host read in parallel; an unreachable host becomes a note."""
        known = await self.known_ids()
        by_host: dict[str, list[Source]] = {}
        for source in sources(self.config):
            by_host.setdefault(source.host, []).append(source)
        notes: list[str] = []
        listed: list[Listed] = []
        results = await asyncio.gather(
            *(self._list(host, srcs) for host, srcs in by_host.items()), return_exceptions=True)
        for host, result in zip(by_host, results, strict=True):
            if isinstance(result, BaseException):
                notes.append(f"{host}: {_reason(result)}")
            else:
                listed += result
        def named(sid: str) -> bool:
            return wanted is None or names(wanted, sid)

        outside = sorted((item for item in listed if item.id not in known),
                         key=lambda item: item.mtime, reverse=True)
        chosen = [item for item in outside if named(item.id)][:limit]
        if wanted is not None:
            # the newest sessions are read too: whether a plain `claude` holds the wanted
            # one depends on which session is its directory's newest (`attach`)
            chosen += [item for item in outside[:CONTEXT] if item not in chosen]
        sessions: list[TerminalSession] = []
        reads = await asyncio.gather(
            *(self._read(host, [c for c in chosen if c.source.host == host])
              for host in by_host if any(c.source.host == host for c in chosen)),
            return_exceptions=True)
        for read in reads:
            if isinstance(read, BaseException):
                notes.append(_reason(read))
            else:
                sessions += read
        sessions.sort(key=lambda s: s.updated_at, reverse=True)
        return Found([s for s in sessions if named(s.id)], notes)

    async def _list(self, host: str, srcs: Sequence[Source]) -> list[Listed]:
        nonce = secrets.token_hex(8)
        args = [nonce]
        for i, source in enumerate(srcs):
            args += [str(i), source.protocol, source.root or ""]
        out = await self._run(host, LIST_SCRIPT, args)
        listed: list[Listed] = []
        current: Source | None = None
        for line in out.split(b"\n"):
            text = line.decode("utf-8", "surrogateescape")
            if text.startswith(f"@@{nonce} S "):
                index = int(text.split(" ", 3)[2])
                current = srcs[index] if index < len(srcs) else None
                continue
            parts = text.split(" ", 2)
            if current is None or len(parts) != 3 or not _seconds(parts[0]):
                continue
            sid = session_id_of(current.protocol, parts[2].rsplit("/", 1)[-1])
            if sid is not None and parts[1].isdigit():
                listed.append(Listed(current, parts[2], int(parts[1]), float(parts[0]), sid))
        return listed

    async def _read(self, host: str, items: Sequence[Listed]) -> list[TerminalSession]:
        nonce = secrets.token_hex(8)
        args = [nonce, str(HEAD_BYTES), str(TAIL_BYTES)]
        for i, item in enumerate(items):
            args += [str(i), item.path, "1" if item.size > HEAD_BYTES else "0"]
        out = await self._run(host, READ_SCRIPT, args)
        heads: dict[int, bytes] = {}
        tails: dict[int, bytes] = {}
        processes: list[ProcessInfo] | None = None
        marker = f"@@{nonce} ".encode()
        for chunk in (b"\n" + out).split(b"\n" + marker)[1:]:
            header, _, body = chunk.partition(b"\n")
            words = header.decode().split()
            if words[:1] == ["H"] and len(words) == 2:
                heads[int(words[1])] = body[:-1] if body.endswith(b"\n") else body
            elif words[:1] == ["T"] and len(words) == 2:
                tails[int(words[1])] = body[:-1] if body.endswith(b"\n") else body
            elif words == ["P"]:
                processes = _processes(body)
        sessions = []
        for i, item in enumerate(items):
            head = heads.get(i, b"")
            parsed = parse_session(SessionFile(
                protocol=item.source.protocol, agent=item.source.agent, host=host,
                path=item.path, size=item.size, mtime=item.mtime, head=head,
                tail=tails.get(i, head)))
            if parsed is not None:
                sessions.append(parsed)
        return attach(sessions, processes)

    async def _run(self, host: str, script: str, args: Sequence[str]) -> bytes:
        runner = self.runner_for(host)
        try:
            result = await runner.run(["sh", "-c", script, "sh", *args], cwd="/",
                                      timeout=LIST_TIMEOUT)
        except WorkdirNotFound as e:  # over SSH: the host could not be reached
            reason = e.cwd.split(" (", 1)[1].removesuffix(")") if " (" in e.cwd else e.message
            raise DiscoveryError(reason) from e
        if result.returncode != 0:
            raise DiscoveryError(f"{host}: listing sessions failed: "
                                 f"{result.stderr.decode(errors='replace').strip()[:200]}")
        return result.stdout


def _processes(body: bytes) -> list[ProcessInfo]:
    found = []
    for line in body.split(b"\n"):
        parts = line.decode("utf-8", "surrogateescape").split("\t")
        if len(parts) != 5 or not parts[0].isdigit():
            continue
        argv = tuple(a for a in parts[3].split("\x1f") if a)
        files = frozenset(f for f in parts[4].split("\x1f") if f)
        found.append(ProcessInfo(pid=int(parts[0]), argv=argv, cwd=parts[2] or None,
                                 files=files, bridge=parts[1] == "1"))
    return found


def _reason(error: BaseException) -> str:
    if isinstance(error, DaemonError):
        return error.message
    log.warning("discovery failed", exc_info=error)
    return f"{type(error).__name__}: {error}"
