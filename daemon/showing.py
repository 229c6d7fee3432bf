"""One outbox item shown on a surface, by its intent: approval cards and their edits,
reminders, summaries with their diffs, requested diffs, texts, files, the digest. What
the texts say is `bridge/render*`; where they go (a session's thread, its steps) is
`SessionThreads`.
"""

from __future__ import annotations

import logging
from typing import Protocol

from bridge.approvals import ApprovalState
from bridge.config import Config
from bridge.diffs import DeliveryKind, package_diff, summarize_diff
from bridge.digest import DigestLine, render_digest
from bridge.limits import render_limit_notice, render_notice
from bridge.model import SessionView
from bridge.outbox import (
    OpenThread,
    PostApproval,
    PostDiff,
    PostDigest,
    PostNotice,
    PostQuestion,
    PostSummary,
    PostText,
    RefreshStatus,
    RemindApproval,
    SendFile,
    SetArchived,
    ShowPlan,
    UnknownIntent,
    UpdateApproval,
    UpdateQuestion,
    decode,
)
from bridge.questions import QuestionState
from bridge.refs import ApprovalCardRef, MessageRef, PlanRef, QuestionCardRef, ThreadRef
from bridge.render import Card, render_summary_card, topic_title
from bridge.render_outbox import (
    NO_CHANGES,
    NOTHING_NEEDS_YOU,
    diff_caption,
    diff_name,
    final_attachment,
    final_caption,
    render_diff_reply,
    render_reminder,
    turn_changes_text,
    turn_summary,
)
from bridge.render_plans import render_decision_card, render_plan_progress, request_attachment
from bridge.render_questions import render_question_card
from bridge.verify import last_check
from daemon.agents import resume_command
from daemon.changes import Changes, ChangeTracker, TurnChanges
from daemon.errors import NotFound
from daemon.grouping import CardGroups
from daemon.redaction import redact_bytes, redact_text
from daemon.store import OutboxItem
from daemon.threads import SessionThreads, ThreadsHub

log = logging.getLogger(__name__)


class ShowingHub(ThreadsHub, Protocol):
    """What showing an item uses of the daemon beyond the threads' needs: the approvals'
    config (a card's timeout), the digest's lines and a session's changes."""

    @property
    def config(self) -> Config: ...
    @property
    def changes(self) -> ChangeTracker: ...
    async def digest_lines(self) -> list[DigestLine]: ...


