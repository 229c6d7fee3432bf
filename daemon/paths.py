"""Where the config, the state, the database and the control socket live."""

from __future__ import annotations

import errno
import os
import shlex
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bridge.config import Config, load_config
from bridge.errors import ConfigError
from daemon.errors import DaemonError


def find_config(arg: str | None, env: Mapping[str, str]) -> Path | None:
    """--config, else $AGENT_BRIDGE_CONFIG, else $XDG_CONFIG_HOME/agent-bridge/config.toml.

    A path given explicitly must exist; the default one may be absent (defaults apply).
    """
    candidates = ((arg, "--config"), (env.get("AGENT_BRIDGE_CONFIG"), "AGENT_BRIDGE_CONFIG"))
    for given, source in candidates:
        if given:
            path = Path(given).expanduser()
            if not path.is_file():
                raise DaemonError(f"{source} names {path}, which is not a file")
            return path
    default = default_config_path(env)
    return default if default.is_file() else None


def default_config_path(env: Mapping[str, str]) -> Path:
    """Where the config is read from when neither --config nor $AGENT_BRIDGE_CONFIG names it
    (and where `setup` writes it)."""
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "agent-bridge" / "config.toml"


def read_config(config_arg: str | None, env: Mapping[str, str]) -> tuple[Config, Path | None]:
    """The config (defaults when there is no file) and the file it came from.

    Here rather than in daemon/app.py: every CLI command needs it to find the socket, and
    importing the daemon (python-telegram-bot, asyncssh, …) would triple its start time."""
    path = find_config(config_arg, env)
    if path is None:
        return load_config(""), None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DaemonError(f"cannot read the config {path}: {e}") from e
    try:
        return load_config(text, source=str(path)), path
    except ConfigError as e:
        raise ConfigError(e.key, f"{e.message} (in {path})") from e


def state_dir(config: Config, env: Mapping[str, str]) -> Path:
    if config.daemon.state_dir:
        return Path(os.path.expandvars(config.daemon.state_dir)).expanduser()
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "agent-bridge"


def socket_path(state: Path) -> Path:
    return state / "agent-bridge.sock"


def database_path(state: Path) -> Path:
    return state / "agent-bridge.db"


def lock_path(state: Path) -> Path:
    return state / "agent-bridge.lock"


# -- keeping the state private ---------------------------------------------------------
# The state holds every transcript, approval and tool input, and the socket that decides
# approvals: the directory is 0700 and each file in it 0600, whatever the umask. The
# daemon's own umask is left alone: the agents it starts inherit it.

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# The files the daemon keeps in its state directory, besides the socket: each one 0600.
DATABASE_JOURNALS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True)
class Finding:
    """What is wrong with a path of the state, and what to do. `refused`: the daemon will
    not start on it; otherwise the daemon puts it right itself when it starts."""

    message: str
    refused: bool = True


# The checks, one place for the daemon (which acts on them) and doctor (which reports them).


def _state_dir_finding(state: Path, info: os.stat_result) -> Finding | None:
    if not stat.S_ISDIR(info.st_mode):
        return Finding(f"the state directory {state} is not a directory; remove it or set "
                       "[daemon] state_dir to another path")
    if info.st_uid != os.getuid():
        return Finding(f"the state directory {state} belongs to another user (uid "
                       f"{info.st_uid}); set [daemon] state_dir to a directory of your own")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        return Finding(f"the state directory {state} is open to other users (mode {mode:o}): "
                       "the daemon makes it 700 when it starts, or run "
                       f"`chmod 700 {shlex.quote(str(state))}`", refused=False)
    return None


def _symlink_finding(path: Path) -> Finding:
    return Finding(f"{path} is a symbolic link; agent-bridge never follows one in its state "
                   f"directory. Remove it (`rm {shlex.quote(str(path))}`) and start again")


def _file_finding(path: Path, info: os.stat_result) -> Finding | None:
    if not stat.S_ISREG(info.st_mode):
        return Finding(f"{path} is not a regular file; remove it and start again")
    if info.st_uid != os.getuid():
        return Finding(f"{path} belongs to another user (uid {info.st_uid}); remove it "
                       "and start again")
    mode = stat.S_IMODE(info.st_mode)
    if mode != PRIVATE_FILE:
        return Finding(f"{path} has mode {mode:o}, not 600: the daemon makes it 600 when it "
                       f"starts, or run `chmod 600 {shlex.quote(str(path))}`", refused=False)
    return None


