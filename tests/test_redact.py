"""bridge.redact: every fake secret goes, ordinary code stays exactly as it was.

The fake secrets are assembled from pieces so that secret scanners do not flag this file.
"""

from __future__ import annotations

import pytest

from bridge.diffs import summarize_diff
from bridge.redact import REDACTED, PatternError, Redacted, Redactor

R = REDACTED

GH = "gh" + "p_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
TG = "123456789" + ":" + "AAH" + "x9Yz_-" * 5 + "ab"
OPENAI = "sk-" + "proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
ANTHROPIC = "sk-" + "ant-" + "api03-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0Ed"
AWS_ID = "AK" + "IA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI" + "/K7MDENG/bPxRfiCYEXAMPLEKEY"
GOOGLE = "AI" + "za" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"
STRIPE = "sk" + "_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
JWT = (
    "eyJ" + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJ" + "zdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM_BODY = "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2Ti\nz4fWv8H5jX0Yp1Qk9LmN+/Ab==\n"


def pem(kind: str) -> str:
    label = f"{kind} PRIVATE KEY" if kind else "PRIVATE KEY"
    return f"-----BEGIN {label}-----\n{PEM_BODY}-----END {label}-----"


# (text, expected text after redaction, expected count)
SECRETS: list[tuple[str, str, int]] = [
    (f"key id {AWS_ID} here", f"key id {R} here", 1),
    ("ASIA" + "Y34FZKBOKMUTVV7A", R, 1),
    (f"aws_secret_access_key = {AWS_SECRET}", f"aws_secret_access_key = {R}", 1),
    (f'AWS_SECRET_ACCESS_KEY="{AWS_SECRET}"', f'AWS_SECRET_ACCESS_KEY="{R}"', 1),
    (f'"SecretAccessKey": "{AWS_SECRET}"', f'"SecretAccessKey": "{R}"', 1),
    (f"token {GH}", f"token {R}", 1),
    ("gh" + "o_" + "Ab" * 18, R, 1),
    ("gh" + "u_" + "Cd" * 18, R, 1),
    ("gh" + "s_" + "Ef" * 18, R, 1),
    ("gh" + "r_" + "Gh" * 18, R, 1),
    ("github" + "_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABC", R, 1),
    ("xo" + "xb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", R, 1),
    ("xo" + "xp-" + "1234567890-1234567890-1234567890-abcdef0123456789", R, 1),
    ("xo" + "xa-" + "2-1234567890-abcdefABCDEF", R, 1),
    ("xo" + "xr-" + "1234567890-abcdefABCDEF", R, 1),
    ("xa" + "pp-" + "1-A0123456789-1234567890123-abcdef0123456789", R, 1),
    (
        "hook: https://hooks.slack.com/services/"
        + "T0000"
        + "0000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        f"hook: https://hooks.slack.com/services/{R}",
        1,
    ),
    (f"TELEGRAM={TG}", f"TELEGRAM={R}", 1),
    (f"https://api.telegram.org/bot{TG}/getMe", f"https://api.telegram.org/bot{R}/getMe", 1),
    (f"OPENAI_API_KEY={OPENAI}", f"OPENAI_API_KEY={R}", 1),
    ("key: sk-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4", f"key: {R}", 1),
    (f"client = Anthropic(api_key='{ANTHROPIC}')", f"client = Anthropic(api_key='{R}')", 1),
    (f"maps {GOOGLE}", f"maps {R}", 1),
    (f"stripe.api_key = '{STRIPE}'", f"stripe.api_key = '{R}'", 1),
    ("rk" + "_live_" + "51H8abcDEFghiJKLmnoPQR", R, 1),
    (f"Authorization: Bearer {JWT}", f"Authorization: Bearer {R}", 1),
    (f"cookie={JWT};", f"cookie={R};", 1),
    (pem("RSA"), "\n".join([R] * 4), 1),
    (pem("OPENSSH"), "\n".join([R] * 4), 1),
    (pem("EC"), "\n".join([R] * 4), 1),
    (pem(""), "\n".join([R] * 4), 1),
    (pem("ENCRYPTED"), "\n".join([R] * 4), 1),
    ('{"key": "' + pem("RSA").replace("\n", "\\n") + '\\n"}', f'{{"key": "{R}\\n"}}', 1),
    ('password = "hunter2"', f'password = "{R}"', 1),
    ("password='correct-horse'", f"password='{R}'", 1),
    ("DB_PASSWORD=hunter2hunter2", f"DB_PASSWORD={R}", 1),
    ("passwd: s3cr3t!pass", f"passwd: {R}", 1),
    ("secret=abcdefgh-1234", f"secret={R}", 1),
    ('"client_secret": "0123456789abcdef"', f'"client_secret": "{R}"', 1),
    ("api_key=9f8e7d6c5b4a", f"api_key={R}", 1),
    ("apiKey: 'AbCdEf123'", f"apiKey: '{R}'", 1),
    ("export GITLAB_TOKEN=glpat-abcDEF123456", f"export GITLAB_TOKEN={R}", 1),
    ("SECRET_KEY = 'django-insecure-x8#k2'", f"SECRET_KEY = '{R}'", 1),
    ("token => 'abcdef123456'", f"token => '{R}'", 1),
    ("?access_token=abcdef123456&page=2", f"?access_token={R}&page=2", 1),
    ("mysql --password=Sup3rS3cret db", f"mysql --password={R} db", 1),
    ("https://alice:s3cr3tpw@example.com/repo.git", f"https://alice:{R}@example.com/repo.git", 1),
    ("postgres://app:p4ss@db.internal:5432/app", f"postgres://app:{R}@db.internal:5432/app", 1),
    ("https://:tok3n@host.example", f"https://:{R}@host.example", 1),
    # found missing by an attacker review
    ("POSTGRES_PASSWORD: example", f"POSTGRES_PASSWORD: {R}", 1),
    ("  db_password: postgres  # dev only", f"  db_password: {R}  # dev only", 1),
    ("password: supersecretpassword", f"password: {R}", 1),
    ("password: Tr0ub4dor&3", f"password: {R}", 1),
    ("+smtp_password: hunter2pw", f"+smtp_password: {R}", 1),
    ("DB_PWD: hunter2\nuser: app", f"DB_PWD: {R}\nuser: app", 1),
    ('psql "host=h user=u password=hunter2"', f'psql "host=h user=u password={R}"', 1),
    ("jdbc:mysql://h/db?user=root&password=hunter2",
     f"jdbc:mysql://h/db?user=root&password={R}", 1),
    ("password=hunter2", f"password={R}", 1),
    ("export DB_PASSWORD='correct horse battery'", f"export DB_PASSWORD='{R}'", 1),
    ('password = "correct horse battery staple"', f'password = "{R}"', 1),
    ('os.environ["DB_PASSWORD"] = "hunter2"', f'os.environ["DB_PASSWORD"] = "{R}"', 1),
    ('os.environ.setdefault("API_KEY", "abcd1234efgh5678")',
     f'os.environ.setdefault("API_KEY", "{R}")', 1),
    ("<password>hunter2secret</password>", f"<password>{R}</password>", 1),
    ("Server=x;Uid=sa;Pwd=Hunter2!;", f"Server=x;Uid=sa;Pwd={R};", 1),
    ("hv" + "s.CAESIabcdefghijklmnopqrstuvwxyz1234567890", R, 1),
    ("npm config set //registry.npmjs.org/:_authToken abcdef12-3456-7890-abcd-ef1234567890",
     f"npm config set //registry.npmjs.org/:_authToken {R}", 1),
    ("GOC" + "SPX-abcdefghijklmnopqrstuvwxyz12", R, 1),
    ("https://x.example/api?key=0123456789abcdef0123456789abcdef",
     f"https://x.example/api?key={R}", 1),
    (GH + "_old", f"{R}_old", 1),
    (
        f"GITHUB_TOKEN={GH}\nAWS_ACCESS_KEY_ID={AWS_ID}\npassword: 'pw12345'",
        f"GITHUB_TOKEN={R}\nAWS_ACCESS_KEY_ID={R}\npassword: '{R}'",
        3,
    ),
]


@pytest.mark.parametrize(("text", "expected", "count"), SECRETS)
def test_secret_is_redacted(text: str, expected: str, count: int) -> None:
    result = Redactor().redact(text)
    assert result == Redacted(expected, count)


HARMLESS = [
    "password = input()",
    "password = getpass.getpass('Password: ')",
    "token = get_token()",
    "token = await fetch_token(session)",
    "password_field = forms.CharField()",
    "def secret(self) -> str:",
    "secret: bool = False",
    "self.token = token",
    "self._password = password",
    'api_key=os.environ["X"]',
    'api_key = os.environ.get("OPENAI_API_KEY")',
    'password = kwargs.get("password")',
    "password: str",
    "token: str | None = None",
    "password: Optional[str] = None",
    "def test_password_is_redacted() -> None:",
    "def test_token_refresh_after_expiry():",
    "class TokenBucket:",
    "if password == confirm:",
    "if token != expected_token:",
    "max_tokens=4096",
    "tokenizer = AutoTokenizer.from_pretrained(model_name)",
    "password=password,",
    "token=token",
    "token = tokens[0]",
    "secret = None",
    'token = ""',
    "password = ''",
    "TOKEN=${{ secrets.GITHUB_TOKEN }}",
    "DB_PASSWORD=${DB_PASSWORD}",
    "password: $DB_PASSWORD",
    "password = %(password)s",
    'label = "Password"',
    'headers = {"Authorization": f"Bearer {token}"}',
    "const token = req.query.token;",
    'token := os.Getenv("TOKEN")',
    'let token = env::var("TOKEN")?;',
    'String password = request.getParameter("pw");',
    "WHERE token = ? AND expires > now()",
    "task-sk-list-of-things-with-1-digit",
    "risk-assessment-1234567890abcdefghij",
    "commit 3f2a9c0e1b2d4f5a6b7c8d9e0f1a2b3c4d5e6f70",
    "Merge: 3f2a9c0 1b2d4f5",
    "session_id = 550e8400-e29b-41d4-a716-446655440000",
    "uuid.UUID('550e8400-e29b-41d4-a716-446655440000')",
    "data = 'aGVsbG8gd29ybGQ='",
    "b64 = base64.b64encode(b'hello')",
    "https://example.com:8443/path?q=1",
    "git@github.com:org/repo.git",
    "ssh://git@github.com/org/repo.git",
    "time 12:34:56 on 2024-01-01",
    "created 1700000000:short",
    "primary_key = 'id'",
    "cache_key = f'user:{uid}'",
    "tokens_used = 1234",
    "password_hash = make_password(raw)",
    "secretName: app-secrets",
    "AKIA is the prefix of AWS access key ids",
    "see https://docs.github.com/en/authentication",
    "sk-learn",
    "the -----BEGIN CERTIFICATE----- block is public",
    "x = y if token else z",
    "return {'token': token, 'expires': exp}",
    # Seen in real code (pygments, asyncssh, cryptography, slack-sdk, pip):
    'Token:                     "#cccccc",',
    ":type passphrase: `str` or `bytes`",
    "def generate(cls, signing_key: 'SSHKey', key: 'SSHKey') -> None:",
    'private_key: "_RSAPrivateKey",',
    "private_key: PKCS7PrivateKeyTypes,",
    "_cert_algorithm = b'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com'",
    "app_token: App-level token starting with `xapp-`",
    "export SLACK_BOT_TOKEN=xoxb-***",
    'e.g. "http://user:pass@some.proxy.com"',
    "'http://username:password@host.com:80/path?query#fragment'",
    '_SK_START = b"-----BEGIN OPENSSH PRIVATE KEY-----"',
    "ResourceEndpoint.__init__(self, default_token='Bearer')",
    'password = ":****"',
    ":type passphrase: :py:data:`bytes`",
    "password: The password for the database",
    "password: ${DB_PASSWORD}",
    "password: !vault |",
    "    passphrase: _PassphraseArg,",
    "    MSG_USERAUTH_GSSAPI_TOKEN: _process_token,",
    "    token: str,",
    "    password=password,",
    "    api_key=api_key",
    'token: string\\n"',
]


@pytest.mark.parametrize("text", HARMLESS)
def test_ordinary_code_is_left_alone(text: str) -> None:
    result = Redactor().redact(text)
    assert result == Redacted(text, 0)


def test_whole_corpus_count() -> None:
    text = "\n".join(s for s, _, _ in SECRETS) + "\n" + "\n".join(HARMLESS)
    result = Redactor().redact(text)
    assert result.count == sum(c for _, _, c in SECRETS)
    assert result.text.endswith("\n".join(HARMLESS))


def test_redaction_is_idempotent() -> None:
    redactor = Redactor()
    once = redactor.redact("\n".join(s for s, _, _ in SECRETS))
    twice = redactor.redact(once.text)
    assert twice == Redacted(once.text, 0)


def test_overlapping_rules_count_once() -> None:
    # The GitHub rule and the assignment rule both find this one.
    assert Redactor().redact(f'token = "{GH}"') == Redacted(f'token = "{R}"', 1)


def test_pem_in_a_diff_keeps_line_structure() -> None:
    body = "".join(f"+{line}\n" for line in pem("RSA").splitlines())
    n = len(pem("RSA").splitlines())
    diff = (
        "diff --git a/key.pem b/key.pem\nnew file mode 100644\nindex 0000000..1111111\n"
        f"--- /dev/null\n+++ b/key.pem\n@@ -0,0 +1,{n + 1} @@\n{body}+tail\n"
    )
    result = Redactor().redact(diff)
    assert result.count == 1
    assert result.text.count("\n") == diff.count("\n")
    assert f"+{R}\n" * n + "+tail\n" in result.text
    summary = summarize_diff(result.text.encode())
    assert summary.parse_error is None
    assert summary.added == n + 1


def test_unterminated_pem_is_still_redacted() -> None:
    text = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7S\nabc=\nimport os\n"
    result = Redactor().redact(text)
    assert result.count == 1
    assert result.text == f"{R}\n{R}\n{R}\nimport os\n"


def test_bytes_round_trip_non_utf8() -> None:
    redactor = Redactor()
    raw = b'caf\xe9 \xff\xfe password="hunter2" \x80\n' + GH.encode() + b"\n\x00end"
    out = redactor.redact_bytes(raw)
    assert out == b'caf\xe9 \xff\xfe password="[redacted]" \x80\n[redacted]\n\x00end'
    untouched = b"\xff\xfe plain \x80 bytes"
    assert redactor.redact_bytes(untouched) is untouched


def test_extra_patterns() -> None:
    redactor = Redactor([r"ACME-[0-9]{6}", r"internal_id=(?P<secret>\w+)"])
    assert redactor.redact("ticket ACME-123456 ok") == Redacted(f"ticket {R} ok", 1)
    assert redactor.redact("internal_id=xyz") == Redacted(f"internal_id={R}", 1)
    assert Redactor().redact("ticket ACME-123456 ok").count == 0


@pytest.mark.parametrize("pattern", ["(unclosed", "[a-", "x{2,1}"])
def test_bad_extra_pattern_names_it(pattern: str) -> None:
    with pytest.raises(ValueError, match="bad redaction pattern") as info:
        Redactor(["ok", pattern])
    assert isinstance(info.value, PatternError)
    assert info.value.pattern == pattern
    assert repr(pattern) in str(info.value)


def test_pattern_matching_empty_string_is_refused() -> None:
    with pytest.raises(PatternError):
        Redactor(["x*"])


def test_large_text() -> None:
    # Many BEGIN lines without END among them: each must not rescan the rest of the text.
    chunk = "\n".join(HARMLESS) + "\n" + f"password='{GH}'\n"
    text = chunk * (5_000_000 // len(chunk))
    result = Redactor().redact(text)
    assert result.count == text.count(GH)