class ItemShower:
    """Shows outbox items on one surface, in the sessions' threads."""

    def __init__(self, hub: ShowingHub, threads: SessionThreads, groups: CardGroups) -> None:
        self.hub = hub
        self.groups = groups
        self.store = hub.store
        self.threads = threads
        self.surface = threads.surface
        self.name = threads.name
        # the plan messages posted by this process: a round's refs are stored when the
        # round ends, and a plan's next update may be in the same round
        self._plans: dict[str, str] = {}

    async def show(self, item: OutboxItem) -> dict[str, str]:
        """Show one item; returns the references to store with its delivered mark."""
        sid = item.session_id
        try:
            intent = decode(item.kind, item.payload)
        except UnknownIntent:
            log.warning("%s: unknown outbox kind %s", self.name, item.kind)
            return {}
        if isinstance(intent, PostDigest):
            await self._digest(requested=intent.requested)
            return {}
        if sid is None:
            return {}
        try:
            session = await self.store.session(sid)
        except NotFound:
            return {}
        redactor = self.hub.redactor
        match intent:
            case OpenThread():
                await self.threads.thread(sid)
            case PostApproval(approval_id=approval_id):
                approval = await self.store.approval(approval_id)
                thread = await self.threads.thread(sid)
                pending = approval.state is ApprovalState.PENDING
                ref = await self.surface.post(
                    thread, render_decision_card(approval, session, redactor=redactor),
                    notify=pending,
                    mention=session.owner_on(self.name) if pending else None)
                attached = request_attachment(approval, session, redactor=redactor)
                if attached and pending:  # the whole request, which its card could not hold
                    data = (await redact_text(redactor, attached.text)).encode()
                    await self.threads.send_file(sid, attached.filename, data, attached.caption)
                return {ApprovalCardRef(approval_id=approval.id).key: ref,
                        MessageRef(session_id=sid, message=ref).key: ref}
            case PostQuestion(question_id=question_id):
                question = await self.store.question(question_id)
                thread = await self.threads.thread(sid)
                pending = question.state is QuestionState.PENDING
                ref = await self.surface.post(
                    thread, render_question_card(question, session, redactor=redactor),
                    notify=pending,
                    mention=session.owner_on(self.name) if pending else None)
                return {QuestionCardRef(question_id=question.id).key: ref,
                        MessageRef(session_id=sid, message=ref).key: ref}
            case UpdateQuestion(question_id=question_id):
                card_ref = await self.store.get_ref(
                    self.name, QuestionCardRef(question_id=question_id).key)
                if card_ref:
                    question = await self.store.question(question_id)
                    await self.surface.edit(card_ref, render_question_card(
                        question, session, redactor=redactor))
                self.threads.dirty.add(sid)
            case UpdateApproval(approval_id=approval_id):
                card_ref = await self.store.get_ref(
                    self.name, ApprovalCardRef(approval_id=approval_id).key)
                if card_ref and not await self.groups.edit(card_ref):
                    approval = await self.store.approval(approval_id)
                    await self.surface.edit(card_ref, render_decision_card(
                        approval, session, redactor=redactor))
                self.threads.dirty.add(sid)
            case ShowPlan(key=key, steps=steps, text=text):
                card = render_plan_progress(steps, text, session, redactor=redactor)
                plan_ref = PlanRef(session_id=sid, plan_key=key).key
                shown = self._plans.get(plan_ref) or await self.store.get_ref(self.name, plan_ref)
                if shown:  # the turn's plan message, edited as the plan changes
                    await self.surface.edit(shown, card)
                    return {}
                ref = await self.surface.post(await self.threads.thread(sid), card,
                                              notify=False)
                self._plans[plan_ref] = ref
                return {plan_ref: ref, MessageRef(session_id=sid, message=ref).key: ref}
            case PostSummary():
                await self._summary(session, intent)
                self.threads.dirty.add(sid)
            case PostDiff(turn=turn):
                await self._diff(session, requested=True, turn=turn)
            case RemindApproval(approval_id=approval_id):
                approval = await self.store.approval(approval_id)
                if approval.state is ApprovalState.PENDING:
                    cfg = self.hub.config.approvals
                    await self.threads.post_long(sid, render_reminder(
                        approval, session, now=self.hub.clock(), timeout=cfg.timeout,
                        on_timeout=cfg.on_timeout, redactor=redactor))
            case SetArchived(archived=archived):
                thread = await self.threads.thread(sid)
                title = topic_title(session, redactor=redactor)
                await self.surface.set_thread(
                    thread, title=title if self.threads.titles.get(sid) != title else None,
                    open=not archived,
                )
                self.threads.titles[sid] = title
                self.threads.dirty.add(sid)
            case PostText(text=text):
                await self.threads.post_long(sid, Card(text))
            case PostNotice(text=text, limit=True):
                await self.threads.post_long(sid, render_limit_notice(
                    session, text, now=self.hub.clock(), redactor=redactor))
                self.threads.dirty.add(sid)
            case PostNotice(text=text):
                await self.threads.post_long(sid, render_notice(text, redactor))
            case SendFile(filename=filename, data=data, caption=caption):
                await self.threads.send_file(sid, filename, data, caption)
            case RefreshStatus():
                pass  # the lanes mark the session dirty; its card is edited when due
        return {}

    async def _digest(self, *, requested: bool) -> None:
        lines = await self.hub.digest_lines()
        links: dict[str, str] = {}
        for line in lines:
            thread = await self.store.get_ref(self.name, ThreadRef(session_id=line.session.id).key)
            link = self.surface.thread_link(thread) if thread else None
            if link:
                links[line.session.id] = link
        card = render_digest(lines, now=self.hub.clock(), links=links,
                             redactor=self.hub.redactor)
        if card is None:
            if requested:
                await self.surface.post("", NOTHING_NEEDS_YOU, notify=False)
            return
        await self.surface.post("", card, notify=True)

    async def _changes(self, session: SessionView) -> Changes:
        """The session's changes; when they cannot be read, none, with the reason as the
        note (the summary they belong to still goes out)."""
        try:
            return await self.hub.changes.diff(session.id)
        except Exception as e:
            log.exception("%s: could not read the changes of %s", self.name, session.id)
            return _unread(e)

    async def _turn_changes(self, session: SessionView, turn: int | None) -> TurnChanges:
        """Turn `turn`'s own change and the whole diff at its end (see `_changes`)."""
        try:
            return await self.hub.changes.turn_diff(session.id, turn)
        except Exception as e:
            log.exception("%s: could not read the changes of %s", self.name, session.id)
            return TurnChanges(turn or max(session.turns, 1), _unread(e), _unread(e))

    async def _summary(self, session: SessionView, intent: PostSummary) -> None:
        """The end-of-turn summary with the whole final message (as a `.md` file when it
        would take more than FINAL_MESSAGES messages), then the turn's own diff as an
        attachment sized for the platform (the summary has the session's whole stat)."""
        changes = await self._turn_changes(session, intent.turn)
        summary = turn_summary(
            intent,
            changes=turn_changes_text(changes.turn, changes.own.summary, changes.own.note,
                                      changes.total.summary, changes.total.note),
            verification=last_check(await self.store.turn_tools(session.id),
                                    redactor=self.hub.redactor),
            resume_command=resume_command(session),
        )
        final = summary.final_text or ""
        attached = final_attachment(session, final, self.threads.piece_limit())
        await self.threads.post_long(session.id,
                             render_summary_card(session, summary, attached=attached,
                                                 redactor=self.hub.redactor))
        if attached:
            data = (await redact_text(self.hub.redactor, final)).encode()
            await self.threads.send_file(session.id, attached, data, final_caption(session, final))
        await self._send_diff(session, changes.own.raw, quiet_when_empty=True,
                              name=diff_name(session, changes.turn))

    async def _diff(self, session: SessionView, *, requested: bool,
                    turn: int | None = None) -> None:
        if turn is None:
            changes = await self._changes(session)
        else:
            changes = (await self._turn_changes(session, turn)).own
        card, follows = render_diff_reply(session, changes.summary, changes.note, turn=turn)
        await self.threads.post_long(session.id, card)
        if follows:
            await self._send_diff(session, changes.raw, quiet_when_empty=not requested,
                                  name=diff_name(session, turn))

    async def _send_diff(self, session: SessionView, raw: bytes, *,
                         quiet_when_empty: bool, name: str) -> None:
        limits = self.surface.limits
        package = package_diff(
            await redact_bytes(self.hub.redactor, raw), name=name,
            inline_limit=limits.inline_diff, file_limit=limits.file_bytes, ref=session.id,
        )
        match package.kind:
            case DeliveryKind.INLINE:
                await self.threads.post_long(session.id, Card(package.text or ""), notify=False)
            case DeliveryKind.DOCUMENT | DeliveryKind.ZIP:
                await self.threads.send_file(session.id, package.filename or "changes.diff",
                                      package.data or b"", diff_caption(session, package))
            case DeliveryKind.TOO_LARGE:
                await self.threads.post_long(session.id, Card(package.message or ""), notify=False)
            case DeliveryKind.EMPTY:
                if not quiet_when_empty:
                    await self.threads.post_long(session.id, NO_CHANGES, notify=False)


def _unread(e: Exception) -> Changes:
    return Changes(b"", summarize_diff(b""),
                   f"could not read the changes: {type(e).__name__}: {e}", failed=True)
