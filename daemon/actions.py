"""What people ask from chat, carried out through the hub, answered in plain words.

Adapters hand over neutral `Incoming` actions; this module resolves which session a thread
belongs to, checks who may act, calls the hub, and returns the `Reply` to show. Taps are
handled idempotently: a second tap on a decided card gets "already decided by …".
Only what happens in the surface's own chats or channels acts — its home chat and the chats
projects are routed to (`places`): a card forwarded elsewhere, a private chat or another
workspace decides nothing, whoever taps it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from bridge.actions import (
    APPROVAL_VERBS,
    QUESTION_VERBS,
    VERB_DECISIONS,
    ButtonAction,
    Verb,
    decode_button,
)
from bridge.approvals import AccessPolicy, Actor
from bridge.commands import Command, CommandError, CommandName, help_text, parse_command
from bridge.events import DecisionKind
from bridge.model import SessionView
from bridge.plans import FEEDBACK_PROMPT, is_plan
from bridge.refs import MessageRef, ThreadRef, session_of
from bridge.render import Button, clock, render_session_list, render_status_card, shorten
from bridge.surface import Incoming, IncomingFile, IncomingKind, Reply
from daemon import terminal_actions as terminal
from daemon.errors import DaemonError
from daemon.frontdoor import FrontDoor
from daemon.questions import QuestionService
from daemon.redaction import redact_text
from daemon.uploads import Fetch

log = logging.getLogger(__name__)

# how long a reply to a message of ours not stored yet waits for its reference
REF_WAIT = 3.0
NOT_ALLOWED = "You are not allowed to act on this bridge."
_INTERRUPTED = ("Interrupting {sid}'s turn; the session stays: reply here to continue "
                "(/stop ends it).")
_MID_TURN_STEERED = "Added to the running turn (Codex turn/steer)."
_MID_TURN_QUEUED = "Queued: the agent reads it when the running turn ends."
AWAY_ON = ("Away: permission requests of terminal sessions (with agent-bridge hooks "
           "installed) come here as cards. /back when you are at the desk.")
AWAY_OFF = "Back: terminal sessions ask in their terminal again."
ELSEWHERE = ("This bridge acts only in its own chat or channel: nothing done here counts. "
             "Use the bridge there.")


def _nowhere() -> frozenset[str]:
    return frozenset()


class ActionsHub(FrontDoor, Protocol):
    """What chat actions use of the daemon beyond the front door's: who may act, re-asking,
    and diffs on request."""

    @property
    def policy(self) -> AccessPolicy: ...
    async def reask(self, session_id: str, *, actor: Actor) -> SessionView: ...
    async def request_diff(self, session_id: str, *, surface: str, actor: Actor,
                           turn: int | None = None) -> None: ...
    @property
    def questions(self) -> QuestionService: ...
    def steers(self, session_id: str) -> bool: ...
    async def receive_files(self, session_id: str, files: tuple[IncomingFile, ...],
                            caption: str, *, actor: Actor, fetch: Fetch) -> Reply: ...
    async def resume_at_reset(self, session_id: str, *, actor: Actor) -> float: ...
    async def cancel_resume(self, session_id: str, *, actor: Actor) -> bool: ...
    async def set_verbose(self, session_id: str, on: bool, *, actor: Actor) -> None: ...
    async def set_away(self, away: bool, *, actor: Actor) -> bool: ...


@dataclass
class ActionHandler:
    hub: ActionsHub
    surface: str
    bot_username: str | None = None
    # where actions count: the surface's home chat and the chats projects are routed to, as
    # `Incoming.place` names them, read when an action arrives (empty refuses all)
    places: Callable[[], frozenset[str]] = _nowhere
    # who was asked for a deny reason: (user, thread) → approval id
    awaiting_reason: dict[tuple[str, str | None], str] = field(default_factory=dict)
    # who tapped "Other…" on a question: (user, thread) → question id
    awaiting_answer: dict[tuple[str, str | None], str] = field(default_factory=dict)
    # the surface's `fetch_file`, for files sent in a thread (None: files are not taken)
    fetch: Fetch | None = None

    async def __call__(self, incoming: Incoming) -> Reply | None:
        try:
            reply = await self._handle(incoming)
        except DaemonError as e:
            reply = Reply(text=e.message, alert=incoming.kind is IncomingKind.TAP)
        except Exception:
            log.exception("handling %s from %s failed", incoming.kind, self.surface)
            reply = Reply(text="Something went wrong on the bridge; see its log.")
        if reply is None:
            return None
        return replace(reply, text=await redact_text(self.hub.redactor, reply.text))

    def allowed(self, actor: Actor) -> bool:
        return self.hub.policy.may_act(actor)

    def in_our_chats(self, incoming: Incoming) -> bool:
        """Whether the action happened in one of the places where actions count."""
        return incoming.place is not None and incoming.place in self.places()

    async def _handle(self, incoming: Incoming) -> Reply | None:
        if incoming.kind is IncomingKind.TAP:
            return await self._tap(incoming)
        if incoming.kind is IncomingKind.REASON:
            return await self._reason(incoming)
        if not self.in_our_chats(incoming):
            # a command addressed to us gets told why nothing happens; talk is not ours
            if incoming.kind is IncomingKind.COMMAND and parse_command(
                    incoming.text, bot_username=self.bot_username) is not None:
                return Reply(text=ELSEWHERE)
            return None
        thread_session = await self.session_for(incoming.thread, incoming.reply_to,
                                                reply_to_ours=incoming.reply_to_ours)
        if incoming.kind is IncomingKind.COMMAND:
            parsed = parse_command(incoming.text, bot_username=self.bot_username,
                                   thread_session=thread_session)
            if parsed is None:
                return None
            if isinstance(parsed, CommandError):
                return Reply(text=parsed.message)
            if parsed.name is CommandName.HELP:
                return Reply(text=help_text())
            if not self.allowed(incoming.actor):
                return Reply(text=NOT_ALLOWED)
            return await self._command(parsed, incoming)
        # a plain message: a deny reason we asked for, or a reply continuing the session
        if not self.allowed(incoming.actor):
            return None  # strangers talking in the group are not our business
        if incoming.files:  # a photo, file or voice note (its caption in `text`)
            if thread_session is None or self.fetch is None:
                return None  # outside a session's thread there is nobody to give it to
            return await self.hub.receive_files(thread_session, incoming.files, incoming.text,
                                                actor=incoming.actor, fetch=self.fetch)
        key = (incoming.actor.user_id, incoming.thread)
        question_id = self.awaiting_answer.pop(key, None)
        if question_id is not None:
            return await self._typed_answer(question_id, incoming)
        approval_id = self.awaiting_reason.pop(key, None)
        if approval_id is not None:
            result = await self.hub.decide(approval_id, DecisionKind.DENY, actor=incoming.actor,
                                           reason=incoming.text.strip() or None)
            return Reply(text=result.message)
        if thread_session is None:
            return None
        before = await self.hub.store.session(thread_session)
        in_turn = before.state.value in ("running", "waiting_approval")
        steers = in_turn and self.hub.steers(thread_session)
        session = await self.hub.send(thread_session, incoming.text, actor=incoming.actor)
        if in_turn:  # the thread says where a message sent mid-turn went
            return Reply(text=_MID_TURN_STEERED if steers else _MID_TURN_QUEUED)
        if session.state.value in ("running", "starting", "waiting_approval"):
            return None  # the status card shows it; no need to chatter
        return Reply(text=f"Sent to {session.id}.")

    async def session_for(self, thread: str | None, reply_to: str | None, *,
                          reply_to_ours: bool = False) -> str | None:
        """The session a thread or a replied-to message belongs to. A reply to one of our
        own messages that is not known yet waits a moment for it: a person can answer a
        message before delivery has stored what it posted."""
        store = self.hub.store
        for ref in (thread, reply_to):
            if ref:
                key = await store.find_ref(self.surface, ref, ThreadRef.PREFIX)
                if key is None:
                    key = await store.find_ref(self.surface, ref, MessageRef.PREFIX)
                if key is not None:
                    return session_of(key)
        if reply_to and reply_to_ours:
            key = await store.find_ref_soon(self.surface, reply_to, MessageRef.PREFIX,
                                            timeout=REF_WAIT)
            if key is not None:
                return session_of(key)
        return None

    async def _tap(self, incoming: Incoming) -> Reply:
        action = decode_button(incoming.payload)
        if action is None:
            return Reply(text="This button is no longer valid.", alert=True)
        if not self.in_our_chats(incoming):
            return Reply(text=ELSEWHERE, alert=True)
        if not self.allowed(incoming.actor):
            return Reply(text=NOT_ALLOWED, alert=True)
        if action.verb in APPROVAL_VERBS:
            return await self._approval_tap(action, incoming)
        if action.verb in QUESTION_VERBS:
            return await self._question_tap(action, incoming)
        return await self._session_tap(action, incoming)

    async def _question_tap(self, action: ButtonAction, incoming: Incoming) -> Reply:
        """An option chosen (or toggled), Submit, or "Other…": the next message here is
        the answer."""
        questions = self.hub.questions
        actor = incoming.actor
        question = await self.hub.store.question(action.target)
        if action.verb is Verb.QUESTION_OTHER and question.state.value == "pending":
            self.awaiting_answer[(actor.user_id, incoming.thread)] = question.id
            return Reply(text="Send your answer as your next message here.", force_reply=True)
        if action.verb is Verb.QUESTION_OPTION and action.index is not None:
            if question.multi_select:
                result = await questions.toggle(question.id, action.index, actor=actor)
            elif 0 <= action.index < len(question.options):
                result = await questions.answer(
                    question.id, actor=actor, labels=(question.options[action.index].label,))
            else:
                return Reply(text="This button is no longer valid.", alert=True)
        else:
            result = await questions.submit(question.id, actor=actor)
        return Reply(text=result.message, alert=not result.ok)

    async def _approval_tap(self, action: ButtonAction, incoming: Incoming) -> Reply:
        if action.verb is Verb.DENY_REASON:
            approval = await self.hub.store.approval(action.target)
            if approval.state.value != "pending":
                result = await self.hub.decide(action.target, DecisionKind.DENY,
                                               actor=incoming.actor)
                return Reply(text=result.message, alert=True)
            self.awaiting_reason[(incoming.actor.user_id, incoming.thread)] = action.target
            ask = FEEDBACK_PROMPT if is_plan(approval.tool) else (
                "Send the reason as your next message here.")
            return Reply(text=ask, force_reply=True)
        kind = VERB_DECISIONS[action.verb]
        result = await self.hub.decide(action.target, kind, actor=incoming.actor,
                                       choice=action.index)
        return Reply(text=result.message, alert=not result.ok)

    async def _reason(self, incoming: Incoming) -> Reply:
        """A deny reason from a form: it denies the approval the form was opened for, or is
        refused; it never becomes a prompt (a second form for a decided approval)."""
        action = decode_button(incoming.payload)
        if action is None or action.verb not in (Verb.DENY_REASON, Verb.QUESTION_OTHER):
            return Reply(text="This form is no longer valid.", alert=True)
        if not self.in_our_chats(incoming):
            return Reply(text=ELSEWHERE, alert=True)
        if not self.allowed(incoming.actor):
            return Reply(text=NOT_ALLOWED, alert=True)
        if action.verb is Verb.QUESTION_OTHER:  # the reply to "send your answer"
            for key, waiting in list(self.awaiting_answer.items()):
                if waiting == action.target:
                    del self.awaiting_answer[key]
            return await self._typed_answer(action.target, incoming)
        for key, waiting in list(self.awaiting_reason.items()):
            if waiting == action.target:  # answered here: a later message is not the reason
                del self.awaiting_reason[key]
        result = await self.hub.decide(action.target, DecisionKind.DENY, actor=incoming.actor,
                                       reason=incoming.text.strip() or None)
        return Reply(text=result.message, alert=not result.ok)

    async def _typed_answer(self, question_id: str, incoming: Incoming) -> Reply:
        """A question answered by a message. A secret one is never echoed, and the
        message that holds it is deleted where the platform allows."""
        answered = await self.hub.answer(question_id, actor=incoming.actor, text=incoming.text)
        return Reply(text=answered.message, alert=not answered.ok,
                     delete_message=answered.question.is_secret)

    async def _session_tap(self, action: ButtonAction, incoming: Incoming) -> Reply:
        sid = action.target
        actor = incoming.actor
        match action.verb:
            case Verb.STOP:
                session = await self.hub.stop(sid, actor=actor)
                return Reply(text=f"{sid} is {session.state.value}.")
            case Verb.INTERRUPT:
                await self.hub.interrupt(sid, actor=actor)
                return Reply(text=_INTERRUPTED.format(sid=sid))
            case Verb.ARCHIVE:
                await self.hub.set_archived(sid, True, actor=actor)
                return Reply(text=f"{sid} archived.")
            case Verb.UNARCHIVE:
                await self.hub.set_archived(sid, False, actor=actor)
                return Reply(text=f"{sid} is back.")
            case Verb.RESUME:
                return await self._resume(sid, None, actor)
            case Verb.DIFF:
                return await self._diff(sid, incoming)
            case Verb.STATUS:
                return await self._status(sid)
            case Verb.REASK:
                await self.hub.reask(sid, actor=actor)
                return Reply(text=f"Asked {sid} to request it again.")
            case Verb.ADOPT | Verb.ADOPT_FORCE:  # `sid` is a terminal session's key here
                return await terminal.adopt(self.hub, sid, None, actor, tap=True,
                                            force=action.verb is Verb.ADOPT_FORCE)
            case Verb.RESUME_AT_RESET:
                return await self._at_reset(sid, actor, cancel=False)
            case Verb.CANCEL_RESUME:
                return await self._at_reset(sid, actor, cancel=True)
        return Reply(text="This button is no longer valid.", alert=True)

    async def _command(self, command: Command, incoming: Incoming) -> Reply | None:
        actor = incoming.actor
        sid = command.session_id
        match command.name:
            case CommandName.NEW:
                assert command.project is not None and command.prompt is not None
                session = await self.hub.new_session(
                    command.project, command.prompt, agent=command.agent, actor=actor,
                    worktree=True if command.worktree else None, plan=command.plan,
                )
                planning = " in plan mode" if command.plan else ""
                return Reply(text=f"Started {session.id} in {session.project} "
                                  f"({session.agent}){planning}; follow it in its thread.")
            case CommandName.SESSIONS if command.local:
                return await terminal.terminal_list(self.hub)
            case CommandName.SESSIONS:
                return await self._sessions(command.include_archived)
            case CommandName.ADOPT:
                assert command.argument is not None
                return await terminal.adopt(self.hub, command.argument, command.prompt, actor,
                                            force=command.force)
            case CommandName.RESUME:
                assert sid is not None
                return await self._resume(sid, command.prompt, actor)
            case CommandName.STOP:
                assert sid is not None
                session = await self.hub.stop(sid, actor=actor)
                return Reply(text=f"{sid} is {session.state.value}.")
            case CommandName.INTERRUPT:
                assert sid is not None
                await self.hub.interrupt(sid, actor=actor)
                return Reply(text=_INTERRUPTED.format(sid=sid))
            case CommandName.MODE:
                assert sid is not None and command.argument is not None
                session = await self.hub.set_mode(sid, command.argument, actor=actor)
                return Reply(text=f"{sid}: mode {session.mode}.")
            case CommandName.MODEL:
                assert sid is not None and command.argument is not None
                session = await self.hub.set_model(sid, command.argument, actor=actor)
                return Reply(text=f"{sid}: model {session.model}.")
            case CommandName.ARCHIVE | CommandName.UNARCHIVE:
                assert sid is not None
                archived = command.name is CommandName.ARCHIVE
                await self.hub.set_archived(sid, archived, actor=actor)
                return Reply(text=f"{sid} {'archived' if archived else 'is back'}.")
            case CommandName.STATUS:
                assert sid is not None
                return await self._status(sid)
            case CommandName.DIFF:
                assert sid is not None
                return await self._diff(sid, incoming, command.turn)
            case CommandName.AWAY | CommandName.BACK:
                away = await self.hub.set_away(command.name is CommandName.AWAY, actor=actor)
                return Reply(text=AWAY_ON if away else AWAY_OFF)
            case CommandName.DIGEST:
                await self.hub.send_digest(surface=self.surface, requested=True)
                return None
            case CommandName.VERBOSE:
                assert sid is not None and command.argument is not None
                on = command.argument.lower() == "on"
                await self.hub.set_verbose(sid, on, actor=actor)
                return Reply(text=f"{sid}: progress message {'on' if on else 'off'}.")
            case CommandName.ATRESET:
                assert sid is not None
                return await self._at_reset(sid, actor, cancel=command.argument == "cancel")
            case CommandName.HELP:
                return Reply(text=help_text())

    async def _resume(self, sid: str, prompt: str | None, actor: Actor) -> Reply:
        if prompt:
            await self.hub.send(sid, prompt, actor=actor)
            return Reply(text=f"Continuing {sid}.")
        session = await self.hub.store.session(sid)
        if sid in self.hub.runners:
            await self.hub.set_archived(sid, False, actor=actor)
            return Reply(text=f"{sid} is {session.state.value}: send a message in its thread.")
        await self.hub.resume(sid, None, actor=actor)
        return Reply(text=f"{sid} is back: send a message in its thread to continue.")

    async def _at_reset(self, sid: str, actor: Actor, *, cancel: bool) -> Reply:
        if cancel:
            if await self.hub.cancel_resume(sid, actor=actor):
                return Reply(text=f"Cancelled the scheduled resume of {sid}.")
            return Reply(text=f"{sid} has no scheduled resume.")
        when = await self.hub.resume_at_reset(sid, actor=actor)
        return Reply(text=f"{sid} resumes {clock(when)}; /atreset {sid} cancel cancels it.")

    async def _status(self, sid: str) -> Reply:
        session = await self.hub.store.session(sid)
        pending = len(await self.hub.pending_approvals(sid))
        questions = len(await self.hub.pending_questions(sid))
        card = render_status_card(session, now=self.hub.clock(), pending=pending,
                                  questions=questions, redactor=self.hub.redactor)
        return Reply(text=card.text, buttons=card.buttons)

    async def _sessions(self, include_archived: bool) -> Reply:
        sessions = await self.hub.store.sessions(include_archived=include_archived)
        if not sessions:
            return Reply(text="No sessions. Start one with /new PROJECT PROMPT.")
        shown = sessions[:20]
        text = render_session_list(shown, now=self.hub.clock(), redactor=self.hub.redactor)
        if len(sessions) > len(shown):
            text += f"\n… and {len(sessions) - len(shown)} more"
        rows = tuple(
            (
                Button(f"{s.id} status", ButtonAction(Verb.STATUS, s.id)),
                Button("Unarchive" if s.archived else "Archive",
                       ButtonAction(Verb.UNARCHIVE if s.archived else Verb.ARCHIVE, s.id)),
            )
            for s in shown[:10]
        )
        return Reply(text=shorten(text, 3500, self.hub.redactor), buttons=rows)

    async def _diff(self, sid: str, incoming: Incoming, turn: int | None = None) -> Reply:
        await self.hub.store.session(sid)
        await self.hub.request_diff(sid, surface=self.surface, actor=incoming.actor, turn=turn)
        which = f"turn {turn} of {sid}" if turn is not None else sid
        return Reply(text=f"Preparing the diff of {which}…")
