"""Permission modes: which a person may choose, from where, and what each means per agent.

A mode is named in Claude Code's words (`default`, `plan`, `acceptEdits`, and the modes that
never ask a person: `bypassPermissions`, `dontAsk`, `auto`). Claude takes them as they are
(`set_permission_mode`), an ACP agent as a mode id (`session/set_mode`), and Codex as a
per-turn approval policy and collaboration mode (`codex_turn_settings`). A mode that never
asks is refused from chat unless `[approvals] allow_bypass_from_chat = true`: a tap on a
phone must not take the person out of every later decision.
"""

from __future__ import annotations

from enum import StrEnum

from bridge.errors import BridgeError


class Mode(StrEnum):
    DEFAULT = "default"
    PLAN = "plan"
    ACCEPT_EDITS = "acceptEdits"
    BYPASS = "bypassPermissions"
    DONT_ASK = "dontAsk"
    AUTO = "auto"


#: modes in which the agent never asks a person
NEVER_ASK = frozenset({Mode.BYPASS, Mode.DONT_ASK, Mode.AUTO})
#: what chat offers (the others only with `allow_bypass_from_chat`)
CHAT_MODES = (Mode.DEFAULT, Mode.PLAN, Mode.ACCEPT_EDITS)
BYPASS_KEY = "[approvals] allow_bypass_from_chat"


class ModeError(BridgeError):
    """A mode that does not exist, or that may not be chosen from where it was asked."""


def parse_mode(text: str, *, from_chat: bool, allow_bypass: bool) -> Mode:
    """The mode `text` names (case-insensitive); `ModeError` saying what is offered."""
    wanted = text.strip()
    found = next((m for m in Mode if m.value.lower() == wanted.lower()), None)
    offered = ", ".join(m.value for m in CHAT_MODES)
    if found is None:
        raise ModeError(f"unknown mode {wanted!r}; modes: {offered}")
    if found in NEVER_ASK and from_chat and not allow_bypass:
        raise ModeError(f"{found.value} never asks before acting, so it is not offered from "
                        f"chat (set {BYPASS_KEY} = true to allow it, or use agent-bridge mode "
                        f"on the daemon's machine); modes: {offered}")
    return found


def codex_turn_settings(mode: str, configured_policy: str) -> tuple[str, str]:
    """Codex's (approvalPolicy, collaboration mode) for a turn in `mode`: plan is Codex's
    plan collaboration mode; acceptEdits lets the sandbox take edits in the workspace
    (`on-request` asks only to leave it); a mode that never asks is `never`."""
    match mode:
        case Mode.PLAN:
            return configured_policy, "plan"
        case Mode.ACCEPT_EDITS:
            return "on-request", "default"
        case Mode.BYPASS | Mode.AUTO:
            return "never", "default"
        case Mode.DONT_ASK:
            return "never", "default"
        case _:
            return configured_policy, "default"
