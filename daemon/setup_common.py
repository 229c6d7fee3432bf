"""What `agent-bridge setup telegram|slack` share: the config file they change, the change
shown as a diff and written only once the person agrees, and the terminal they talk through.

Secrets are never written: the config names the environment variables that hold them.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bridge.config import load_config
from bridge.config_edit import TomlValue, set_table_keys
from bridge.errors import ConfigError
from daemon import paths
from daemon.errors import SetupFailed


@dataclass(frozen=True, slots=True, kw_only=True)
class Terminal:
    """Where setup talks: `say` prints a line at once (tests read it while setup waits),
    `ask` reads an answer (None at end of input)."""

    say: Callable[[str], None]
    ask: Callable[[str], str | None]


def console() -> Terminal:
    def say(line: str) -> None:
        print(line, flush=True)

    def ask(prompt: str) -> str | None:
        try:
            return input(prompt)
        except EOFError:
            return None

    return Terminal(say=say, ask=ask)


def config_target(config_arg: str | None, env: Mapping[str, str]) -> Path:
    """The file setup changes: the one `run` would read (created when it names one that
    does not exist yet), else the default path."""
    for given in (config_arg, env.get("AGENT_BRIDGE_CONFIG")):
        if given:
            path = Path(given).expanduser()
            if path.exists() and not path.is_file():
                raise SetupFailed(f"{path} is not a file: name the config file to write")
            return path
    return paths.default_config_path(env)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8") if path.exists() else ""
    except OSError as e:
        raise SetupFailed(f"cannot read the config {path}: {e}") from e


def apply_change(terminal: Terminal, path: Path, table: str, values: Mapping[str, TomlValue],
                 *, yes: bool) -> bool:
    """Show the change of `[table]` in `path` as a diff and write it once the person says
    yes (at once with `yes`). The new text must load as a config `run` accepts. Returns
    whether the file was written (False: the person said no, or nothing changed)."""
    old = read_text(path)
    try:
        new = set_table_keys(old, table, values)
        load_config(new, source=str(path))
    except ConfigError as e:
        raise SetupFailed(f"cannot change {path}: {e}") from e
    if new == old:
        terminal.say(f"{path} already says so: nothing to change.")
        return False
    diff = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                fromfile=f"{path} (now)" if old else "/dev/null",
                                tofile=f"{path} (after)")
    terminal.say("The config change:")
    terminal.say("".join(diff).rstrip("\n"))
    if not yes:
        answer = terminal.ask(f"Write this to {path}? [y/N] ")
        if answer is None:
            raise SetupFailed("no answer (the input is closed): nothing written; run again "
                              "with --yes to write without asking")
        if answer.strip().lower() not in ("y", "yes"):
            terminal.say("Nothing written. Run again and answer y, or add the lines above "
                         "yourself.")
            return False
    write_atomically(path, new)
    terminal.say(f"Written: {path}")
    return True


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename: a crash leaves the old file or the new one.
    An existing file keeps its mode; a new one is private to its owner."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, mode)  # noqa: PTH101
            os.replace(temp, path)  # noqa: PTH105
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise SetupFailed(f"cannot write {path}: {e}") from e


def hide(text: str, *secrets: str) -> str:
    """`text` (an error from a client library) with the secrets in it masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "…")
    return text
