"""bridge.config_edit: keys set in one table, every other byte of the file kept."""

from __future__ import annotations

import tomllib

import pytest

from bridge.config_edit import ConfigEditError, set_table_keys, toml_value

EXAMPLE = """# agent-bridge
default_agent = "claude"   # the usual one

[telegram]  # the bot
# who may tap
allowed_user_ids = [
  1,   # ana
  2,   # ben
]
chat_id = -1001
poll_timeout = 1

[[projects]]
name = "api"
path = "/srv/api"

[redact]
patterns = ["a]b", 'c[d']
"""


def test_replaces_a_multi_line_array_and_keeps_comments_and_order():
    text = set_table_keys(EXAMPLE, "telegram", {"chat_id": -100123,
                                                "allowed_user_ids": [1, 2, 4242]})
    assert text == EXAMPLE.replace(
        "allowed_user_ids = [\n  1,   # ana\n  2,   # ben\n]\n",
        "allowed_user_ids = [1, 2, 4242]\n").replace("chat_id = -1001\n",
                                                       "chat_id = -100123\n")


def test_adds_missing_keys_after_the_tables_last_key():
    text = set_table_keys(EXAMPLE, "telegram", {"base_url": "http://127.0.0.1:1/bot"})
    assert 'poll_timeout = 1\nbase_url = "http://127.0.0.1:1/bot"\n\n[[projects]]' in text


def test_appends_a_missing_table_and_creates_a_file_from_nothing():
    text = set_table_keys(EXAMPLE, "slack", {"channel": "C0X", "allowed_user_ids": ["U0A"]})
    assert text == EXAMPLE + '\n[slack]\nchannel = "C0X"\nallowed_user_ids = ["U0A"]\n'
    assert set_table_keys("", "slack", {"channel": "C0X"}) == '[slack]\nchannel = "C0X"\n'
    no_newline = set_table_keys("a = 1", "slack", {"channel": "C0X"})
    assert tomllib.loads(no_newline) == {"a": 1, "slack": {"channel": "C0X"}}


def test_brackets_inside_strings_do_not_confuse_it():
    text = set_table_keys(EXAMPLE, "redact", {"patterns": ["x"]})
    assert tomllib.loads(text)["redact"] == {"patterns": ["x"]}
    assert text.startswith(EXAMPLE.split("[redact]")[0])


def test_a_commented_out_table_is_not_taken_for_the_real_one():
    example = "# [telegram]\n# chat_id = -1\n"
    assert set_table_keys(example, "telegram", {"chat_id": 5}) == (
        example + "\n[telegram]\nchat_id = 5\n")


@pytest.mark.parametrize("text", ["telegram = { chat_id = 1 }\n",
                                  "telegram.chat_id = 1\n"])
def test_tables_written_another_way_are_refused_with_the_lines_to_add(text):
    with pytest.raises(ConfigEditError) as info:
        set_table_keys(text, "telegram", {"chat_id": 5})
    assert "[telegram]\nchat_id = 5" in str(info.value)


def test_invalid_toml_is_refused():
    with pytest.raises(ConfigEditError, match="not valid TOML"):
        set_table_keys("[telegram\n", "telegram", {"chat_id": 5})


def test_values_are_written_as_toml():
    assert toml_value('a "quoted" \\ \u00e9') == '"a \\"quoted\\" \\\\ \u00e9"'
    assert toml_value(True) == "true" and toml_value(-5) == "-5"
    assert toml_value(["U1", "U2"]) == '["U1", "U2"]'
    assert tomllib.loads("k = " + toml_value("tab\there\nnew"))["k"] == "tab\there\nnew"
