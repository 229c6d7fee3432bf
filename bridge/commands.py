"""Chat commands, parsed the same way on every surface.

`parse_command("/new api fix the test --agent codex")` gives a `Command`; anything that is
not a well-formed command gives a `CommandError` whose message says what was expected.
Inside a session's thread the session id may be left out; the caller passes it as
`thread_session`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from enum import StrEnum


class CommandName(StrEnum):
    NEW = "new"
    SESSIONS = "sessions"
    RESUME = "resume"
    STOP = "stop"
    INTERRUPT = "interrupt"
    MODE = "mode"
    MODEL = "model"
    ARCHIVE = "archive"
    UNARCHIVE = "unarchive"
    STATUS = "status"
    DIFF = "diff"
    DIGEST = "digest"
    ATRESET = "atreset"
    VERBOSE = "verbose"
    AWAY = "away"
    BACK = "back"
    HELP = "help"
    ADOPT = "adopt"


#: (command, arguments, what it does) — also what setMyCommands registers
COMMAND_HELP: tuple[tuple[CommandName, str, str], ...] = (
    (CommandName.NEW, "PROJECT PROMPT", "start a session (--agent NAME, --worktree, --plan)"),
    (CommandName.SESSIONS, "[all|local]",
     "list sessions (all: with archived; local: terminal sessions to adopt)"),
    (CommandName.ADOPT, "ID [PROMPT]", "continue a terminal session here (--force: even "
                                       "while a terminal holds it)"),
    (CommandName.RESUME, "ID [PROMPT]", "continue a session"),
    (CommandName.STOP, "ID", "stop a session"),
    (CommandName.INTERRUPT, "ID", "end the running turn, keep the session"),
    (CommandName.MODE, "ID default|plan|acceptEdits", "switch the permission mode"),
    (CommandName.MODEL, "ID NAME", "switch the model"),
    (CommandName.ARCHIVE, "ID", "archive a session"),
    (CommandName.UNARCHIVE, "ID", "bring a session back"),
    (CommandName.STATUS, "ID", "show a session's status card"),
    (CommandName.DIFF, "ID [turn N]", "the session's diff so far, or turn N's own change"),
    (CommandName.DIGEST, "", "the digest of idle runs, now"),
    (CommandName.ATRESET, "ID [cancel]", "resume a session when its usage limit resets"),
    (CommandName.VERBOSE, "ID on|off", "a progress message during the session's turns"),
    (CommandName.AWAY, "", "terminal sessions' permission requests come here"),
    (CommandName.BACK, "", "terminal sessions ask in their terminal again"),
    (CommandName.HELP, "", "this help"),
)

_ID = re.compile(r"^[a-z0-9]{4,16}$")
_NEEDS_ID = frozenset(
    {CommandName.STOP, CommandName.ARCHIVE, CommandName.UNARCHIVE, CommandName.STATUS,
     CommandName.DIFF, CommandName.RESUME, CommandName.INTERRUPT, CommandName.MODE,
     CommandName.MODEL, CommandName.ATRESET}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    name: CommandName
    session_id: str | None = None
    project: str | None = None
    prompt: str | None = None
    agent: str | None = None
    worktree: bool = False
    plan: bool = False  # /new … --plan: the session starts in plan mode
    include_archived: bool = False
    argument: str | None = None  # /mode's mode, /model's name, /adopt's terminal session
    local: bool = False  # /sessions local: the terminal sessions the bridge does not run
    force: bool = False  # /adopt … --force: although a terminal still holds it
    turn: int | None = None  # /diff ID turn N: that turn's own change


@dataclass(frozen=True, slots=True)
class CommandError:
    message: str


def help_text() -> str:
    lines = ["Commands:"]
    for name, args, what in COMMAND_HELP:
        lines.append(f"/{name.value} {args}".rstrip() + f" — {what}")
    lines.append("Inside a session's thread the ID may be left out; a plain message there "
                 "continues the session.")
    return "\n".join(lines)


def parse_command(
    text: str, *, bot_username: str | None = None, thread_session: str | None = None
) -> Command | CommandError | None:
    """The command in `text`, an error saying what is wrong, or None if it is no command."""
    text = text.strip()
    if not text.startswith("/"):
        return None
    head, _, rest = text[1:].partition(" ")
    head, _, mention = head.partition("@")
    if mention and bot_username and mention.lower() != bot_username.lower():
        return None  # addressed to another bot in the group
    try:
        name = CommandName(head.lower())
    except ValueError:
        return CommandError(f"Unknown command /{head}. Send /help for the list.")
    rest = rest.strip()
    if name is CommandName.NEW:
        return _new(rest)
    if name is CommandName.SESSIONS:
        if rest.lower() in ("local", "--local"):
            return Command(name=name, local=True)
        if rest and rest.lower() not in ("all", "--all"):
            return CommandError("Usage: /sessions [all|local]")
        return Command(name=name, include_archived=bool(rest))
    if name is CommandName.ADOPT:
        return _adopt(rest)
    if name in (CommandName.HELP, CommandName.DIGEST, CommandName.AWAY, CommandName.BACK):
        return Command(name=name)
    if name in (CommandName.MODE, CommandName.MODEL):
        return _setting(name, rest, thread_session)
    if name is CommandName.VERBOSE:
        parsed = _setting(name, rest, thread_session)
        if isinstance(parsed, Command) and (parsed.argument or "").lower() not in ("on", "off"):
            return CommandError(f"Usage: /verbose ID on|off; got {parsed.argument!r}.")
        return parsed
    if name is CommandName.DIFF:
        return _diff(rest, thread_session)
    first, _, tail = rest.partition(" ")
    session_id = None
    if first and _ID.match(first.lower()):
        session_id, rest = first.lower(), tail.strip()
    elif thread_session is not None:
        session_id = thread_session
    if session_id is None and name in _NEEDS_ID:
        args = next(a for n, a, _ in COMMAND_HELP if n is name)
        return CommandError(f"Usage: /{name.value} {args} (or send it inside the session's "
                            "thread).")
    if name is CommandName.RESUME:
        return Command(name=name, session_id=session_id, prompt=rest or None)
    if name is CommandName.ATRESET:
        if rest.lower() not in ("", "cancel"):
            return CommandError(f"Usage: /atreset ID [cancel]; got {rest!r}.")
        return Command(name=name, session_id=session_id, argument=rest.lower() or None)
    if rest:
        return CommandError(f"/{name.value} takes only a session id; got {rest!r}.")
    return Command(name=name, session_id=session_id)


def _setting(name: CommandName, rest: str, thread_session: str | None) -> Command | CommandError:
    """`/mode ID MODE` and `/model ID NAME`; in a session's thread the id may be left out
    (one word is then the mode or model: `plan` would also read as an id)."""
    args = next(a for n, a, _ in COMMAND_HELP if n is name)
    words = rest.split()
    if len(words) == 2 and _ID.match(words[0].lower()):
        return Command(name=name, session_id=words[0].lower(), argument=words[1])
    if len(words) == 1 and thread_session is not None:
        return Command(name=name, session_id=thread_session, argument=words[0])
    return CommandError(f"Usage: /{name.value} {args} (the ID may be left out inside the "
                        "session's thread).")


def _adopt(rest: str) -> Command | CommandError:
    """`/adopt ID [PROMPT] [--force]`: ID is a terminal session's id (or its start)."""
    words = rest.split()
    force = "--force" in words
    words = [w for w in words if w != "--force"]
    if not words or not re.fullmatch(r"[A-Za-z0-9-]{6,64}", words[0]):
        return CommandError("Usage: /adopt ID [PROMPT] (ID from /sessions local; --force "
                            "adopts it even while a terminal holds it)")
    prompt = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
    if words[0] != rest.split(None, 1)[0]:  # `--force` came first
        prompt = " ".join(words[1:])
    prompt = " ".join(w for w in prompt.split(" ") if w != "--force").strip()
    return Command(name=CommandName.ADOPT, argument=words[0].lower(), prompt=prompt or None,
                   force=force)


