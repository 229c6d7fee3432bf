"""Risk tags: what on a request deserves a second look, read from the request alone.

A tag decides nothing: it is shown on the approval card beside the evidence. Tags come
from a table (`COMMAND_RULES`, `TEXT_RULES`, `PATH_RULES`), so a new risk is one row.

Theory of operation: a shell command is lexed once, left to right, by one regex with
possessive repetitions (`_WORD`), into simple commands (split at `;`, `&&`, `||`, `|`, `&`,
newlines and parentheses) of unquoted words; a shell's `-c` script (Codex wraps every
command in `bash -lc '…'`) and `eval`'s argument are lexed the same way, to a bounded
depth. A command rule is a sequence of word patterns that must appear in that order in
one simple command, the first at the command's position (after wrappers such as `sudo`,
`env`, `xargs`, `find -exec`): `rm … -r`, `git … push … --force`. Matching keeps one
position per rule and reads each word once, so the time is linear in the command. Text
rules (SQL) run over every string of the request, each a regex whose repetitions are
possessive and which can only start at a keyword, so no input makes it backtrack.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Risk(StrEnum):
    RECURSIVE_DELETE = "recursive delete"
    FORCE_PUSH = "force push"
    HISTORY_REWRITE = "history rewrite"
    PIPE_TO_SHELL = "download piped to a shell"
    SUDO = "sudo"
    OUTSIDE_PROJECT = "writes outside the project"
    DATABASE_DROP = "database drop"
    MIGRATION = "database migration"


@dataclass(frozen=True, slots=True)
class CommandRule:
    """`words` (regexes, each matched against one whole word) appear in this order in one
    simple command, the first as its command word."""

    risk: Risk
    words: tuple[str, ...]


_RECURSIVE = r"-[a-zA-Z]*[rR][a-zA-Z]*|--recursive"
_FORCE = r"--force(?:-with-lease|-if-includes)?(?:=\S*)?|-[a-zA-Z]*f[a-zA-Z]*|\+\S+"

COMMAND_RULES: tuple[CommandRule, ...] = (
    CommandRule(Risk.RECURSIVE_DELETE, ("rm", _RECURSIVE)),
    CommandRule(Risk.RECURSIVE_DELETE, ("find", "-delete")),
    CommandRule(Risk.RECURSIVE_DELETE, ("git", "clean")),
    CommandRule(Risk.FORCE_PUSH, ("git", "push", _FORCE)),
    CommandRule(Risk.HISTORY_REWRITE, ("git", "reset", "--hard")),
    CommandRule(Risk.HISTORY_REWRITE, ("git", "rebase")),
    CommandRule(Risk.HISTORY_REWRITE, ("git", "filter-branch")),
    CommandRule(Risk.HISTORY_REWRITE, ("git", "filter-repo")),
    CommandRule(Risk.HISTORY_REWRITE, ("git-filter-repo",)),
    CommandRule(Risk.SUDO, ("sudo",)),
    CommandRule(Risk.SUDO, ("doas",)),
    CommandRule(Risk.DATABASE_DROP, ("dropdb",)),
    CommandRule(Risk.DATABASE_DROP, ("mysqladmin", "drop")),
    CommandRule(Risk.DATABASE_DROP, ("rails|rake|bundle", r"db:(?:drop|reset|purge)\S*")),
    CommandRule(Risk.MIGRATION, ("rails|rake|bundle", r"db:(?:migrate|rollback|schema:load)\S*")),
    CommandRule(Risk.MIGRATION, ("python[0-9.]*", r"(?:\S*/)?manage\.py", "migrate")),
    CommandRule(Risk.MIGRATION, (r"(?:\S*/)?manage\.py", "migrate")),
    CommandRule(Risk.MIGRATION, ("alembic", "upgrade|downgrade|stamp")),
    CommandRule(Risk.MIGRATION, ("npx|pnpm|yarn|bunx|prisma", "prisma|migrate|db", "migrate|push|deploy|reset|dev")),  # noqa: E501
    CommandRule(Risk.MIGRATION, ("npx|sequelize|sequelize-cli", r"sequelize(?:-cli)?|db:migrate\S*", r"db:migrate\S*")),  # noqa: E501
    CommandRule(Risk.MIGRATION, ("flyway", "migrate|clean|repair")),
    CommandRule(Risk.MIGRATION, ("diesel", "migration|database")),
    CommandRule(Risk.MIGRATION, ("knex", r"migrate:\S+")),
)

# over every string of the request (a command, a file's new content, an MCP tool's SQL)
TEXT_RULES: tuple[tuple[Risk, re.Pattern[str]], ...] = (
    (Risk.DATABASE_DROP, re.compile(
        r"\b(?:drop\s++(?:table|database|schema|collection)\b"
        r"|truncate\s++(?:table\s++)?[\w\"`\[]|dropDatabase\(|\.drop\(\))",
        re.IGNORECASE)),
)

# a file a request writes whose path says what it is
PATH_RULES: tuple[tuple[Risk, re.Pattern[str]], ...] = (
    (Risk.MIGRATION, re.compile(r"(?:^|/)(?:migrations?|alembic|db/migrate)/")),
)

# words that run the command after them (with their own options first)
_WRAPPERS = frozenset({"sudo", "doas", "env", "nohup", "time", "nice", "ionice", "exec",
                       "command", "xargs", "timeout", "stdbuf", "chronic", "watch", "then",
                       "do", "else", "!", "builtin", "if", "elif", "while", "until"})
_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "fish", "ash"})
_DOWNLOADS = frozenset({"curl", "wget", "fetch", "aria2c", "http", "xh"})
_SOURCING = frozenset({"eval", "source", "."})
_EXEC_FLAGS = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>"})
_QUIET_TARGETS = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/fd/")

# one word (quoted parts and escapes glued to it) or one operator; every repetition is
# possessive, and an unmatched quote is a word of its own, so no input backtracks
_WORD = re.compile(
    r"""(?P<word>(?:[^\s'"\\;&|()<>]++|'[^']*+'|"(?:[^"\\]++|\\.)*+"|\\.?|['"])++)"""
    r"""|(?P<op>&>>|&>|>>|>\||&&|\|\||[;&|()<>\n])|[^\S\n]++""",
    re.DOTALL,
)
_UNQUOTE = re.compile(r"""'([^']*+)'|"((?:[^"\\]++|\\.)*+)"|\\(.)""", re.DOTALL)
_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", "\n"})
_LIST_ENDS = frozenset({";", "&&", "||", "&", "\n"})
_MAX_DEPTH = 3


