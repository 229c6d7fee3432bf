"""Secret redaction for everything that leaves the machine (cards, summaries, diffs).

Theory of operation: every rule is a regex that finds a secret; a rule may name a group
`secret` so that only that part is replaced (`password=[redacted]` keeps the key, a URL
keeps its user and host). A rule may also carry a check that rejects a match, which is how
assignments tell `password = "hunter2"` (a literal: redacted) from `password = input()`
(code: left alone). All rules run over the original text; overlapping finds are merged and
each merged span becomes one `[redacted]`, so the count is the number of secrets shown as
redacted, whichever rules found them. Redacting twice changes nothing.

A secret that spans lines (a PEM private key) keeps its line structure: every line of it
becomes `[redacted]`, keeping a leading diff marker (`+`, `-`, space), so a redacted diff
still has the line counts its hunk headers promise and still parses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from bridge.errors import BridgeError

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


_Span = tuple[int, int]


def _whole_or_secret(match: re.Match[str]) -> _Span | None:
    """The `secret` group when the pattern has one, else the whole match."""
    if "secret" in match.re.groupindex:
        return match.span("secret") if match.group("secret") else None
    return match.span()


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    pattern: re.Pattern[str]
    pick: Callable[[re.Match[str]], _Span | None] = _whole_or_secret
    # For single-line rules that are slow to try everywhere: only lines where `hint`
    # occurs are searched.
    hint: re.Pattern[str] | None = None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        if self.hint is None:
            yield from self.pattern.finditer(text)
            return
        line_end = -1
        for found in self.hint.finditer(text):
            if found.start() < line_end:
                continue
            line_start = text.rfind("\n", 0, found.start()) + 1
            line_end = text.find("\n", found.end())
            if line_end < 0:
                line_end = len(text)
            yield from self.pattern.finditer(text, line_start, line_end)


# A token must not end inside a longer word (`_E`) nor start inside one: the start is
# checked by `_bounded()` rather than a lookbehind, which would cost the regex engine its
# fast scan for the literal prefix (ten times slower on a large diff).
_E = r"(?![A-Za-z0-9_-])"


def _wordish(ch: str) -> bool:
    return ch.isalnum() or ch in "_-"


def _bounded(
    continues: Callable[[str], bool] = _wordish,
) -> Callable[[re.Match[str]], _Span | None]:
    """A pick that drops matches preceded by a character for which `continues` holds."""

    def pick(match: re.Match[str]) -> _Span | None:
        start = match.start()
        if start > 0 and continues(match.string[start - 1]):
            return None
        return _whole_or_secret(match)

    return pick


_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")
_REFERENCE_TAILS = (".", "::", "->", "(", "[", "{", "<", "!(", "![")


# Words that stand in for a secret in examples and docs (`https://user:pass@host`).
_STAND_INS = frozenset(
    {"pass", "password", "passwd", "pw", "pwd", "secret", "token", "bearer", "basic"}
)


def _not_placeholder(value: str) -> bool:
    """False for values that are references, templates or masks rather than secrets:
    `${VAR}`, `$VAR`, `%(x)s`, `{}`, `<your-token>`, `[redacted]`, `#ffffff`, `xoxb-***`,
    and values with no letter or digit at all."""
    return (
        bool(value)
        and value[0] not in "$%{<[*#"
        and "***" not in value
        and any(c.isalnum() for c in value)
        and value.lower() not in _STAND_INS
    )


def _looks_random(value: str) -> bool:
    """An identifier-shaped value that is more likely a secret than a name: letters and at
    least two digits, no underscore (`hunter2hunter2`; not `new_token2`, `PKCS7KeyTypes`)."""
    return (
        "_" not in value
        and sum(c.isdigit() for c in value) >= 2
        and any(c.isalpha() for c in value)
    )


# A quoted class name after `:` is a type annotation (`signing_key: 'SSHKey'`).
_FORWARD_REFERENCE = re.compile(r"_*[A-Z][A-Za-z]*(?:\.[A-Za-z_]+)*")


def _quoted_literal(value: str, *, colon: bool) -> bool:
    if colon and _FORWARD_REFERENCE.fullmatch(value):
        return False
    return _not_placeholder(value) and not any(c.isspace() for c in value)


def _unquoted_literal(value: str, *, prose: bool) -> bool:
    """At least 8 characters and not code: not an identifier, call, attribute or subscript
    (`input()`, `os.environ[`, `get_token`, `self.token`) unless it looks random, and not
    the first word of prose (`app_token: App-level token`)."""
    if len(value) < 8 or prose or not _not_placeholder(value) or value[0] in "=&|(:":
        return False
    ident = _IDENTIFIER.match(value)
    if ident is None:
        return True
    if ident.end() == len(value):
        return _looks_random(value)
    return not value[ident.end() :].startswith(_REFERENCE_TAILS)


def _assignment_value(match: re.Match[str]) -> _Span | None:
    """The value of a `key = value` assignment when it is a literal; quotes are kept."""
    colon = match.group("sep") == ":"
    for group in ("dq", "sq"):
        value = match.group(group)
        if value is not None:
            return match.span(group) if _quoted_literal(value, colon=colon) else None
    # After `key:` a value followed by more words is a description, not a secret.
    rest = match.string[match.end() : match.end() + 2]
    prose = colon and len(rest) == 2 and rest[0] in " \t" and rest[1] not in " \t\r\n#"
    return match.span("bare") if _unquoted_literal(match.group("bare"), prose=prose) else None


def _url_password(match: re.Match[str]) -> _Span | None:
    return match.span("secret") if _not_placeholder(match.group("secret")) else None


# Keys whose literal values are secrets. The key is a whole word (`DB_PASSWORD`,
# `client_secret`, `self.token`), so `password_field`, `tokenizer`, `max_tokens` do not match.
_SECRET_KEYS = (
    r"password|passwd|passphrase|secret|token|api[_-]?key|apikey"
    r"|(?:secret|access|private|signing|encryption|master)[_-]?key"
)
_ASSIGNMENT = (
    r"(?<![\w.-])(?P<key>[\w.-]*?(?:" + _SECRET_KEYS + r"))[\"']?"
    r"[ \t]*(?P<sep>:=|=>|=(?!=)|:(?![:=]))[ \t]*"
    r"(?:\"(?P<dq>(?:[^\"\\\n]|\\.)*)\"|'(?P<sq>(?:[^'\\\n]|\\.)*)'"
    r"|(?P<bare>[^\s\"'`,;)}\]&]+))"
)

_WORD = _bounded()
_DIGIT = _bounded(str.isdigit)
_LETTER = _bounded(str.isalpha)

_BUILTIN: tuple[_Rule, ...] = (
    _Rule(
        "pem_private_key",
        re.compile(
            r"-----BEGIN (?P<kind>[A-Z0-9 ]*?)PRIVATE KEY(?P<block>(?: BLOCK)?)-----"
            # The body is base64, armor headers, diff markers or `\n` escapes; stopping at
            # anything else keeps a BEGIN line without END from scanning the whole text.
            r"(?:[A-Za-z0-9+/=:,.()\\\s-]{0,65536}?-----END (?P=kind)PRIVATE KEY(?P=block)-----"
            # Unterminated (a truncated file or diff): take the base64 lines that follow.
            r"|(?:\r?\n[ +-]?(?:[A-Za-z0-9+/=]{4,}|[A-Za-z-]+:[^\n]*)(?=\r?\n|$))+)"
        ),
    ),
    _Rule(
        "aws_access_key_id",
        re.compile(r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA)[A-Z0-9]{16}" + _E),
        pick=_WORD,
    ),
    _Rule(
        "aws_secret_access_key",
        re.compile(
            r"(?i)(?:aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key)[\"']?"
            r"[ \t]*(?:=|:|=>)[ \t]*[\"']?(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
        hint=re.compile(r"[sS](?i:ecret)"),
    ),
    _Rule("github_token", re.compile(r"gh[pousr]_[A-Za-z0-9]{36,255}" + _E), pick=_WORD),
    _Rule("github_pat", re.compile(r"github_pat_[A-Za-z0-9_]{22,255}" + _E), pick=_WORD),
    _Rule(
        "slack_token",
        re.compile(r"(?:xox[abeoprs]|xapp)-(?=[A-Za-z0-9-]*\d)[A-Za-z0-9-]{10,250}" + _E),
        pick=_WORD,
    ),
    _Rule(
        "slack_webhook",
        re.compile(
            r"https://hooks\.slack\.com/(?:services|workflows|triggers)/"
            r"(?P<secret>[A-Za-z0-9_/-]+)"
        ),
    ),
    # `bot<token>` in Bot API URLs: only a digit right before the token disqualifies it.
    _Rule("telegram_bot_token", re.compile(r"[0-9]{8,10}:[A-Za-z0-9_-]{35}" + _E), pick=_DIGIT),
    _Rule("anthropic_key", re.compile(r"sk-ant-[A-Za-z0-9_-]{20,}"), pick=_WORD),
    _Rule(
        "openai_key",
        re.compile(
            # Random keys mix digits, upper and lower case: `sk-ecdsa-sha2-nistp256` does not.
            r"sk-(?:proj-|svcacct-|admin-)?(?=[A-Za-z0-9_-]*[0-9])"
            r"(?=[A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*[a-z])[A-Za-z0-9_-]{32,}"
        ),
        pick=_WORD,
    ),
    _Rule("google_api_key", re.compile(r"AIza[0-9A-Za-z_-]{35}" + _E), pick=_WORD),
    _Rule(
        "stripe_key",
        re.compile(r"[rs]k_(?:live|test)_[0-9A-Za-z]{16,}" + _E),
        pick=_WORD,
    ),
    _Rule("stripe_webhook_secret", re.compile(r"whsec_[A-Za-z0-9]{24,}" + _E), pick=_WORD),
    _Rule(
        "jwt",
        re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
        pick=_WORD,
    ),
    _Rule(
        "bearer_token",
        re.compile(r"(?i)bearer[ \t]+(?P<secret>[A-Za-z0-9._~+/-]{20,}=*)"),
        pick=_LETTER,
    ),
    _Rule(
        "url_credentials",
        re.compile(
            r"(?i)\b[a-z][a-z0-9+.-]*://[^\s/:@'\"]*:(?P<secret>[^\s/@'\"]+)@"
            r"(?=[A-Za-z0-9\[])"
        ),
        pick=_url_password,
        hint=re.compile("://"),
    ),
    _Rule(
        "assignment",
        re.compile(_ASSIGNMENT, re.IGNORECASE),
        pick=_assignment_value,
        # A superset of the keys, spelled so that the engine can scan for the first letter.
        hint=re.compile(r"[pPsStTkK](?i:ass|ecret|oken|ey)"),
    ),
)


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
        for start, end in spans:
            out.append(text[last:start])
            line_start = text.rfind("\n", 0, start) + 1
            in_diff = text[line_start:start] in ("+", "-", " ")
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

    def _spans(self, text: str) -> list[_Span]:
        found: list[_Span] = []
        for rule in self._rules:
            for match in rule.finditer(text):
                span = rule.pick(match)
                if span is None or span[0] == span[1] or text[span[0] : span[1]] == REDACTED:
                    continue
                found.append(span)
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
