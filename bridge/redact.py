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
# A token whose charset has no `_` or `-` ends where the charset ends: `ghp_…_old` (a
# renamed backup) still holds the whole token.
_E_ALNUM = r"(?![A-Za-z0-9])"
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
     "flag", "option", "argument", "arg", "value", "prompt", "stdin", "file", "env",
     "yes", "no", "on", "off", "required", "optional", "default", "unset", "hidden",
     "masked", "redacted", "omitted", "todo", "tbd", "key", "tok", "creds"}
)
# Type names after `key:` (`password: str`, `token: string` in TypeScript).
_TYPE_NAMES = frozenset(
    {"str", "string", "bytes", "bytearray", "int", "integer", "bool", "boolean", "float",
     "number", "dict", "list", "tuple", "set", "any", "object", "unknown", "never", "char",
     "text", "varchar", "secret", "secretstr", "sensitive", "binary", "uuid"}
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


# A passphrase: a few lowercase words (`correct horse battery staple`); prose has words
# like these (`must be at least 8 characters`, `the token to use`).
_PASSPHRASE_WORD = re.compile(r"[a-z0-9][a-z0-9!@#%^&*._-]*+")
_PROSE_WORDS = frozenset(
    {"a", "an", "the", "to", "of", "for", "in", "on", "at", "is", "are", "be", "was", "and",
     "or", "not", "no", "your", "you", "my", "our", "this", "that", "with", "from", "by",
     "as", "if", "it", "its", "must", "should", "please", "enter", "use", "used", "set",
     "here", "value", "none", "null", "empty", "characters", "chars", "least", "example",
     "e.g.", "i.e.", "etc", "see", "will", "can", "may", "when", "where", "which"}
)


def _passphrase(value: str) -> bool:
    words = value.split()
    return (
        2 <= len(words) <= 8
        and all(_PASSPHRASE_WORD.fullmatch(w) for w in words)
        and not any(w in _PROSE_WORDS or w.rstrip("s") in _STAND_INS for w in words)
        and not any(k in w for w in words for k in ("password", "secret", "token"))
    )


def _quoted_literal(value: str, *, colon: bool) -> bool:
    if colon and _FORWARD_REFERENCE.fullmatch(value):
        return False
    if not _not_placeholder(value):
        return False
    return _passphrase(value) if any(c.isspace() for c in value) else True


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
# What follows a YAML value: a comment or the end of the line. The token is bounded, so a
# line of `password:password:…` is not read to its end once per key.
_YAML_REST = re.compile(
    r"(?P<token>(?:[^\s\\]|\\(?![nrtu\"\\/])){0,256}+)(?:[ \t]++#|[ \t]*+(?:\r?\n|\Z))"
)
# `user=u password=x` (a libpq connection string): another `key=value` word before.
_CONNINFO_BEFORE = re.compile(r"[\w.-]=[^\s=,()]*+[ \t]++\Z")


def _at_line_start(text: str, pos: int) -> bool:
    """Whether only indentation, a YAML list dash or a diff marker precede `pos` on its line."""
    i = pos
    floor = max(0, pos - 200)
    while i > floor and text[i - 1] in " \t":
        i -= 1
    if i > floor and text[i - 1] == "-":
        i -= 1
        while i > floor and text[i - 1] in " \t":
            i -= 1
    if i > 0 and text[i - 1] == "+" and (i == 1 or text[i - 2] == "\n"):
        i -= 1
    return i == 0 or text[i - 1] == "\n"


def _yaml_value(value: str) -> bool:
    """A single-token YAML value after a secret key (`password: letmein`): any literal of
    three characters or more; not a type (`password: str`), class name, reference, tag
    (`!vault`), block scalar (`|`), anchor, alias or path."""
    return (
        len(value) >= 3
        and _not_placeholder(value)
        and value[0] not in "!&|>=(:-@`/~'\""
        and value.lower() not in _NOT_VALUES
        and value.lower() not in _TYPE_NAMES
        and value[-1] not in ":,;([{)]}"  # code: `token: str,`, `secret: _process_secret,`
        and not _is_reference(value)
        and not (_FORWARD_REFERENCE.fullmatch(value) and not _looks_random(value))
    )


def _short_value(value: str, key: str) -> bool:
    """A value after `key=` in a query, connection string or settings line: any literal of
    three characters or more that is not a variable (`password=password`, `token=tok`,
    `api_key=access_key`)."""
    if not _shell_value(value) or value.lower() == key.lower():
        return False
    ident = _IDENTIFIER.fullmatch(value)
    return ident is None or "_" not in value or _looks_random(value)


def _lowercase_setting(match: re.Match[str]) -> bool:
    """`key=value` with no spaces that is a setting rather than a keyword argument: in a
    URL query or connection string (`?`, `&`, `;` or another `key=value` before), or alone
    on its line (`password=hunter2` in an ini or .env file)."""
    text, start, end = match.string, match.start("key"), match.end()
    if start and text[start - 1] in "?&;":
        return True
    if _CONNINFO_BEFORE.search(text, max(0, start - 128), start):
        return True
    return _at_line_start(text, start) and text[end : end + 1] in ("", "\n", "\r")


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
    if colon and match.group("post") and not match.group("pre") and _at_line_start(
        match.string, match.start("key")
    ):
        # `password: letmein` on a line of YAML: the whole token, however short or word-like.
        line = _YAML_REST.match(match.string, match.start("bare"))
        if line is not None:
            token = line.group("token")
            return line.span("token") if _yaml_value(token) else None
    if weak and bare.isalpha():
        return None
    # `PGPASSWORD=x psql`, `--password=x`: a shell word, however short or word-like.
    shell = sep == "=" and not match.group("pre") and not match.group("post") and (
        key.startswith("-") or _ENV_KEY.fullmatch(key) is not None
    )
    if shell:
        return match.span("bare") if _shell_value(bare) else None
    if sep == "=" and not match.group("pre") and not match.group("post") and (
        _lowercase_setting(match)
    ):
        return match.span("bare") if _short_value(bare, key) else None
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


def _env_default(match: re.Match[str]) -> _Span | None:
    group = "dq" if match.group("dq") is not None else "sq"
    value = match.group(group)
    if value.lower() in _NOT_VALUES or not _quoted_literal(value, colon=False):
        return None
    return match.span(group)
_flag_value = _checked_secret(_shell_value)


# Keys whose literal values are secrets. The key is a whole word (`DB_PASSWORD`,
# `client_secret`, `self.token`), so `password_field`, `tokenizer`, `max_tokens` do not match.
_SECRET_KEYS = (
    r"password|passwd|passphrase|secret|token|api[_-]?key|apikey|secret[_-]?key[_-]?base"
    r"|(?:secret|access|private|signing|encryption|master|account)[_-]?key"
    r"|[_.-](?:pass|pwd)"
)
_ASSIGNMENT = (
    r"(?<![\w.-])(?P<key>[\w.-]*?(?:" + _SECRET_KEYS + r"))(?:[\"']\]?)?"
    r"(?P<pre>[ \t]*+)(?P<sep>:=|=>|=(?!=)|:(?![:=]))(?P<post>[ \t]*+)"
    r"(?:\"(?P<dq>(?:[^\"\\\n]|\\.)*+)\"|'(?P<sq>(?:[^'\\\n]|\\.)*+)'"
    r"|(?P<bare>(?:[^\s\"'`,;)}\]&\\]|\\(?![nrtu\"\\/]))++))"
)
# (A bare value ends before an escape, as in `token: string\\n` inside a JSON string: the
# escaped text is searched again decoded.)
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
        re.compile(r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA)[A-Z0-9]{16}" + _E_ALNUM),
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
    _Rule("github_token", re.compile(r"gh[pousr]_[A-Za-z0-9]{36,255}+" + _E_ALNUM), pick=_WORD),
    _Rule("github_pat", re.compile(r"github_pat_[A-Za-z0-9_]{22,255}+" + _E), pick=_WORD),
    _Rule(
        "gitlab_token",
        re.compile(
            r"gl(?:pat|dt|rt|ptt|cbt|ft|imt|oas|soat|agent)-[A-Za-z0-9_-]{20,}+"
            r"(?:\.[A-Za-z0-9_-]++)*+"
        ),
        pick=_WORD,
    ),
    _Rule("npm_token", re.compile(r"npm_[A-Za-z0-9]{36}" + _E_ALNUM), pick=_WORD),
    _Rule(
        "huggingface_token",
        re.compile(r"hf_[A-Za-z0-9]{30,40}+" + _E_ALNUM),
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
    # Vault service, batch and recovery tokens
    _Rule("vault_token", re.compile(r"hv[sbr]\.[A-Za-z0-9_-]{24,}+"), pick=_WORD),
    # Google OAuth client secrets
    _Rule("google_client_secret", re.compile(r"GOCSPX-[A-Za-z0-9_-]{24,}+"), pick=_WORD),
    _Rule("google_api_key", re.compile(r"AIza[0-9A-Za-z_-]{35}" + _E), pick=_WORD),
    _Rule(
        "stripe_key",
        re.compile(r"[rsp]k_(?:live|test)_[0-9A-Za-z]{16,}+" + _E_ALNUM),
        pick=_WORD,
    ),
    _Rule("stripe_webhook_secret", re.compile(r"whsec_[A-Za-z0-9]{24,}+" + _E_ALNUM), pick=_WORD),
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
    # `?key=<api key>` in a URL (`key` alone is no secret key elsewhere)
    _Rule(
        "url_key",
        re.compile(r"[?&;]key=(?P<secret>[A-Za-z0-9_-]{16,}+)(?![^\s&#'\"<>])"),
        pick=_checked_secret(lambda s: _has_digit(s) and any(c.isalpha() for c in s)),
        hint=re.compile(r"key="),
    ),
    # Maven's settings.xml and other XML: `<password>SECRET</password>`
    _Rule(
        "xml_element",
        re.compile(
            r"(?i)<(?P<tag>[\w.-]*?(?:" + _SECRET_KEYS + r"))>"
            r"(?P<secret>[^<\n]{1,256}+)</(?P=tag)>"
        ),
        pick=_checked_secret(
            lambda s: _passphrase(s) if " " in s.strip() else _shell_value(s.strip())
        ),
        hint=re.compile(r"</"),
    ),
    # ODBC / ADO connection strings: `Uid=sa;Pwd=SECRET;` (not the shell's `PWD=/home/…`)
    _Rule(
        "odbc_pwd",
        re.compile(
            r"(?i)(?<=[;\"'])[ \t]*+pwd[ \t]*+=[ \t]*+(?P<secret>\{[^}\n]{0,256}+\}|[^;\s'\"]++)"
        ),
        pick=_checked_secret(lambda s: _shell_value(s.strip("{}")) and s[0] not in "/~."),
        hint=re.compile(r"(?i:pwd)"),
    ),
    # `npm config set //registry.npmjs.org/:_authToken <token>`, `yarn config set npmAuthToken`
    _Rule(
        "config_set",
        re.compile(
            r"(?i)\bconfig[ \t]++set[ \t]++[^\s=]*?(?:_auth(?:token)?|_password"
            r"|npmauthtoken|npmauthident)[ \t]++(?P<secret>" + _WORD_ARG + ")"
        ),
        pick=_flag_value,
        hint=re.compile(r"(?i:config)"),
    ),
    # `os.environ.setdefault("API_KEY", "SECRET")`, `os.getenv("TOKEN", "SECRET")`
    _Rule(
        "env_default",
        re.compile(
            r"(?i)(?:setdefault|getenv|setenv|putenv|\.get)\([ \t]*+[\"'][\w.-]*?(?:"
            + _SECRET_KEYS
            + r")[\"'][ \t]*+,[ \t]*+(?:\"(?P<dq>[^\"\\\n]*+)\"|'(?P<sq>[^'\\\n]*+)')"
        ),
        pick=lambda m: _env_default(m),
        hint=re.compile(r"\("),
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