def _unquote(word: str) -> str:
    return _UNQUOTE.sub(lambda m: m.group(1) or m.group(2) or m.group(3) or "", word)


@dataclass(slots=True)
class _Command:
    """One simple command: its words, where its command word is, and its redirections."""

    words: list[str]
    start: int = 0
    targets: list[str] | None = None
    ends_list: bool = False  # the next command is in another list (not piped from this)


def _commands(script: str) -> Iterator[_Command]:
    """The simple commands of `script` (lexed once, left to right)."""
    command = _Command([])
    redirect = False
    for match in _WORD.finditer(script):
        op = match.group("op")
        if op is not None:
            if op in _SEPARATORS:
                command.ends_list = op in _LIST_ENDS
                yield command
                command = _Command([])
            elif op in _REDIRECTS or op == ">":
                redirect = True
            continue
        word = match.group("word")
        if word is None:
            continue
        if redirect:
            command.targets = [*(command.targets or []), _unquote(word)]
            redirect = False
        else:
            command.words.append(_unquote(word))
    yield command


def _command_start(words: Sequence[str], start: int = 0) -> int:
    """Where the command word is: after assignments and wrappers (and their options)."""
    i = start
    while i < len(words):
        word = words[i]
        name = posixpath.basename(word)
        if "=" in word and not word.startswith("-") and word.split("=", 1)[0].isidentifier():
            i += 1
        elif name in _WRAPPERS:
            i += 1
            while i < len(words) and (words[i].startswith("-") or words[i][:1].isdigit()):
                i += 1
        else:
            return i
    return i


def _command_name(word: str) -> str:
    return posixpath.basename(word)


_COMPILED = tuple((rule, tuple(re.compile(w) for w in rule.words)) for rule in COMMAND_RULES)
# any rule's command word: most commands start none, and are done with one match
_FIRST_WORDS = re.compile("|".join(f"(?:{rule.words[0]})" for rule in COMMAND_RULES))


def _match_rules(words: Sequence[str], start: int, end: int | None = None) -> set[Risk]:
    """Every command rule whose words appear in order in `words[start:end]`, the first as
    the command word; and (when `end` is None) those of the commands `find -exec` runs, to
    their `;` or `+`."""
    found: set[Risk] = set()
    nested = end is not None
    end = len(words) if end is None else end
    if start >= end:
        return found
    name = _command_name(words[start])
    if name == "find" and not nested:
        i = start + 1
        while i < end:
            if words[i] in _EXEC_FLAGS:
                stop = next((j for j in range(i + 1, end) if words[j] in (";", "+")), end)
                found |= _match_rules(words, _command_start(words, i + 1), stop)
                i = stop
            i += 1
    if not _FIRST_WORDS.fullmatch(name) and not _FIRST_WORDS.fullmatch(words[start]):
        return found
    for rule, patterns in _COMPILED:
        if not patterns[0].fullmatch(name) and not patterns[0].fullmatch(words[start]):
            continue
        at = 1
        for word in words[start + 1:end]:
            if at == len(patterns):
                break
            if patterns[at].fullmatch(word):
                at += 1
        if at == len(patterns):
            found.add(rule.risk)
    return found


