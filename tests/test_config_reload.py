"""What a reload may change live, and what it names for a restart (bridge/config_reload.py)."""

from __future__ import annotations

import pytest

from bridge.config import load_config
from bridge.config_reload import plan_reload
from bridge.errors import ConfigError

BASE = """
[daemon]
state_dir = "/tmp/ab-state"
log_level = "info"
[[projects]]
name = "api"
path = "/src/api"
[approvals]
timeout = "30m"
"""


def test_live_changes_are_applied_and_restart_only_ones_kept_and_named():
    old = load_config(BASE)
    new = load_config(BASE.replace('"/tmp/ab-state"', '"/tmp/other"')
                      .replace('"info"', '"debug"').replace('"30m"', '"5m"')
                      + '[[projects]]\nname = "web"\npath = "/src/web"\n'
                      + '[redact]\npatterns = ["sk_[a-z]+"]\n'
                      + '[telegram]\nchat_id = -100123\n')
    plan = plan_reload(old, new)
    assert plan.applied == ("projects", "approvals", "daemon.log_level")
    assert plan.needs_restart == ("daemon.state_dir", "telegram", "redact.patterns")
    assert [p.name for p in plan.config.projects] == ["api", "web"]
    assert plan.config.approvals.timeout == 300
    assert plan.config.daemon.log_level == "debug"
    # what needs a restart keeps its running value
    assert plan.config.daemon.state_dir == "/tmp/ab-state"
    assert plan.config.telegram is None and plan.config.redact.patterns == []


def test_an_unchanged_file_changes_nothing():
    plan = plan_reload(load_config(BASE), load_config(BASE))
    assert (plan.applied, plan.needs_restart) == ((), ())
    assert plan.config == load_config(BASE)


def test_a_project_that_needs_what_only_a_restart_brings_is_refused_with_its_key():
    new = load_config(BASE + '[[projects]]\nname = "far"\npath = "/srv/far"\nhost = "box"\n'
                      + '[hosts.box]\naddress = "10.0.0.2"\n')
    with pytest.raises(ConfigError) as caught:
        plan_reload(load_config(BASE), new)
    assert caught.value.key == "projects[1].host"
    routed = load_config(BASE + '[telegram]\nchat_id = -100123\n'
                         + '[[projects]]\nname = "ops"\npath = "/srv/ops"\n'
                         + 'telegram_chat_id = -100999\n')
    with pytest.raises(ConfigError) as caught:
        plan_reload(load_config(BASE), routed)
    assert caught.value.key == "projects[1].telegram_chat_id"
