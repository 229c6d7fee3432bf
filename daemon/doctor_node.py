"""doctor's Node.js check: the Node version each agent's npm package asks for.

An agent installed from npm (Codex's `bin/codex.js`, Claude Code's package) names the Node
it needs in its package.json (`engines.node`, e.g. ">=22.0.0"). When the agent's command is
a Node script, an older or missing Node means it does not start: a failure. When it is a
native binary inside the package, Node is needed only to install or update it: a warning.
Agents that are neither (a native installer, a wrapper) are not checked.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bridge.config import Config
from daemon.doctor import Check

_VERSION = re.compile(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")
_MINIMUM = re.compile(r"\s*(>=|\^|~|>)?\s*v?(\d+(?:\.\d+){0,2})(?:\.x)?\s*")


@dataclass(frozen=True, slots=True)
class NodeNeed:
    agent: str
    binary: Path
    package: str  # name@version
    wants: str | None  # engines.node as written
    runs_on_node: bool


def _release(text: str) -> tuple[int, int, int] | None:
    found = _VERSION.fullmatch(text.strip())
    if found is None:
        return None
    major, minor, patch = (int(part or 0) for part in found.groups())
    return major, minor, patch


def minimum(wants: str) -> tuple[int, int, int] | None:
    """The lowest version an engines range allows, for the forms npm packages use
    (">=22.0.0", ">=16", "^20.10", "20.x"); None for the rest (not compared)."""
    lowest = None
    for alternative in wants.split("||"):
        found = _MINIMUM.fullmatch(alternative.split(" <")[0])
        version = _release(found.group(2)) if found else None
        if version is None:
            return None
        if found and found.group(1) == ">":
            version = (version[0], version[1], version[2] + 1)
        lowest = version if lowest is None else min(lowest, version)
    return lowest


def _runs_on_node(binary: Path) -> bool:
    try:
        with binary.open("rb") as handle:
            first = handle.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and b"node" in first


def _package_of(binary: Path) -> tuple[str, str | None] | None:
    """(name@version, engines.node) of the npm package the binary lies in."""
    for directory in list(binary.parents)[:4]:
        manifest = directory / "package.json"
        if not manifest.is_file():
            continue
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or "name" not in data:
            continue
        engines = data.get("engines")
        wants = engines.get("node") if isinstance(engines, dict) else None
        return f"{data['name']}@{data.get('version', '?')}", wants if isinstance(
            wants, str) else None
    return None


def node_needs(config: Config, env: Mapping[str, str]) -> list[NodeNeed]:
    needs = []
    for name, agent in sorted(config.agents.items()):
        found = shutil.which(agent.command[0], path=env.get("PATH"))
        if found is None:
            continue  # the agent check says so
        binary = Path(found).resolve()
        package = _package_of(binary)
        runs_on_node = _runs_on_node(binary)
        if package is None and not runs_on_node:
            continue
        label, wants = package if package else (binary.name, None)
        needs.append(NodeNeed(name, binary, label, wants, runs_on_node))
    return needs


def node_version(env: Mapping[str, str]) -> str | None:
    node = shutil.which("node", path=env.get("PATH"))
    if node is None:
        return None
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10,
                              check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def node_checks(config: Config, env: Mapping[str, str]) -> list[Check]:
    needs = node_needs(config, env)
    if not needs:
        return []
    installed = node_version(env)
    checks = []
    for need in needs:
        name = f"node for {need.agent}"
        severity = "fail" if need.runs_on_node else "warn"
        role = ("it runs on Node" if need.runs_on_node else
                "only installing or updating it needs Node: the binary runs without")
        wanted = f"Node {need.wants}" if need.wants else "Node"
        if installed is None:
            checks.append(Check(name, severity, f"node is not on PATH, and {need.package} "
                                                f"needs it ({role}): install {wanted} "
                                                "(nodejs.org, or nvm)"))
            continue
        have, lowest = _release(installed), minimum(need.wants) if need.wants else None
        if have is not None and lowest is not None and have < lowest:
            checks.append(Check(name, severity, f"node {installed} is older than "
                                                f"{need.wants}, which {need.package} asks "
                                                f"for ({role}): install {wanted} "
                                                "(nodejs.org, or nvm)"))
        else:
            checks.append(Check(name, "ok", f"node {installed}"
                                            + (f" ({need.package} wants {need.wants})"
                                               if need.wants else "")))
    return checks