def _diff(rest: str, thread_session: str | None) -> Command | CommandError:
    """`/diff ID` (the whole diff) or `/diff ID turn N` (turn N's own change); in a
    session's thread the id may be left out."""
    usage = ("Usage: /diff ID [turn N] (the ID may be left out inside the session's "
             "thread).")
    words = rest.split()
    session_id = thread_session
    if words and words[0].lower() != "turn":
        if not _ID.match(words[0].lower()):
            return CommandError(usage)
        session_id, words = words[0].lower(), words[1:]
    if session_id is None:
        return CommandError(usage)
    if not words:
        return Command(name=CommandName.DIFF, session_id=session_id)
    if len(words) != 2 or words[0].lower() != "turn" or not words[1].isdigit() \
            or int(words[1]) < 1:
        return CommandError(f"/diff takes a session id and optionally `turn N` (N from 1); "
                            f"got {rest!r}.")
    return Command(name=CommandName.DIFF, session_id=session_id, turn=int(words[1]))


def _new(rest: str) -> Command | CommandError:
    usage = "Usage: /new PROJECT PROMPT (options: --agent NAME, --worktree, --plan)"
    try:
        words = shlex.split(rest)
    except ValueError:
        words = rest.split()
    agent = None
    worktree = plan = False
    kept: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--agent":
            if i + 1 >= len(words):
                return CommandError("--agent needs a name. " + usage)
            agent = words[i + 1]
            i += 2
            continue
        if word.startswith("--agent="):
            agent = word.split("=", 1)[1]
        elif word == "--worktree":
            worktree = True
        elif word == "--plan":
            plan = True
        else:
            kept.append(word)
        i += 1
    if len(kept) < 2:
        return CommandError(usage)
    project = kept[0]
    # the prompt as typed (keep its quoting and spacing), minus the options we consumed
    prompt = rest.split(None, 1)[1] if rest.split(None, 1)[0] == project else " ".join(kept[1:])
    for option in ("--worktree", "--plan", f"--agent {agent}", f"--agent={agent}"):
        prompt = prompt.replace(option, "")
    prompt = " ".join(prompt.split()) if "\n" not in prompt else prompt.strip()
    if not prompt:
        return CommandError(usage)
    return Command(name=CommandName.NEW, project=project, prompt=prompt, agent=agent,
                   worktree=worktree, plan=plan)
