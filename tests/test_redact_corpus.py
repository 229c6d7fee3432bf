"""Redaction in context: realistic secrets in every form they reach a chat in (plain,
JSON-escaped, URL-encoded, diffs, file names, commit messages, agent text, approval cards,
titles), look-alikes that must stay, and adversarial inputs that must stay linear.

The fake secrets are assembled from pieces so that secret scanners do not flag this file.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from bridge import render
from bridge.approvals import Approval
from bridge.events import DecisionKind
from bridge.model import SessionView
from bridge.redact import Redactor
from bridge.render import TurnSummary
from bridge.session import SessionState
from daemon.redaction import OFF_LOOP_CHARS, redact_bytes, redact_text

# the renderers as the daemon calls them, with the built-in rules
REDACTOR = Redactor()
render_approval_card = partial(render.render_approval_card, redactor=REDACTOR)
render_session_list = partial(render.render_session_list, redactor=REDACTOR)
render_status_card = partial(render.render_status_card, redactor=REDACTOR)
render_summary_card = partial(render.render_summary_card, redactor=REDACTOR)
shorten = partial(render.shorten, redactor=REDACTOR)
tool_preview = partial(render.tool_preview, redactor=REDACTOR)
topic_title = partial(render.topic_title, redactor=REDACTOR)

R = Redactor()


@dataclass(frozen=True)
class Secret:
    name: str
    text: str  # the secret as it is written (a line of a file, a command, a token)
    parts: tuple[str, ...]  # what must not survive
    token: bool = False  # usable on its own (in a file name, after `_`)


def tok(name: str, value: str) -> Secret:
    return Secret(name, value, (value,), token=True)


def kv(name: str, text: str, *parts: str) -> Secret:
    return Secret(name, text, parts)


GH = "gh" + "p_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
AWS_ID = "AK" + "IA" + "Q3EGRJ5XW7LMNP2T"
AWS_SECRET = "wJalrXUtnFEMI" + "/K7MDENG/bPxRfiCYzQ9Xk2LmP"
PEM_LINES = (
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunV",
    "TLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxKL",
    "xoS2tFYT9kEl6ZJ8iz2Qw3xe+Rc5Ztj0KQ7M4o9VmB8pWJ3hXlq8hGZ0PzRZx",
)
PEM_BODY = "\n".join(PEM_LINES)


def pem(kind: str) -> str:
    return f"-----BEGIN {kind} PRIVATE KEY-----\n{PEM_BODY}\n-----END {kind} PRIVATE KEY-----"


JWT = (
    "eyJ" + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJ" + "zdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
DOCKER_AUTH = "ZGVwbG95Ym90OlM0Zm" + "VQYXNzdzByZCE="  # deploybot:S4feP...
AZURE_KEY = ("Eby8vdM02xNOcqFl" + "qUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq"
             "/K1SZFPTOtr/KBHBeksoGMGw==")

SECRETS: list[Secret] = [
    # tokens with a distinctive prefix
    tok("github_pat_classic", GH),
    tok("github_oauth", "gh" + "o_" + "Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Jh0Gf9Ed8Cb7Aa6"),
    tok("github_server", "gh" + "s_" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8"),
    tok("github_fine", "github" + "_pat_" + "11ABCDEFG0a1b2c3d4e5f6_"
        "g7h8i9j0k1l2m3n4o5p6q7r8s9t0u1v2w3x4y5z6A7B8C9D0"),
    tok("aws_key_id", AWS_ID),
    tok("aws_sts_id", "AS" + "IA" + "Y34FZKBOKMUTVV7A"),
    tok("slack_bot", "xo" + "xb-" + "2411309876-5123098712345-Qw3rTy8UiOp4AsDf6GhJk9Lz"),
    tok("slack_user", "xo" + "xp-" + "1234567890-1234567890-1234567890-a1b2c3d4e5f6a7b8c9d0"),
    tok("slack_app", "xa" + "pp-" + "1-A0123456789-1234567890123-f3e2d1c0b9a8f7e6d5c4"),
    tok("telegram", "712345678" + ":" + "AAH" + "k9Lm_Xz2-Qw8Er5Ty1Ui7Op3As6Df0Gh"),
    tok("anthropic", "sk-" + "ant-" + "api03-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0Ed-aB1cD2eF3"),
    tok("openai_proj", "sk-" + "proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zQ7rT0uW3"),
    tok("openai_legacy", "sk-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4"),
    tok("google", "AI" + "za" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"),
    tok("stripe_live", "sk" + "_live_" + "51Hx4eC39HqLyjWDarjtT1zdp7dc"),
    tok("stripe_restricted", "rk" + "_live_" + "51H8abcDEFghiJKLmnoPQR7x"),
    tok("stripe_webhook", "wh" + "sec_" + "Mq3Ls8Kd2Jf7Hg1Ax5Zc9Vb4Nm6Po0Qr"),
    tok("jwt", JWT),
    tok("npm", "np" + "m_" + "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78"),
    tok("huggingface", "h" + "f_" + "QwErTy12UiOp34AsDf56GhJk78LzXc90VbNm"),
    tok("gitlab", "gl" + "pat-" + "x9Yk2Lm4Np6Qr8St0Uv3W"),
    tok("gitlab_deploy", "gl" + "dt-" + "Zq8Wx6Ec4Rv2Tb0Yn9Um7I"),
    tok("sendgrid", "S" + "G." + "ngeVfQFYQlKU0ufo8x5d1A"
        ".TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr"),
    Secret("slack_webhook", "https://hooks.slack.com/services/" + "T0A1B2C3D"
           + "/B4E5F6G7H/Xy7Zq2Wp9Lm4Kj8Hg3Fd6Sa1",
           ("T0A1B2C3D/B4E5F6G7H/Xy7Zq2Wp9Lm4Kj8Hg3Fd6Sa1",),
           token=True),
    # credentials in context
    kv("aws_secret_env", f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET),
    kv("aws_secret_ini", f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
    kv("pem_rsa", pem("RSA"), *PEM_LINES),
    kv("pem_openssh", pem("OPENSSH"), *PEM_LINES),
    kv("pem_ec", pem("EC"), *PEM_LINES),
    kv("pem_pkcs8", pem("ENCRYPTED"), *PEM_LINES),
    kv("bearer", f"Authorization: Bearer {JWT}", JWT),
    kv("bearer_opaque", "Authorization: Bearer " + "9f8E7d6C5b4A3f2E1d0C9b8A7f6E5d4C",
       "9f8E7d6C5b4A3f2E1d0C9b8A7f6E5d4C"),
    kv("basic_auth", "Authorization: Basic " + "YWRtaW46U3VwM3JTM2NyM3Q=",
       "YWRtaW46U3VwM3JTM2NyM3Q="),
    kv("url_https", "https://deploy:Gh7Kq2Lp9Wz4@git.example.com/org/repo.git", "Gh7Kq2Lp9Wz4"),
    kv("url_postgres", "postgres://app:Pg5Xr8Ty2Qw6@db.internal:5432/app", "Pg5Xr8Ty2Qw6"),
    kv("url_redis", "redis://:Rd3Mn6Bv9Cx2@cache.internal:6379/0", "Rd3Mn6Bv9Cx2"),
    kv("url_amqp", "amqp://guest:Mq8Zx1Cv4Bn7@rabbit:5672/", "Mq8Zx1Cv4Bn7"),
    kv("dotenv_password", "DB_PASSWORD=Tr0ub4dor3xyz", "Tr0ub4dor3xyz"),
    kv("python_password", 'password = "c0rrectH0rseBattery"', "c0rrectH0rseBattery"),
    kv("yaml_secret", "client_secret: 7fa9c2e4b1d86f03a5e2", "7fa9c2e4b1d86f03a5e2"),
    kv("json_api_key", '{"api_key": "Kf83Jd92Lx71Qp45"}', "Kf83Jd92Lx71Qp45"),
    kv("django_secret", "SECRET_KEY = 'django-insecure-x8k2m4q9w1z7v5'",
       "django-insecure-x8k2m4q9w1z7v5"),
    kv("rails_secret_base", "SECRET_KEY_BASE=9c1f4e7a2b8d5c3f6e9a1b4d7c2e5f8a",
       "9c1f4e7a2b8d5c3f6e9a1b4d7c2e5f8a"),
    kv("pgpassword", "PGPASSWORD=Qx7Lm2Pz9Wk4 psql -h db -U app", "Qx7Lm2Pz9Wk4"),
    kv("pgpassword_word", "PGPASSWORD=zebracrossing psql -h db", "zebracrossing"),
    kv("smtp_pass", "SMTP_PASS=Ml4Nb7Vc0Xz3", "Ml4Nb7Vc0Xz3"),
    kv("db_pwd", "MYSQL_ROOT_PWD=Wq2Er5Ty8Ui1", "Wq2Er5Ty8Ui1"),
    kv("compose_env", "      - POSTGRES_PASSWORD=harborlights", "harborlights"),
    kv("mysql_p", "mysql -u root -pH4rdT0Gu3ss mydb", "H4rdT0Gu3ss"),
    kv("mysqldump_p", "mysqldump -h db -u app -p'Dump5ecr3t!' app > app.sql", "Dump5ecr3t!"),
    kv("password_flag", "pg_dump --password Fl4gP4ssw0rd --host db", "Fl4gP4ssw0rd"),
    kv("password_eq", "mysql --password=Eq5P4ssw0rdX -h db", "Eq5P4ssw0rdX"),
    kv("token_flag", "vercel deploy --token Vc9Tk2Lm5Np8Qr1S", "Vc9Tk2Lm5Np8Qr1S"),
    kv("sshpass", "sshpass -p 'Ss5hP4ssQ9' ssh deploy@host", "Ss5hP4ssQ9"),
    kv("curl_user", "curl -u deploy:Cu7rLp4ss9Z https://api.example.com/x", "Cu7rLp4ss9Z"),
    kv("curl_user_long", "curl -sS --user 'ci:Ci8Bu1ldPw2' -X POST https://ci.example.com",
       "Ci8Bu1ldPw2"),
    kv("docker_login", "docker login -u deploybot -p Dk4rL0g1nPw registry.example.com",
       "Dk4rL0g1nPw"),
    kv("npmrc_token", "//registry.npmjs.org/:_authToken=" + "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
       "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"),
    kv("npmrc_auth", "_auth=" + DOCKER_AUTH, DOCKER_AUTH),
    kv("docker_config",
       '{"auths": {"https://index.docker.io/v1/": {"auth": "' + DOCKER_AUTH + '"}}}',
       DOCKER_AUTH),
    kv("azure_conn", "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=" + AZURE_KEY
       + ";EndpointSuffix=core.windows.net", AZURE_KEY[:40], AZURE_KEY[40:]),
    kv("telegram_url",
       "https://api.telegram.org/bot" + "712345678:" + "AAH"
       + "k9Lm_Xz2-Qw8Er5Ty1Ui7Op3As6Df0Gh/getMe",
       "AAHk9Lm_Xz2-Qw8Er5Ty1Ui7Op3As6Df0Gh"),
    kv("github_env", f"export GITHUB_TOKEN={GH}", GH),
    kv("access_token_query", "?access_token=Qa1Ws2Ed3Rf4Tg5Yh&page=2", "Qa1Ws2Ed3Rf4Tg5Yh"),
    # found missing by an attacker review
    kv("libpq_conninfo", 'psql "host=db user=app password=hunter2"', "hunter2"),
    kv("jdbc_query", "jdbc:mysql://db/app?user=root&password=hunter2", "hunter2"),
    kv("api_key_query", "https://api.example.com/v1/items?page=2&api_key=Zx81Qm", "Zx81Qm"),
    kv("key_query", "https://maps.example.com/api/js?key=" + "3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e",
       "3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e"),
    kv("passphrase_env", "export DB_PASSWORD='correct horse battery'", "correct horse battery"),
    kv("passphrase_python", 'password = "correct horse battery staple"',
       "correct horse battery staple"),
    kv("environ_item", 'os.environ["DB_PASSWORD"] = "hunter2"', "hunter2"),
    kv("environ_setdefault", 'os.environ.setdefault("API_KEY", "abcd1234efgh5678")',
       "abcd1234efgh5678"),
    kv("maven_settings", "<password>hunter2secret</password>", "hunter2secret"),
    kv("odbc_pwd", "Driver={ODBC Driver 18};Server=db;Uid=sa;Pwd=Hunter2!;", "Hunter2!"),
    tok("vault_service", "hv" + "s." + "CAESIJlK3x9q2Wm7Rt4Yp8Zc1Vb6Nf0Hd5Gs3La2Ke7Qw9Ux"),
    tok("vault_batch", "hv" + "b." + "AAAAAQKx8Zq2Lm4Np6Rt8Vw0Yb3Cd5Ef7Gh9Jk1Mn3Pq5St7Uv9"),
    kv("npm_config_set", "npm config set //registry.npmjs.org/:_authToken "
       + "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5e", "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5e"),
    tok("google_client_secret", "GOC" + "SPX-" + "Qw3rTy8UiOp4AsDf6GhJk9LzXc1V"),
    Secret("github_renamed", GH + "_old", (GH,), token=True),
]

# Secrets recognised as a line of a file (a YAML `key: value`, an ini `key=value`): they
# are checked where the text keeps its lines.
LINE_SECRETS: list[Secret] = [
    kv("compose_yaml", "      POSTGRES_PASSWORD: example", "example"),
    kv("yaml_db_password", "db_password: postgres", "postgres"),
    kv("yaml_password_word", "password: letmein", "letmein"),
    kv("yaml_password_long", "password: supersecretlongword", "supersecretlongword"),
    kv("yaml_smtp", "  smtp_password: hunter2pw  # rotate monthly", "hunter2pw"),
    kv("yaml_pwd", "DB_PWD: hunter2", "hunter2"),
    kv("yaml_ampersand", "password: Tr0ub4dor&3", "Tr0ub4dor&3", "&3"),
    kv("yaml_list_item", "  - token: abc123", "abc123"),
    kv("ini_password", "password=hunter2", "hunter2"),
]

# Things that look like secrets and are not.
LOOK_ALIKES = [
    "max_tokens=4096",
    "password_field = forms.CharField()",
    "_cert_algorithm = b'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com'",
    "commit 3f2a9c0e1b2d4f5a6b7c8d9e0f1a2b3c4d5e6f70",
    "Merge: 3f2a9c0 1b2d4f5",
    "session_id = 550e8400-e29b-41d4-a716-446655440000",
    "tokenizer = AutoTokenizer.from_pretrained('bert-base'); tokenizer.json",
    "export PGPASSWORD=$PASSWORD",
    "API_KEY=${API_KEY}",
    "psql --password-file /run/secrets/db",
    "docker run -p 8080:80 -u 1000:1000 nginx",
    "mkdir -p build/out && cp -p a b",
    "mysql -u root -p mydb",
    "echo $PW | docker login --password-stdin -u me registry.example.com",
    'curl -u "$USER:$PASS" https://api.example.com',
    'first_pass = "done"',
    "PWD=/home/ana/src OLDPWD=/home/ana",
    "ssh -p 2222 deploy@host",
    "git log -p --stat",
    "hf_hub_download(repo_id='gpt2', filename='config.json')",
    "npm_config_cache=/tmp/npm",
    "GitLab personal tokens start with glpat- and npm ones with npm_",
    "TOKEN=${{ secrets.GITHUB_TOKEN }}",
    "password: str | None = None",
    "token = get_token()",
    "sk-learn is not scikit-learn",
    '"integrity": "sha512-Q2Jc0sFo2yQkVqR7Zx1+Y0nT3YwZ7m9Xc8PqVb4Lr1Kt5Hs2Dg6Fj3Ai0Eu9Wo8Ny=="',
    "see https://example.com:8443/path?q=1 and git@github.com:org/repo.git",
    "Authorization: Bearer <token>",
    "AccountKey=<your-account-key>",
    "SECRET_KEY_BASE=$(rails secret)",
    "the --password option takes a value",
    "WHERE token = ? AND expires > now()",
    "AKIA is the prefix of AWS access key ids",
    'headers = {"Authorization": f"Bearer {token}"}',
    # look-alikes of the rules added after the attacker review
    "password: The password for the database",
    "password: ${DB_PASSWORD}",
    "password: !vault |",
    "password: str",
    "    token: str,",
    "secret: bool = False",
    "  token: Optional[str]",
    "token: string",
    "password: required",
    "  password=password,",
    "  api_key=api_key",
    "    token=self._token",
    "connect(host=host, password=pw)",
    'fields = ("username", "password", "email")',
    'password = "Enter your password"',
    '"password": "must be at least 8 characters"',
    'token = "Bearer " + token',
    "PWD=/home/ana/src",
    "cd build;PWD=/tmp make",
    "?key=value&cache_key=user_profile",
    "<password>${env.DB_PASSWORD}</password>",
    "npm config set registry https://registry.npmjs.org/",
    'os.environ.get("TOKEN", "")',
    "ghp_ is the prefix of GitHub personal tokens",
    "hvs. is the prefix of Vault service tokens",
]


def distinctive(secret: Secret) -> list[str]:
    """Every 8-character piece of the secret's parts (the whole part when shorter)."""
    pieces: list[str] = []
    for part in secret.parts:
        if len(part) <= 8:
            pieces.append(part)
        else:
            pieces.extend(part[i : i + 8] for i in range(len(part) - 7))
    return pieces


