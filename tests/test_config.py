import pytest

from bridge.config import ConfigError, load_config, parse_duration, require_secret

FULL = """
default_agent = "claude"
[daemon]
state_dir = "/tmp/x"
shutdown_grace = "3s"
[agents.claude]
command = ["claude"]
args = ["--setting-sources="]
[agents.gemini]
protocol = "acp"
command = ["gemini", "--acp"]
[[projects]]
name = "api"
path = "~/src/api"
agent = "gemini"
[approvals]
timeout = "30m"
on_timeout = "keep"
[telegram]
chat_id = -100123
allowed_user_ids = [42]
[slack]
channel = "C123"
allowed_user_ids = ["U1"]
[redact]
patterns = ["internal-[0-9]+"]
"""


def test_a_full_config_loads_with_types():
    config = load_config(FULL)
    assert config.daemon.shutdown_grace == 3.0
    assert config.approvals.timeout == 1800.0
    assert config.approvals.on_timeout == "keep"
    assert config.agents["gemini"].protocol == "acp"
    assert config.agents["codex"].command == ["codex", "app-server"]  # defaults stay
    assert config.project("api").agent == "gemini"
    assert config.telegram.chat_id == -100123
    assert config.telegram.token_env == "TELEGRAM_BOT_TOKEN"


def test_no_file_means_defaults():
    config = load_config("")
    assert config.agents["claude"].command == ["claude"]
    assert config.approvals.on_timeout == "deny"
    assert config.telegram is None


def test_the_example_config_is_valid():
    from pathlib import Path

    text = (Path(__file__).parent.parent / "config" / "agent-bridge.example.toml").read_text()
    load_config(text)


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('[agents.claude]\ncommand = "claude"', "agents.claude.command", "expected a list"),
        ("[approvals]\ntimeot = 1", "approvals.timeot", "unknown key"),
        ('[approvals]\ntimeout = "soon"', "approvals.timeout", "duration"),
        ('[approvals]\non_timeout = "allow"', "approvals.on_timeout", "'deny', 'keep'"),
        ('[telegram]\nchat_id = 1\ntoken = "123:abc"', "telegram.token", "environment"),
        ("[telegram]\nallowed_user_ids = [1]", "telegram.chat_id", "required"),
        ('[telegram]\nchat_id = "x"', "telegram.chat_id", "expected an integer"),
        ('[[projects]]\nname = "a"', "projects[0].path", "required"),
        ('[[projects]]\nname="a"\npath="/"\nagent="nope"', "projects[0].agent", "no agent"),
        ('[[projects]]\nname="a"\npath="/"\nhost="box"', "projects[0].host", "no host"),
        ('[agents.x]\nprotocol = "acp"', "agents.x.command", "required"),
        ('default_agent = "nope"', "default_agent", "no agent"),
        ('[redact]\npatterns = ["("]', "redact.patterns[0]", "regular expression"),
        ("[daemon]\nmax_line_bytes = true", "daemon.max_line_bytes", "integer"),
        ("not toml [", "", "not valid TOML"),
    ],
)
def test_errors_name_the_key(text, key, words):
    with pytest.raises(ConfigError) as info:
        load_config(text)
    assert info.value.key == key
    assert words in str(info.value)


def test_durations():
    assert parse_duration("90s", "k") == 90
    assert parse_duration("2h", "k") == 7200
    assert parse_duration("7d", "k") == 7 * 86400
    assert parse_duration(15, "k") == 15
    with pytest.raises(ConfigError):
        parse_duration(-1, "k")


def test_secrets_come_from_the_environment_and_name_the_key():
    assert require_secret({"T": "abc"}, "T", "telegram.token_env") == "abc"
    with pytest.raises(ConfigError) as info:
        require_secret({}, "T", "telegram.token_env")
    assert info.value.key == "telegram.token_env"
    assert "T is not set" in str(info.value)
