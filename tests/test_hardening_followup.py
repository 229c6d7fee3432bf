"""Issue 14, follow-ups: validation that a trailing newline slipped past, doctor reporting
the state dir's permissions, and a clean shutdown in the middle of a turn."""

from __future__ import annotations

import pytest

from bridge.config import load_config, parse_duration
from bridge.errors import ConfigError

# -- config: every pattern matches the whole value ------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[[projects]]\nname = "api\\n"\npath = "/srv/api"\n', "projects[0].name"),
        ('[agents."claude\\n"]\ncommand = ["claude"]\n', "agents.claude\n"),
        ('[hosts."box\\n"]\naddress = "box"\n', "hosts.box\n"),
        ('[hosts.box]\naddress = "box.example\\n"\n', "hosts.box.address"),
        ('[hosts.box]\naddress = "::1\\n"\n', "hosts.box.address"),
        ('[hosts.box]\naddress = "box"\nuser = "deploy\\n"\n', "hosts.box.user"),
        ('[hosts.box]\naddress = "box"\nuser = "de ploy"\n', "hosts.box.user"),
        ('[approvals]\ntimeout = "30m\\n"\n', None),  # a duration may have spaces around
    ],
)
def test_a_value_with_a_trailing_newline_is_a_config_error_naming_the_key(text, key):
    if key is None:
        assert load_config(text).approvals.timeout == 1800
        return
    with pytest.raises(ConfigError) as info:
        load_config(text)
    assert info.value.key == key


def test_plain_names_and_hosts_still_load():
    config = load_config('[[projects]]\nname = "api.v2_x-1"\npath = "/srv/api"\n'
                         '[hosts.box]\naddress = "[::1]"\nuser = "deploy@corp"\n'
                         '[hosts.b2]\naddress = "build-2.example.com"\n')
    assert config.hosts["box"].user == "deploy@corp"
    assert parse_duration(" 2h ", "k") == 7200
    with pytest.raises(ConfigError):
        parse_duration("2h\nx", "k")