def decodings(out: str) -> list[str]:
    """The output as it is, URL-decoded, and with JSON escapes undone."""
    found = [out, urllib.parse.unquote(out), urllib.parse.unquote_plus(out)]
    for text in list(found):
        found.append(re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), text))
    return found


def leaks(secret: Secret, out: str) -> list[str]:
    views = decodings(out)
    return sorted({p for p in distinctive(secret) if any(p in v for v in views)})


SESSION = SessionView(id="abc234", project="api", agent="claude", protocol="claude",
                      cwd="/src/api", state=SessionState.RUNNING, title="fix it",
                      created_at=0.0, updated_at=0.0)
ALL = (DecisionKind.ALLOW_ONCE, DecisionKind.ALLOW_SESSION, DecisionKind.DENY, DecisionKind.STOP)


def approval_card(tool: str, tool_input: dict[str, object]) -> str:
    approval = Approval(id="xyz789", session_id="abc234", request_id="r", tool=tool,
                        input=tool_input, offered=ALL, requested_at=0.0)
    return render_approval_card(approval, SESSION).text


def diff_of(text: str) -> str:
    lines = text.splitlines()
    added = "".join(f"+{line}\n" for line in lines)
    return (
        "diff --git a/.env b/.env\nindex 0000000..1111111 100644\n--- a/.env\n+++ b/.env\n"
        f"@@ -1,2 +1,{len(lines) + 2} @@\n HOST=db\n{added} PORT=5432\n"
    )


