"""How a redaction rule picks the secret out of a match, and tells a literal secret from
code, prose, a placeholder or a type name (`password = "hunter2"` against `password =
input()`). Pure predicates over the matched text; the rules that use them are in
`bridge.redact_rules`, the engine in `bridge.redact`."""

from __future__ import annotations

import re
from collections.abc import Callable

_Span = tuple[int, int]
_Pick = Callable[[re.Match[str]], "_Span | None"]


def _whole_or_secret(match: re.Match[str]) -> _Span | None:
    """The `secret` group when the pattern has one, else the whole match."""
    if "secret" in match.re.groupindex:
        return match.span("secret") if match.group("secret") else None
    return match.span()


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
