"""Agents on other hosts over SSH: one daemon, host keys verified, a dropped host disturbs
nothing else, and sessions resume when it is back."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.harness import wait_until


def remote_project(tmp_path: Path, name: str, host: str) -> tuple[Path, str]:
    path = tmp_path / f"remote-{name}"
    path.mkdir()
    return path, f'[[projects]]\nname = "{name}"\npath = "{path}"\nhost = "{host}"\n'


def host_env(bridge) -> dict[str, str]:
    # what the "remote" agents see: the test's tag (so no process outlives the test) and
    # the fake agent's own state dir
    return {"AGENT_BRIDGE_TEST_TAG": bridge.tag,
            "FAKE_CLAUDE_HOME": bridge.env["FAKE_CLAUDE_HOME"], "HOME": bridge.env["HOME"]}


def test_a_session_on_another_host_is_approved_and_diffed_over_ssh(make_bridge, ssh, tmp_path):
    bridge = make_bridge()
    box = ssh.add(tmp_path, "box1", env=host_env(bridge))
    path, project = remote_project(tmp_path, "api", "box1")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True)
    bridge.config.write_text(bridge.config.read_text() + box.config() + project)
    bridge.start()
    sid = bridge.json("new", "api", "please run a command")["id"]
    (pending,) = bridge.wait_approval(sid)
    session = bridge.session(sid)
    assert session["host"] == "box1"
    bridge.cli("approve", pending["id"])
    bridge.wait_state(sid, "idle")
    assert (path / "out.txt").read_text().strip() == "hi"
    assert any("cd " in c and "fake_claude.py" in c for c in box.commands)
    diff = bridge.json("diff", sid)
    assert diff["files"][0]["path"] == "out.txt"  # git ran on the host, over the connection
    listed = bridge.cli("sessions").stdout
    assert sid in listed


def test_an_unknown_or_changed_host_key_is_refused_with_how_to_fix(make_bridge, ssh, tmp_path):
    bridge = make_bridge()
    box = ssh.add(tmp_path, "box1", env=host_env(bridge))
    other = ssh.add(tmp_path, "imposter")
    box.known_hosts.write_text(other.known_hosts.read_text().replace(str(other.port),
                                                                       str(box.port)))
    _, project = remote_project(tmp_path, "api", "box1")
    bridge.config.write_text(bridge.config.read_text() + box.config() + project)
    bridge.start()
    result = bridge.cli("new", "api", "please run a command", check=False)
    assert result.returncode == 1
    assert "host key is unknown or has changed" in result.stderr
    assert f"ssh-keyscan -p {box.port} 127.0.0.1 >> {box.known_hosts}" in result.stderr
    assert not box.commands  # nothing ran on an unverified host


def test_an_unknown_client_key_is_refused(make_bridge, ssh, tmp_path):
    bridge = make_bridge()
    box = ssh.add(tmp_path, "box1", env=host_env(bridge))
    stranger = ssh.add(tmp_path, "stranger")
    box.key_file.write_bytes(stranger.key_file.read_bytes())
    _, project = remote_project(tmp_path, "api", "box1")
    bridge.config.write_text(bridge.config.read_text() + box.config() + project)
    bridge.start()
    result = bridge.cli("new", "api", "please run a command", check=False)
    assert result.returncode == 1 and "refused our key" in result.stderr


def test_a_cut_mid_approval_approves_nothing_and_the_session_resumes(make_bridge, ssh, tmp_path):
    bridge = make_bridge()
    box = ssh.add(tmp_path, "box1", env=host_env(bridge))
    path, project = remote_project(tmp_path, "api", "box1")
    bridge.config.write_text(bridge.config.read_text() + box.config() + project)
    bridge.start()
    sid = bridge.json("new", "api", "please run a command")["id"]
    (pending,) = bridge.wait_approval(sid)
    agent_session = bridge.session(sid)["agent_session_id"]
    ssh.drop(box)
    session = bridge.wait_state(sid, "disconnected")
    assert "connection to box1 dropped" in session["error"]
    (approval,) = session["approvals"]
    assert approval["state"] == "expired" and "dropped" in approval["reason"]
    assert bridge.cli("approve", pending["id"], check=False).returncode == 1
    assert not (path / "out.txt").exists()
    assert bridge.answers() == []
    bridge.cli("resume", sid, "go on")  # the host is reachable again: reconnects
    (again,) = bridge.wait_approval(sid)
    bridge.cli("approve", again["id"])
    assert bridge.wait_state(sid, "idle")["agent_session_id"] == agent_session


def test_two_hosts_and_local_with_one_host_down(make_bridge, ssh, tmp_path):
    bridge = make_bridge()
    up = ssh.add(tmp_path, "box1", env=host_env(bridge))
    down = ssh.add(tmp_path, "box2", env=host_env(bridge))
    path1, project1 = remote_project(tmp_path, "one", "box1")
    _, project2 = remote_project(tmp_path, "two", "box2")
    bridge.config.write_text(bridge.config.read_text() + up.config() + down.config() +
                             project1 + project2)
    bridge.start()
    remote = bridge.json("new", "one", "please run a command")["id"]
    doomed = bridge.json("new", "two", "please run a command")["id"]
    local = bridge.json("new", "demo", "please run a command")["id"]
    for sid in (remote, doomed, local):
        bridge.wait_approval(sid)
    ssh.stop(down)  # pulled the network from box2
    bridge.wait_state(doomed, "disconnected")
    for sid in (remote, local):
        (pending,) = bridge.session(sid)["pending_approvals"]
        bridge.cli("approve", pending["id"])
        bridge.wait_state(sid, "idle")
    assert (path1 / "out.txt").exists() and (bridge.project / "out.txt").exists()
    failed = bridge.cli("new", "two", "again", check=False)
    assert failed.returncode == 1 and "box2" in failed.stderr and "unreachable" in failed.stderr
    wait_until(lambda: bridge.session(remote)["state"] == "idle", what="box1 unaffected")


def test_doctor_checks_each_host_its_key_and_its_agent(make_bridge, ssh, tmp_path):
    import json

    bridge = make_bridge()
    good = ssh.add(tmp_path, "box1", env=host_env(bridge))
    bad = ssh.add(tmp_path, "box2")
    bad.known_hosts.write_text("")  # its key is unknown
    _, project = remote_project(tmp_path, "api", "box1")
    bridge.config.write_text(bridge.config.read_text() + good.config() + bad.config() + project)
    checks = {c["name"]: c for c in json.loads(bridge.cli("doctor", "--json",
                                                            check=False).stdout)}
    assert checks["host box1"]["status"] == "ok"
    assert checks["agent claude on box1"]["status"] == "ok"
    assert checks["host box2"]["status"] == "fail"
    assert "ssh-keyscan" in checks["host box2"]["detail"]


def test_over_ssh_a_write_card_knows_what_it_overwrites_and_turns_diff_apart(
        make_bridge, ssh, tmp_path):
    bridge = make_bridge(agents={"turns": ["write_each_turn"]})
    box = ssh.add(tmp_path, "box1", env=host_env(bridge))
    path, project = remote_project(tmp_path, "api", "box1")
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "start"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                       cwd=path, check=True)
    (path / "turn-2.txt").write_text("there before the session\n")  # 25 bytes
    bridge.config.write_text(bridge.config.read_text() + box.config() + project)
    bridge.start()
    sid = bridge.json("new", "api", "write", "--agent", "turns")["id"]
    (first,) = bridge.wait_approval(sid)
    assert first["on_disk"] == {str(path / "turn-1.txt"): None}  # looked up on the host
    bridge.cli("approve", first["id"])
    bridge.wait_state(sid, "idle")
    bridge.cli("send", sid, "again")
    wait_until(lambda: bridge.session(sid)["pending_approvals"], what="the second request")
    (second,) = bridge.session(sid)["pending_approvals"]
    assert second["on_disk"] == {str(path / "turn-2.txt"): 25}
    bridge.cli("approve", second["id"])
    wait_until(lambda: bridge.session(sid)["turns"] == 2, what="the second turn")
    # turn 2's own change, computed on the host (the patches go to git over the connection)
    own = bridge.json("diff", sid, "--turn", "2")
    assert [f["path"] for f in own["files"]] == ["turn-2.txt"]
    assert "-there before the session" in own["diff"] and "+written in turn 2" in own["diff"]
    assert [f["path"] for f in bridge.json("diff", sid, "--turn", "1")["files"]] == [
        "turn-1.txt"]