def redacted(text: str) -> str:
    return R.redact(text).text


# Each context: how a secret's text reaches the chat, through the code that sends it.
CONTEXTS: dict[str, Callable[[Secret], str]] = {
    "plain": lambda s: redacted(f"found: {s.text} (in config)"),
    "json_dict": lambda s: redacted(json.dumps({"file": ".env", "content": s.text})),
    "json_after_newline": lambda s: redacted(json.dumps({"content": f"# settings\n{s.text}\n"})),
    "json_ascii_twice": lambda s: redacted(json.dumps(json.dumps({"env": f"x=1\n{s.text}"}))),
    "url_quote": lambda s: redacted("https://example.com/search?q=" + urllib.parse.quote(s.text)),
    "url_quote_plus": lambda s: redacted("q=" + urllib.parse.quote_plus(f"why\n{s.text}")),
    "urlencode": lambda s: redacted(urllib.parse.urlencode({"note": s.text, "page": 2})),
    "diff": lambda s: redacted(diff_of(s.text)),
    "commit_message": lambda s: redacted(
        f"commit 3f2a9c0e1b2d4f5a6b7c8d9e0f1a2b3c4d5e6f70\nAuthor: Ana <ana@example.com>\n\n"
        f"    Rotate credentials\n\n    old value: {s.text}\n"
    ),
    "agent_text": lambda s: render_summary_card(SESSION, TurnSummary(
        final_text=f"I found this in the config:\n\n{s.text}\n\nShall I rotate it?",
        is_error=False)).text,
    "approval_bash": lambda s: approval_card("Bash", {"command": f"cd /srv && {s.text}"}),
    "approval_webfetch": lambda s: approval_card("WebFetch", {
        "url": "https://example.com/api?x=" + urllib.parse.quote(s.text),
        "prompt": f"Check whether this still works:\n{s.text}"}),
    "approval_mcp": lambda s: approval_card("mcp__db__query", {
        "query": f"-- settings\n{s.text}", "nested": {"items": ["a", f"b\n{s.text}"]}}),
    "approval_cut": lambda s: approval_card("mcp__x__y", {"a": "x" * 560 + "\n" + s.text}),
    "title": lambda s: topic_title(SessionView(
        id="abc234", project="api", agent="claude", protocol="claude", cwd="/src/api",
        state=SessionState.RUNNING, title=f"use {s.text}", created_at=0.0, updated_at=0.0)),
    "status_card": lambda s: render_status_card(SessionView(
        id="abc234", project="api", agent="claude", protocol="claude", cwd="/src/api",
        state=SessionState.FAILED, title=f"deploy with {s.text}",
        last_tool=f"Bash {tool_preview('Bash', {'command': s.text})}",
        error=f"the agent said: {s.text}", created_at=0.0, updated_at=0.0), now=0.0).text,
}

