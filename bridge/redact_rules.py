"""The built-in redaction rules: one regex per kind of secret, each with the pick that
takes the secret out of a match (`bridge.redact_picks`). Every rule runs in linear time (see
`bridge.redact`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from bridge.redact_picks import (
    _ASSIGNMENT,
    _DIGIT,
    _E,
    _E_ALNUM,
    _LETTER,
    _SECRET_KEYS,
    _WORD,
    _WORD_ARG,
    _args_until,
    _assignment_value,
    _bounded,
    _checked_secret,
    _env_default,
    _flag_value,
    _has_digit,
    _jwt,
    _mixed,
    _passphrase,
    _Pick,
    _shell_value,
    _url_password,
    _whole_or_secret,
)


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