def command_risks(command: str, cwd: str | None, *, depth: int = 0) -> set[Risk]:
    """The risks of a shell command run in `cwd`."""
    risks: set[Risk] = set()
    downloaded = False  # a download earlier in this list, whose output a shell may read
    bare_shell = False  # a shell with no script earlier in this list (`bash <(curl …)`)
    for cmd in _commands(command):
        words = cmd.words
        start = _command_start(words)
        if start < len(words) or cmd.targets:
            risks |= _match_rules(words, start)
            name = _command_name(words[start]) if start < len(words) else ""
            if any(_command_name(w) == "sudo" or _command_name(w) == "doas"
                   for w in words[:start]):
                risks.add(Risk.SUDO)
            script = _script_of(words, start)
            if script is not None and depth < _MAX_DEPTH:
                risks |= command_risks(script, cwd, depth=depth + 1)
                if script.lstrip().startswith(("$(", "`")) and _downloads(script):
                    risks.add(Risk.PIPE_TO_SHELL)
            if name in _DOWNLOADS:
                downloaded = True
                if bare_shell:
                    risks.add(Risk.PIPE_TO_SHELL)
            elif (name in _SHELLS or name in _SOURCING) and script is None:
                if downloaded:
                    risks.add(Risk.PIPE_TO_SHELL)
                bare_shell = bare_shell or not any(
                    not w.startswith("-") for w in words[start + 1:])
            targets = list(cmd.targets or [])
            if name == "tee":
                targets += [w for w in words[start + 1:] if not w.startswith("-")]
            if any(outside(t, cwd) for t in targets if not t.startswith(_QUIET_TARGETS)):
                risks.add(Risk.OUTSIDE_PROJECT)
        if cmd.ends_list:
            downloaded = bare_shell = False
    return risks


def _script_of(words: Sequence[str], start: int) -> str | None:
    """The script a shell's `-c` (or `eval`) runs, when this command has one."""
    if start >= len(words):
        return None
    name = _command_name(words[start])
    if name == "eval":
        return " ".join(words[start + 1:])
    if name not in _SHELLS:
        return None
    for i in range(start + 1, len(words) - 1):
        flag = words[i]
        if flag.startswith("-") and not flag.startswith("--") and "c" in flag:
            return words[i + 1]
    return None


def _downloads(script: str) -> bool:
    return any(_command_name(c.words[s]) in _DOWNLOADS
               for c in _commands(script.lstrip("$(`"))
               if (s := _command_start(c.words)) < len(c.words))


def outside(path: str, cwd: str | None) -> bool:
    """Whether `path` (absolute, `~/…`, or relative to `cwd`) is outside `cwd`."""
    if not cwd or not path:
        return False
    if path.startswith("~"):
        return True
    full = posixpath.normpath(posixpath.join(cwd, path))
    root = posixpath.normpath(cwd)
    return full != root and not full.startswith(root.rstrip("/") + "/")


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping) and depth < 8:
        for inner in value.values():
            yield from _strings(inner, depth + 1)
    elif isinstance(value, (list, tuple)) and depth < 8:
        for inner in value:
            yield from _strings(inner, depth + 1)


def written_paths(tool_input: Mapping[str, Any]) -> list[str]:
    """The files a file tool (or a patch) writes: its own path and each change's."""
    paths: list[str] = []
    for key in ("file_path", "path", "notebook_path"):
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            paths.append(value)
    changes = tool_input.get("changes")
    if isinstance(changes, list):
        for change in changes:
            if isinstance(change, Mapping):
                for key in ("path", "move_path"):
                    value = change.get(key)
                    if isinstance(value, str) and value:
                        paths.append(value)
    return list(dict.fromkeys(paths))


def risk_tags(tool: str, tool_input: Mapping[str, Any], cwd: str | None) -> tuple[Risk, ...]:
    """The risks of a request, in the table's order (`Risk`'s). Decides nothing."""
    risks: set[Risk] = set()
    command = tool_input.get("command")
    if isinstance(command, list):
        command = " ".join(str(c) for c in command)
    if isinstance(command, str):
        risks |= command_risks(command, _cwd_of(tool_input, cwd))
    else:
        for path in written_paths(tool_input):
            if outside(path, cwd):
                risks.add(Risk.OUTSIDE_PROJECT)
            risks.update(risk for risk, rule in PATH_RULES if rule.search(path))
    for text in _strings(tool_input):
        risks.update(risk for risk, rule in TEXT_RULES if rule.search(text))
    return tuple(risk for risk in Risk if risk in risks)


def _cwd_of(tool_input: Mapping[str, Any], cwd: str | None) -> str | None:
    own = tool_input.get("cwd")
    return own if isinstance(own, str) and own else cwd