# The contexts that keep a secret on a line of its own.
LINE_CONTEXTS = ("json_after_newline", "url_quote_plus", "diff", "agent_text", "approval_mcp",
                 "approval_cut")

TOKEN_CONTEXTS: dict[str, Callable[[str], str]] = {
    "file_name": lambda t: redacted(f"diff --git a/keys/{t}.txt b/keys/{t}.txt\n"),
    "after_underscore": lambda t: redacted(f"backup_{t}.json"),
    "after_dash": lambda t: redacted(f"creds-{t}.env"),
    "after_escaped_newline": lambda t: redacted(f'"first line\\n{t}"'),
    "after_url_escape": lambda t: redacted(f"text=%3D{t}%0A%20{t}"),
    "session_list": lambda t: render_session_list([SessionView(
        id="abc234", project="api", agent="claude", protocol="claude", cwd="/src/api",
        state=SessionState.IDLE, title=f"rotate {t}", created_at=0.0, updated_at=0.0)], now=0.0),
}


def test_corpus_is_big_enough() -> None:
    assert len(SECRETS) >= 60
    assert len(LOOK_ALIKES) >= 30


@pytest.mark.parametrize("context", sorted(CONTEXTS))
def test_no_secret_leaks_in_context(context: str) -> None:
    failures = []
    for secret in SECRETS:
        out = CONTEXTS[context](secret)
        leaked = leaks(secret, out)
        if leaked:
            failures.append(f"{secret.name}: {leaked[:3]} in {out[:300]!r}")
    assert not failures, f"{len(failures)} leaked in {context}:\n" + "\n".join(failures)


