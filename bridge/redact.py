"""Secret redaction for everything that leaves the machine (cards, summaries, diffs).

Theory of operation: every rule is a regex that finds a secret; a rule may name a group
`secret` so that only that part is replaced (`password=[redacted]` keeps the key, a URL
keeps its user and host). A rule may also carry a check that rejects a match, which is how
assignments tell `password = "hunter2"` (a literal: redacted) from `password = input()`
(code: left alone). All rules run over the original text; overlapping finds are merged and
each merged span becomes one `[redacted]`, so the count is the number of secrets shown as
redacted, whichever rules found them. Redacting twice changes nothing.

Secrets also travel escaped: inside JSON strings (a line break is `\\n`, a quote `\\"`) and
URL-encoded (`%3A`, `%0A`, `+` for a space). The rules run once more over a decoded view of
such text (up to three levels of escaping), and what they find there is mapped back to the
escaped characters it came from.

Every rule runs in linear time: no repetition can be retried from many starting points
over the same characters. A token rule whose prefix can recur inside its own body (`sk-`,
`xoxb-`, `eyJ`) takes the whole run after the prefix possessively and checks it in Python,
instead of failing and starting again one prefix later.

A secret that spans lines (a PEM private key) keeps its line structure: every line of it
becomes `[redacted]`, keeping a leading diff marker (`+`, `-`, space), so a redacted diff
still has the line counts its hunk headers promise and still parses.

This module is the engine; the rules are in `bridge.redact_rules`, and how a rule picks the
secret out of a match (and tells a literal from code) in `bridge.redact_picks`.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from bridge.errors import BridgeError
from bridge.redact_picks import _Span
from bridge.redact_rules import _BUILTIN, _Rule

__all__ = ["REDACTED", "PatternError", "Redacted", "Redactor"]

REDACTED = "[redacted]"


class PatternError(BridgeError, ValueError):
    """An extra redaction pattern does not compile; `pattern` is the offending text."""

    def __init__(self, pattern: str, reason: str) -> None:
        self.pattern = pattern
        self.reason = reason
        super().__init__(f"bad redaction pattern {pattern!r}: {reason}")


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str
    count: int


# --- escaped views -----------------------------------------------------------------------

# One escape: a JSON / JS / Python string escape, a URL-encoded byte, or a `+` standing for
# a space in a query (only between two non-space characters: never a diff marker).
_ESCAPE = re.compile(
    r"\\(?:u[0-9A-Fa-f]{4}|[nrtbf\"\\/'])|%[0-9A-Fa-f]{2}|(?<=\S)\+(?=\S)"
)
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
_MAX_LEVELS = 3


def _unescape(escape: str) -> str | None:
    if escape == "+":
        return " "
    if escape[0] == "%":
        code = int(escape[1:], 16)
        return chr(code) if code < 0x80 else None  # a UTF-8 byte: keep as is
    kind = escape[1]
    if kind == "u":
        code = int(escape[2:], 16)
        return None if 0xD800 <= code <= 0xDFFF else chr(code)
    return _SIMPLE_ESCAPES.get(kind, kind)


@dataclass(frozen=True, slots=True)
class _View:
    """A decoded copy of the lines of a text that hold an escape, and where each escape
    came from: view position `at[i]` stands for `length[i]` characters from `source[i]` in
    the text. Runs of lines without an escape stand as one line break each."""

    text: str
    at: list[int]
    source: list[int]
    length: list[int]

    def position(self, p: int) -> int:
        i = bisect_right(self.at, p) - 1
        if i < 0:
            return p
        if self.at[i] == p:
            return self.source[i]
        return self.source[i] + self.length[i] + (p - self.at[i] - 1)


def _decode(text: str) -> _View | None:
    pieces: list[str] = []
    at: list[int] = []
    source: list[int] = []
    length: list[int] = []
    size = 0  # of the view so far
    last = 0  # text consumed so far
    line_end = 0  # end of the line being decoded, past its line break

    def keep(end: int) -> None:
        nonlocal size, last
        pieces.append(text[last:end])
        size += end - last
        last = end

    def stand_in(end: int, char: str) -> None:
        nonlocal size, last
        pieces.append(char)
        at.append(size)
        source.append(last)
        length.append(end - last)
        size += 1
        last = end

    for found in _ESCAPE.finditer(text):
        char = _unescape(found.group())
        if char is None:
            continue
        start, end = found.span()
        if start >= line_end:  # the first escape of its line
            keep(max(line_end, last))
            line_start = text.rfind("\n", last, start) + 1
            if line_start > last:  # lines without an escape
                stand_in(line_start, "\n")
            line_end = text.find("\n", end) + 1 or len(text)
        keep(start)
        stand_in(end, char)
    if not at:
        return None
    keep(max(line_end, last))
    if len(text) > last:
        stand_in(len(text), "\n")
    return _View("".join(pieces), at, source, length)


class Redactor:
    """Finds secrets and replaces each with `[redacted]`.

    `extra_patterns` are regexes added to the built-in rules; one with a group named
    `secret` has only that group replaced, otherwise the whole match. A pattern that does
    not compile raises `PatternError` (a `ValueError`) naming it. Patterns compile once.
    """

    def __init__(self, extra_patterns: Sequence[str] = ()) -> None:
        rules = list(_BUILTIN)
        for i, source in enumerate(extra_patterns):
            try:
                pattern = re.compile(source)
            except re.error as e:
                raise PatternError(source, str(e)) from e
            if pattern.match(""):
                raise PatternError(source, "it matches the empty string")
            rules.append(_Rule(f"extra_{i}", pattern))
        self._rules = tuple(rules)

    def redact(self, text: str) -> Redacted:
        spans = self._spans(text)
        if not spans:
            return Redacted(text, 0)
        out: list[str] = []
        last = 0
        line_start = 0
        searched = 0  # spans are sorted: each part of the text is searched for "\n" once
        for start, end in spans:
            out.append(text[last:start])
            line_start = max(line_start, text.rfind("\n", searched, start) + 1)
            searched = start
            in_diff = start - line_start == 1 and text[line_start] in "+- "
            out.append(_replacement(text[start:end], in_diff=in_diff))
            last = end
        out.append(text[last:])
        return Redacted("".join(out), len(spans))

    def redact_bytes(self, data: bytes) -> bytes:
        """Redact bytes that are mostly UTF-8; other bytes survive unchanged."""
        text = data.decode("utf-8", "surrogateescape")
        redacted = self.redact(text)
        if not redacted.count:
            return data
        return redacted.text.encode("utf-8", "surrogateescape")

    def _find(self, text: str) -> list[_Span]:
        found: list[_Span] = []
        for rule in self._rules:
            for match in rule.finditer(text):
                span = rule.pick(match)
                if span is None or span[0] == span[1] or text[span[0] : span[1]] == REDACTED:
                    continue
                found.append(span)
        return found

    def _spans(self, text: str) -> list[_Span]:
        found = self._find(text)
        # The same rules over the decoded text, mapped back through every level.
        views: list[_View] = []
        current = text
        for _ in range(_MAX_LEVELS):
            view = _decode(current)
            if view is None:
                break
            views.append(view)
            current = view.text
            for start, end in self._find(current):
                for level in reversed(views):
                    start, end = level.position(start), level.position(end)
                found.append((start, end))
        found.sort()
        merged: list[_Span] = []
        for start, end in found:
            if merged and start < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged


def _replacement(secret: str, *, in_diff: bool) -> str:
    """`[redacted]` once per line of the secret, so multi-line secrets keep their shape;
    `in_diff` (the secret starts right after a diff marker) keeps each line's marker."""
    if "\n" not in secret:
        return REDACTED
    lines = secret.split("\n")
    out = [REDACTED]
    for line in lines[1:]:
        marker = line[0] if in_diff and line[:1] in ("+", "-", " ") else ""
        cr = "\r" if line.endswith("\r") else ""
        out.append(marker + REDACTED + cr)
    first_cr = "\r" if lines[0].endswith("\r") else ""
    out[0] += first_cr
    return "\n".join(out)
