"""The questions table, read back as `bridge.questions.Question`s; an answer is committed by
one conditional settle (`WHERE state = 'pending'`), the only guard against a race. A secret
question's answer is never written."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from typing import Any

import aiosqlite

from bridge.events import QuestionOption
from bridge.questions import Question, QuestionState
from daemon.errors import NotFound, StoreError
from daemon.store.database import Database
from daemon.store.sessions import new_id

QUESTION_COLUMNS = (
    "id, session_id, request_id, key, text, header, options, multi_select, is_other, "
    "is_secret, state, answer, answered_by, answered_at, reason, selected, asked_at"
)


class QuestionRepository(Database):
    async def question(self, question_id: str) -> Question:
        row = await self._fetch_one(
            f"SELECT {QUESTION_COLUMNS} FROM questions WHERE id = ?", (question_id,))
        if row is None:
            raise NotFound(
                f"no question {question_id!r}; `agent-bridge sessions` lists the pending ones")
        return _question(row)

    async def questions(self, *, session_id: str | None = None,
                        state: QuestionState | None = None) -> list[Question]:
        clauses, args = [], []
        if session_id is not None:
            clauses.append("session_id = ?")
            args.append(session_id)
        if state is not None:
            clauses.append("state = ?")
            args.append(state.value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._fetch_all(
            f"SELECT {QUESTION_COLUMNS} FROM questions {where} ORDER BY asked_at, rowid", args)
        return [_question(r) for r in rows]

    async def settle_question(self, settled: Question) -> bool:
        """Commit a settle exactly once: False when someone else settled it first."""
        async with self._transaction(urgent=True) as db:
            return await self._settle_question(db, settled)

    async def select_options(self, question: Question) -> bool:
        """Keep the options toggled on a pending question; False when it is settled."""
        async with self._transaction(urgent=True) as db:
            cur = await db.execute(
                "UPDATE questions SET selected = ? WHERE id = ? AND state = 'pending'",
                (json.dumps(list(question.selected), ensure_ascii=False), question.id))
            return cur.rowcount == 1

    @staticmethod
    async def _insert_question(db: aiosqlite.Connection, question: Question) -> Question:
        """Insert `question`, under a new id if its id is taken (returned as stored)."""
        for _ in range(20):
            try:
                await db.execute(
                    f"INSERT INTO questions ({QUESTION_COLUMNS}) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        question.id, question.session_id, question.request_id, question.key,
                        question.text, question.header,
                        json.dumps([[o.label, o.description] for o in question.options],
                                   ensure_ascii=False),
                        int(question.multi_select), int(question.is_other),
                        int(question.is_secret), question.state.value, None, None, None,
                        None, "[]", question.asked_at,
                    ),
                )
                return question
            except sqlite3.IntegrityError:
                async with db.execute(
                        "SELECT 1 FROM questions WHERE id = ?", (question.id,)) as cur:
                    if await cur.fetchone() is None:
                        raise
            question = replace(question, id=new_id())
        raise StoreError("could not find a free question id")

    @staticmethod
    async def _settle_question(db: aiosqlite.Connection, settled: Question) -> bool:
        """The conditional settle: True when the row was still pending and now is `settled`."""
        kept = None if settled.is_secret or not settled.answer else json.dumps(
            list(settled.answer), ensure_ascii=False)
        cur = await db.execute(
            "UPDATE questions SET state = ?, answer = ?, answered_by = ?, answered_at = ?, "
            "reason = ? WHERE id = ? AND state = 'pending'",
            (settled.state.value, kept, settled.answered_by, settled.answered_at,
             settled.reason, settled.id),
        )
        return cur.rowcount == 1


def _question(row: Any) -> Question:
    return Question(
        id=row["id"], session_id=row["session_id"], request_id=row["request_id"],
        key=row["key"], text=row["text"], header=row["header"],
        options=tuple(QuestionOption(label=label, description=description)
                      for label, description in json.loads(row["options"])),
        multi_select=bool(row["multi_select"]), is_other=bool(row["is_other"]),
        is_secret=bool(row["is_secret"]), state=QuestionState(row["state"]),
        answer=tuple(json.loads(row["answer"])) if row["answer"] else (),
        answered_by=row["answered_by"], answered_at=row["answered_at"],
        reason=row["reason"], selected=tuple(json.loads(row["selected"])),
        asked_at=row["asked_at"],
    )
