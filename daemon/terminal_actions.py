"""Terminal sessions from chat: `/sessions local`, `/adopt ID [PROMPT] [--force]` and the
Adopt / Adopt anyway buttons. Who may act was checked by the caller (`daemon/actions.py`)."""

from __future__ import annotations

from bridge.actions import ButtonAction, Verb
from bridge.approvals import Actor
from bridge.render import Button, shorten
from bridge.render_terminal import render_terminal_list
from bridge.surface import Reply
from daemon.adopting import StillAttached
from daemon.frontdoor import FrontDoor


async def terminal_list(hub: FrontDoor) -> Reply:
    """The terminal sessions the bridge does not run, newest first, with Adopt buttons."""
    found = await hub.terminal_sessions()
    text, buttons = render_terminal_list(found.sessions, now=hub.clock(),
                                         redactor=hub.redactor)
    if found.notes:
        text += "\n" + "\n".join(f"⚠ {note}" for note in found.notes)
    return Reply(text=shorten(text, 3500, hub.redactor), buttons=buttons)


async def adopt(hub: FrontDoor, wanted: str, prompt: str | None, actor: Actor, *,
                force: bool, tap: bool = False) -> Reply:
    """Adopt `wanted`; while a terminal holds it, say so and offer the confirm button."""
    try:
        session = await hub.adopt(wanted, prompt, actor=actor, force=force)
    except StillAttached as e:
        key = e.session.key
        return Reply(text=f"{e.message}\nTap Adopt anyway, or send /adopt {key} --force.",
                     buttons=((Button("Adopt anyway", ButtonAction(Verb.ADOPT_FORCE, key)),),),
                     alert=False)
    if tap:
        return Reply(text=f"Adopted as {session.id}; follow it in its thread.")
    return Reply(text=f"Adopted as {session.id} in {session.project} ({session.agent}); "
                      "follow it in its thread.")
