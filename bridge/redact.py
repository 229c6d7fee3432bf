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
"""

from __future__ import annotations

import re
from bisect import bisect_right
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
_Pick = Callable[[re.Match[str]], "_Span | None"]


def _whole_or_secret(match: re.Match[str]) -> _Span | None:
    """The `secret` group when the pattern has one, else the whole match."""
    if "secret" in match.re.groupindex:
        return match.span("secret") if match.group("secret") else None
    return match.span()


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    pattern: re.Pattern[str]
    pick: _Pick = _whole_or_secret
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
_HEX = frozenset("0123456789abcdefABCDEF")


def _starts_word(text: str, start: int, continues: Callable[[str], bool]) -> bool:
    """Whether a token may start at `start`: not inside a longer word. `_` and `-` join
    names (`backup_ghp_…`, `key-AKIA…`), and an escape right before is no word either:
    `\\nghp_…` (a line break in JSON) or `%3Dghp_…` (URL-encoded)."""
    if start == 0 or not continues(text[start - 1]):
        return True
    if start >= 2 and text[start - 2] == "\\":
        return True
    return start >= 3 and text[start - 3] == "%" and text[start - 2] in _HEX


def _bounded(
    continues: Callable[[str], bool] = str.isalnum,
    check: Callable[[str], bool] | None = None,
) -> _Pick:
    """A pick that drops matches preceded by a character for which `continues` holds
    (unless it ends an escape), and those whose text fails `check`."""

    def pick(match: re.Match[str]) -> _Span | None:
        if not _starts_word(match.string, match.start(), continues):
            return None
        if check is not None and not check(match.group()):
            return None
        return _whole_or_secret(match)

    return pick


def _mixed(token: str) -> bool:
    """Random keys mix digits, upper and lower case: `sk-ecdsa-sha2-nistp256` does not."""
    return (
        any(c.isdigit() for c in token)
        and any(c.isupper() for c in token)
        and any(c.islower() for c in token)
    )


def _has_digit(token: str) -> bool:
    return any(c.isdigit() for c in token)


def _jwt(token: str) -> bool:
    parts = token.split(".")
    return len(parts) == 3 and len(parts[0]) >= 11 and parts[1][:3] == "eyJ" and (
        len(parts[1]) >= 11
    )


_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")
_REFERENCE_TAILS = (".", "::", "->", "(", "[", "{", "<", "!(", "![")


# Words that stand in for a secret in examples and docs (`https://user:pass@host`).
_STAND_INS = frozenset(
    {"pass", "password", "passwd", "pw", "pwd", "secret", "token", "bearer", "basic"}
)
# Values that are no secret after a shell-style `KEY=` or a `--password` flag.
_NOT_VALUES = frozenset(
    {"none", "null", "nil", "true", "false", "undefined", "empty", "changeme", "xxx",
     "flag", "option", "argument", "arg", "value", "prompt", "stdin", "file", "env"}
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


def _is_reference(value: str) -> bool:
    """Code rather than a literal: an attribute, call or subscript (`os.environ[`,
    `self.token`, `input()`)."""
    ident = _IDENTIFIER.match(value)
    return (
        ident is not None
        and ident.end() < len(value)
        and value[ident.end() :].startswith(_REFERENCE_TAILS)
    )


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
    return not _is_reference(value)


def _shell_value(value: str) -> bool:
    """A value after `KEY=` in a shell or env file, or after a `--password` flag: any
    literal of three characters or more (`PGPASSWORD=postgres`)."""
    bare = value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value
    return (
        len(bare) >= 3
        and _not_placeholder(bare)
        and bare[0] not in "=&|(:-"
        and bare.lower() not in _NOT_VALUES
        and not _is_reference(bare)
    )


_ENV_KEY = re.compile(r"[A-Z][A-Z0-9_]*")
_WEAK_KEY = re.compile(r"(?i).*[_.-](?:pass|pwd)")


def _assignment_value(match: re.Match[str]) -> _Span | None:
    """The value of a `key = value` assignment when it is a literal; quotes are kept."""
    key, sep = match.group("key"), match.group("sep")
    colon = sep == ":"
    weak = _WEAK_KEY.fullmatch(key) is not None and not key.isupper()
    for group in ("dq", "sq"):
        value = match.group(group)
        if value is not None:
            if weak and value.isalpha():  # `first_pass = "done"`
                return None
            return match.span(group) if _quoted_literal(value, colon=colon) else None
    bare = match.group("bare")
    if weak and bare.isalpha():
        return None
    # `PGPASSWORD=x psql`, `--password=x`: a shell word, however short or word-like.
    shell = sep == "=" and not match.group("pre") and not match.group("post") and (
        key.startswith("-") or _ENV_KEY.fullmatch(key) is not None
    )
    if shell:
        return match.span("bare") if _shell_value(bare) else None
    # After `key:` a word followed by more words is a description, not a secret.
    rest = match.string[match.end() : match.end() + 2]
    prose = (colon and len(rest) == 2 and rest[0] in " \t" and rest[1] not in " \t\r\n#"
             and not _looks_random(bare))
    return match.span("bare") if _unquoted_literal(bare, prose=prose) else None


def _checked_secret(check: Callable[[str], bool]) -> _Pick:
    def pick(match: re.Match[str]) -> _Span | None:
        return match.span("secret") if check(match.group("secret")) else None

    return pick


_url_password = _checked_secret(_not_placeholder)
_flag_value = _checked_secret(_shell_value)


# Keys whose literal values are secrets. The key is a whole word (`DB_PASSWORD`,
# `client_secret`, `self.token`), so `password_field`, `tokenizer`, `max_tokens` do not match.
_SECRET_KEYS = (
    r"password|passwd|passphrase|secret|token|api[_-]?key|apikey|secret[_-]?key[_-]?base"
    r"|(?:secret|access|private|signing|encryption|master|account)[_-]?key"
    r"|[_.-](?:pass|pwd)"
)
_ASSIGNMENT = (
    r"(?<![\w.-])(?P<key>[\w.-]*?(?:" + _SECRET_KEYS + r"))[\"']?"
    r"(?P<pre>[ \t]*+)(?P<sep>:=|=>|=(?!=)|:(?![:=]))(?P<post>[ \t]*+)"
    r"(?:\"(?P<dq>(?:[^\"\\\n]|\\.)*+)\"|'(?P<sq>(?:[^'\\\n]|\\.)*+)'"
    r"|(?P<bare>[^\s\"'`,;)}\]&]++))"
)
# A command-line word: quoted, or up to the next space or shell operator.
_WORD_ARG = r"(?:'[^'\n]*+'|\"[^\"\n]*+\"|[^\s|;&'\"]++)"


def _args_until(flag: str, command: str) -> str:
    """The words of a command up to the first that matches `flag`, and never past a word
    that starts the command again: each part of a line is read for one command only
    (`curl curl curl …` is read once, not once per `curl`)."""
    return r"(?:[ \t]++(?!" + flag + "|" + command + r")[^\s|;&]++)*+[ \t]++"


_WORD = _bounded()
_DIGIT = _bounded(str.isdigit)
_LETTER = _bounded(str.isalpha)

_PEM_BODY = r"[A-Za-z0-9+/=:,.()\\\s]"
_BUILTIN: tuple[_Rule, ...] = (
    _Rule(
        "pem_private_key",
        re.compile(
            r"-----BEGIN (?P<kind>[A-Z0-9 ]{0,40}?)PRIVATE KEY(?P<block>(?: BLOCK)?)-----"
            # The body is base64, armor headers, diff markers or `\n` escapes, and never five
            # dashes: it stops at the next BEGIN or END, so a BEGIN line without END never
            # scans past the next one (possessive: each character is read once).
            r"(?:" + _PEM_BODY + r"*+(?:-{1,4}+" + _PEM_BODY + r"++)*+"
            r"-----END (?P=kind)PRIVATE KEY(?P=block)-----"
            # Unterminated (a truncated file or diff): take the base64 lines that follow.
            r"|(?:\r?\n[ +-]?(?:[A-Za-z0-9+/=]{4,}+|[A-Za-z-]++:[^\n]*+)(?=\r?\n|$))++)"
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
            r"[ \t]*+(?:=|:|=>)[ \t]*+[\"']?(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
        hint=re.compile(r"[sS](?i:ecret)"),
    ),
    _Rule("github_token", re.compile(r"gh[pousr]_[A-Za-z0-9]{36,255}+" + _E), pick=_WORD),
    _Rule("github_pat", re.compile(r"github_pat_[A-Za-z0-9_]{22,255}+" + _E), pick=_WORD),
    _Rule(
        "gitlab_token",
        re.compile(
            r"gl(?:pat|dt|rt|ptt|cbt|ft|imt|oas|soat|agent)-[A-Za-z0-9_-]{20,}+"
            r"(?:\.[A-Za-z0-9_-]++)*+"
        ),
        pick=_WORD,
    ),
    _Rule("npm_token", re.compile(r"npm_[A-Za-z0-9]{36}" + _E), pick=_WORD),
    _Rule(
        "huggingface_token",
        re.compile(r"hf_[A-Za-z0-9]{30,40}+" + _E),
        pick=_bounded(check=_mixed),
    ),
    _Rule(
        "sendgrid_key",
        re.compile(r"SG\.[A-Za-z0-9_-]{16,32}+\.[A-Za-z0-9_-]{30,50}+" + _E),
        pick=_WORD,
    ),
    _Rule(
        "slack_token",
        # Whole runs, checked afterwards: `xoxb-xoxb-…` is read once, not once per prefix.
        re.compile(r"(?:xox[abeoprs]|xapp)-[A-Za-z0-9-]*+"),
        pick=_bounded(
            check=lambda t: 15 <= len(t) <= 255 and _has_digit(t[5:]) and "***" not in t
        ),
    ),
    _Rule(
        "slack_webhook",
        re.compile(
            r"https://hooks\.slack\.com/(?:services|workflows|triggers)/"
            r"(?P<secret>[A-Za-z0-9_/-]++)"
        ),
    ),
    # `bot<token>` in Bot API URLs: only a digit right before the token disqualifies it.
    _Rule("telegram_bot_token", re.compile(r"[0-9]{8,10}:[A-Za-z0-9_-]{35}" + _E), pick=_DIGIT),
    _Rule("anthropic_key", re.compile(r"sk-ant-[A-Za-z0-9_-]{20,}+"), pick=_WORD),
    _Rule(
        "openai_key",
        re.compile(r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]*+"),
        pick=_bounded(check=lambda t: len(t) >= 35 and _mixed(t)),
    ),
    _Rule("google_api_key", re.compile(r"AIza[0-9A-Za-z_-]{35}" + _E), pick=_WORD),
    _Rule(
        "stripe_key",
        re.compile(r"[rsp]k_(?:live|test)_[0-9A-Za-z]{16,}+" + _E),
        pick=_WORD,
    ),
    _Rule("stripe_webhook_secret", re.compile(r"whsec_[A-Za-z0-9]{24,}+" + _E), pick=_WORD),
    _Rule(
        "jwt",
        re.compile(r"eyJ[A-Za-z0-9_-]*+(?:\.[A-Za-z0-9_-]*+){0,2}"),
        pick=_bounded(check=_jwt),
    ),
    _Rule(
        "bearer_token",
        re.compile(r"(?i)bearer[ \t]++(?P<secret>[A-Za-z0-9._~+/-]{20,}+=*+)"),
        pick=_LETTER,
    ),
    _Rule(
        "authorization_header",
        re.compile(
            r"(?i)authorization[\"']?[ \t]*+[:=][ \t]*+[\"']?(?:basic|token)[ \t]++"
            r"(?P<secret>[A-Za-z0-9._~+/-]{8,}+=*+)"
        ),
        pick=_checked_secret(lambda s: _has_digit(s) or not s.isalpha() or not s.islower()),
        hint=re.compile(r"(?i:authorization)"),
    ),
    _Rule(
        "url_credentials",
        re.compile(
            r"(?i)\b[a-z][a-z0-9+.-]{0,30}+://[^\s/:@'\"]*+:(?P<secret>[^\s/@'\"]++)@"
            r"(?=[A-Za-z0-9\[])"
        ),
        pick=_url_password,
        hint=re.compile("://"),
    ),
    # docker's config.json (`"auth": "<base64 of user:password>"`) and .npmrc's `_auth=`.
    _Rule(
        "auth_blob",
        re.compile(
            r"(?:\"auth\"|(?<![\w.-])_auth)[ \t]*+[:=][ \t]*+\"?"
            r"(?P<secret>[A-Za-z0-9+/]{8,}+={0,2})(?![A-Za-z0-9+/=])"
        ),
        hint=re.compile(r"auth"),
    ),
    # `mysql -pSECRET` (`-p` alone asks for the password; `-p SECRET` would be a database).
    _Rule(
        "mysql_password",
        re.compile(
            r"(?<![\w.-])(?:mysql[a-z]*+|mariadb(?:-[a-z]++)?)(?:\.exe)?"
            + _args_until("-p", "(?:mysql|mariadb)")
            + r"-p(?P<secret>" + _WORD_ARG + ")"
        ),
        pick=_flag_value,
        hint=re.compile(r"(?i:mysql|mariadb)"),
    ),
    # `sshpass -p SECRET ssh …`, `docker login -u me -p SECRET`
    _Rule(
        "password_option",
        re.compile(
            r"(?<![\w.-])(?:sshpass|(?:docker|podman|buildah|skopeo|nerdctl|helm|oras)"
            r"(?:[ \t]++registry)?[ \t]++login)"
            + _args_until(r"-p\b", r"(?:sshpass|login)\b")
            + r"-p[ \t]*+(?P<secret>" + _WORD_ARG + ")"
        ),
        pick=_flag_value,
        hint=re.compile(r"sshpass|login"),
    ),
    # `--password SECRET`, `--db-password SECRET`, `--token SECRET` (not `--password-file`)
    _Rule(
        "password_flag",
        re.compile(
            r"(?i)(?<![\w-])--(?:[a-z0-9]++-)*?(?:password|passwd|passphrase|pass|token"
            r"|secret|api-key|apikey)[ \t]++(?P<secret>" + _WORD_ARG + ")"
        ),
        pick=_flag_value,
        hint=re.compile(r"--"),
    ),
    # `curl -u user:SECRET`, `curl --user user:SECRET`, `-U` for a proxy
    _Rule(
        "curl_user",
        re.compile(
            r"(?<![\w.-])curl(?:\.exe)?"
            + _args_until(r"-[uU]|--(?:proxy-)?user[ \t=]", "curl")
            + r"(?:-[uU]|--(?:proxy-)?user)(?:[ \t]*+|=)[\"']?[^\s:'\"]*+:"
            r"(?P<secret>[^\s'\"]++)"
        ),
        pick=_url_password,
        hint=re.compile(r"curl"),
    ),
    _Rule(
        "assignment",
        re.compile(_ASSIGNMENT, re.IGNORECASE),
        pick=_assignment_value,
        # A superset of the keys, spelled so that the engine can scan for the first letter.
        hint=re.compile(r"[pPsStTkK](?i:ass|ecret|oken|ey)|(?i:_pwd)"),
    ),
)


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