def socket_place_finding(path: Path, info: os.stat_result) -> Finding | None:
    """What is wrong with what lies where the control socket goes (`lstat` of it)."""
    if stat.S_ISLNK(info.st_mode):
        return Finding(f"the control socket's path {path} is a symbolic link; agent-bridge "
                       f"never follows one there. Remove it (`rm {shlex.quote(str(path))}`) "
                       "and start again")
    if not stat.S_ISSOCK(info.st_mode):
        return Finding(f"{path} is where the control socket goes, and it is not a socket; "
                       "move it away and start again")
    mode = stat.S_IMODE(info.st_mode)
    if mode != PRIVATE_FILE:
        return Finding(f"the control socket {path} has mode {mode:o}, not 600: restart the "
                       "daemon (it makes a new one), or run "
                       f"`chmod 600 {shlex.quote(str(path))}`", refused=False)
    return None


def inspect_state(state: Path) -> list[Finding]:
    """Everything `secure_state_dir`, `open_private` and the control socket would refuse or
    put right in `state`, found without changing anything. A missing path is no finding
    (the daemon creates it private)."""
    try:
        info = state.stat()
    except FileNotFoundError:
        return []
    found = _state_dir_finding(state, info)
    if found is not None and found.refused:
        return [found]
    findings = [found] if found is not None else []
    database = database_path(state)
    files = [lock_path(state), database,
             *(database.with_name(database.name + suffix) for suffix in DATABASE_JOURNALS)]
    for path in files:
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        found = _symlink_finding(path) if stat.S_ISLNK(info.st_mode) else _file_finding(path,
                                                                                          info)
        if found is not None:
            findings.append(found)
    sock = socket_path(state)
    try:
        found = socket_place_finding(sock, sock.lstat())
    except FileNotFoundError:
        found = None
    if found is not None:
        findings.append(found)
    return findings


# The daemon's side: refuse what is refused, put right the rest.


def secure_state_dir(state: Path) -> str | None:
    """Make `state` (created if missing) a directory only its owner can enter.

    An existing directory open to others is tightened to 0700 when it is ours; the note
    returned says so, for the log. One that belongs to someone else, or that cannot be
    tightened, is refused with a `DaemonError` saying what to do. `OSError` from making
    the directory is left to the caller (it knows which setting names the path)."""
    state.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    info = state.stat()  # a symlinked state dir is fine when what it points to is ours
    found = _state_dir_finding(state, info)
    if found is None:
        return None
    if found.refused:
        raise DaemonError(found.message)
    mode = stat.S_IMODE(info.st_mode)
    try:
        state.chmod(PRIVATE_DIR)
    except OSError as e:
        raise DaemonError(
            f"the state directory {state} is open to other users (mode {mode:o}) and could "
            f"not be made private: {e.strerror or e}; run `chmod 700 {shlex.quote(str(state))}`"
        ) from e
    return (f"the state directory {state} was open to other users (mode {mode:o}); "
            "made it 700: it holds transcripts and the socket that decides approvals")


def open_private(path: Path, flags: int = os.O_RDWR) -> int:
    """A descriptor of `path`, a regular file of ours made 0600 (created so when missing),
    opened without following a symlink: one in its place is refused with a `DaemonError`
    that says to remove it."""
    fd = _open_private(path, flags | os.O_CREAT)
    assert fd is not None
    return fd


def tighten_private(path: Path) -> None:
    """Make an existing `path` 0600 as `open_private` would; a missing one is fine."""
    fd = _open_private(path, os.O_RDONLY)
    if fd is not None:
        os.close(fd)


def _open_private(path: Path, flags: int) -> int | None:
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a FIFO put there
    try:
        fd = os.open(path, flags, PRIVATE_FILE)
    except FileNotFoundError:
        if flags & os.O_CREAT:
            raise
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise DaemonError(_symlink_finding(path).message) from None
        raise
    try:
        found = _file_finding(path, os.fstat(fd))  # what was opened, not what is there now
        if found is not None and found.refused:
            raise DaemonError(found.message)
        if found is not None:
            os.fchmod(fd, PRIVATE_FILE)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