@pytest.mark.parametrize("context", LINE_CONTEXTS)
def test_no_line_secret_leaks_in_context(context: str) -> None:
    failures = []
    for secret in LINE_SECRETS:
        for text in (secret.text, secret.text + "\n", "a: 1\n" + secret.text + "\nb: 2"):
            out = CONTEXTS[context](Secret(secret.name, text, secret.parts))
            leaked = leaks(secret, out)
            if leaked:
                failures.append(f"{secret.name}: {leaked[:3]} in {out[:300]!r}")
    assert not failures, f"{len(failures)} leaked in {context}:\n" + "\n".join(failures)


@pytest.mark.parametrize("context", sorted(TOKEN_CONTEXTS))
def test_no_token_leaks_in_token_context(context: str) -> None:
    failures = []
    for secret in SECRETS:
        if not secret.token:
            continue
        out = TOKEN_CONTEXTS[context](secret.text)
        leaked = leaks(secret, out)
        if leaked:
            failures.append(f"{secret.name}: {leaked[:3]} in {out[:300]!r}")
    assert not failures, f"{len(failures)} leaked in {context}:\n" + "\n".join(failures)


@pytest.mark.parametrize("limit", [50, 120, 200])
def test_a_cut_never_splits_a_secret(limit: int) -> None:
    """Whatever the cut position, the visible start of a secret is redacted too."""
    failures = []
    for secret in SECRETS:
        for offset in (3, len(secret.text) // 2, len(secret.text) - 3):
            text = "y" * (limit - offset) + " " + secret.text
            out = shorten(text, limit)
            shown = out.rstrip("…")
            bad = [p for p in secret.parts if len(p) >= 8 and any(
                shown.endswith(p[:k]) for k in range(8, len(p)))]
            if bad or leaks(secret, out):
                failures.append(f"{secret.name} cut at {offset}: {out[-60:]!r}")
    assert not failures, "\n".join(failures)


LOOK_ALIKE_CONTEXTS: dict[str, Callable[[str], str]] = {
    "plain": lambda t: t,
    "json": lambda t: json.dumps({"content": f"x\n{t}\n"}),
    "url": lambda t: "q=" + urllib.parse.quote_plus(t),
    "diff": diff_of,
}


@pytest.mark.parametrize("context", sorted(LOOK_ALIKE_CONTEXTS))
def test_look_alikes_are_left_alone(context: str) -> None:
    failures = []
    for text in LOOK_ALIKES:
        given = LOOK_ALIKE_CONTEXTS[context](text)
        result = R.redact(given)
        if result.count or result.text != given:
            failures.append(f"{text!r} -> {result.text!r}")
    assert not failures, f"{len(failures)} false positives in {context}:\n" + "\n".join(failures)


def test_look_alikes_in_an_approval_card() -> None:
    for text in LOOK_ALIKES:
        assert "[redacted]" not in approval_card("Bash", {"command": text}), text


def test_tool_input_values_are_redacted_before_serialising() -> None:
    preview = tool_preview("mcp__x__y", {"sql": f"-- a\n{GH}", "list": [f"\n{AWS_ID}"]})
    assert GH not in preview and AWS_ID not in preview
    assert preview.count("[redacted]") == 2


# --- linear time ------------------------------------------------------------------------

ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "pem_headers": lambda n: "-----BEGIN RSA PRIVATE KEY-----\n" * (n // 32),
    "pem_then_base64": lambda n: "-----BEGIN RSA PRIVATE KEY-----\n" + "QUJD" * (n // 4),
    "pem_headers_base64": lambda n: ("-----BEGIN PRIVATE KEY-----\n" + "QUJD" * 250 + "\n")
    * (n // 1028),
    "passwords_without_values": lambda n: "password=\n" * (n // 10),
    "passwords_spaced": lambda n: "password " * (n // 9),
    "base64_run": lambda n: "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo" * (n // 35),
    "schemes": lambda n: "://" * (n // 3),
    "scheme_words": lambda n: "a." * (n // 2) + "://",
    "url_no_at": lambda n: "a://x:" + "y:" * (n // 2),
    "prefixes_sk": lambda n: "sk-" * (n // 3),
    "prefixes_xoxb": lambda n: "xoxb-" * (n // 5),
    "prefixes_jwt": lambda n: "eyJ" * (n // 3),
    "bearers": lambda n: "bearer " * (n // 7),
    "escapes": lambda n: "\\n%3D+" * (n // 6),
    "flags": lambda n: "mysql " + "-x " * (n // 3),
    "curl_args": lambda n: "curl " + "-H x " * (n // 5),
    # one long line of command words: each must not read the rest of the line
    "curls": lambda n: "curl " * (n // 5),
    "mysqls": lambda n: "mysql " * (n // 6),
    "sshpasses": lambda n: "sshpass " * (n // 8),
    "docker_logins": lambda n: "docker login " * (n // 13),
    # one long line of many secrets: each must not look back to the start of the line
    "passwords_quoted": lambda n: "password='" * (n // 10),
    "url_credentials": lambda n: "http://x:y@" * (n // 11),
    # the rules added after the attacker review
    "yaml_keys": lambda n: "password:" * (n // 9),
    "yaml_long_values": lambda n: ("password: " + "a" * 300 + " ") * (n // 311),
    "settings": lambda n: "a=b password=" * (n // 13),
    "xml_tags": lambda n: "<password>" * (n // 10),
    "odbc_braces": lambda n: ";pwd={" * (n // 6),
    "config_sets": lambda n: "config set _authToken " * (n // 22),
    "env_defaults": lambda n: 'getenv("TOKEN", ' * (n // 16),
}


def _time(text: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        R.redact(text)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_redaction_is_linear(name: str) -> None:
    """Four times the input takes about four times as long; a quadratic rule would take
    sixteen. The margin (eight) absorbs a loaded machine: on 2 busy cores a doubling
    measured 4x once. A baseline keeps the sizes large enough to measure."""
    make = ADVERSARIAL[name]
    small, large = make(125_000), make(500_000)
    t_small, t_large = _time(small), _time(large)
    # A trivial regex over the same text: redaction is a bounded multiple of it.
    start = time.perf_counter()
    re.findall(r"[A-Z]{30}", large)
    baseline = max(time.perf_counter() - start, 1e-3)
    assert t_large < 0.01 or t_large / max(t_small, 1e-3) < 8, (t_small, t_large)
    assert t_large < 200 * baseline + 0.5, (t_large, baseline)


def test_a_megabyte_diff_of_pem_headers_is_quick() -> None:
    """The case that froze the daemon: 3 MB of BEGIN lines without END (19.7 s before)."""
    text = "+-----BEGIN RSA PRIVATE KEY-----\n" * (3_000_000 // 33)
    start = time.perf_counter()
    R.redact(text)
    assert time.perf_counter() - start < 3


async def test_large_bodies_are_redacted_off_the_loop() -> None:
    """A multi-megabyte diff is redacted in a thread: the loop (other sessions' cards, the
    control socket) keeps running meanwhile."""
    text = "+-----BEGIN RSA PRIVATE KEY-----\n" * (2_000_000 // 33) + GH
    assert len(text) > OFF_LOOP_CHARS
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    out = await redact_text(R, text)
    data = await redact_bytes(R, text.encode())
    done = True
    await task
    assert GH not in out and GH.encode() not in data
    assert ticks - before > 2  # a redaction on the loop would let the ticker run once


# Ordinary code that names passwords, tokens and secrets everywhere: the dependencies'
# own sources (parameters, annotations, docstrings, protocol constants) stay as they are.
ORDINARY_MODULES = [
    "aiohttp.client_middleware_digest_auth", "aiohttp.helpers", "aiohttp.client",
    "asyncssh.public_key", "asyncssh.auth", "asyncssh.connection", "asyncssh.kex_rsa",
    "telegram._bot", "telegram._passport.credentials", "telegram.ext._extbot",
    "slack_bolt.app.app", "slack_bolt.oauth.oauth_settings",
]


@pytest.mark.parametrize("module", ORDINARY_MODULES)
def test_dependency_sources_are_left_alone(module: str) -> None:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin).read_text(encoding="utf-8")
    result = R.redact(source)
    changed = [line for line, out in zip(source.splitlines(), result.text.splitlines(),
                                         strict=True) if line != out]
    assert result.count == 0, changed[:5]
