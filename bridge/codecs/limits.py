"""Usage and rate limits, as each agent reports them, decoded into `UsageLimit`.

Claude Code (checked with the real 2.1.331, which sends it when it reads the
`anthropic-ratelimit-unified-*` headers of a response):
    {"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1796193292,
     "rateLimitType":"five_hour","isUsingOverage":false},"uuid":"…","session_id":"…"}
`status` is `allowed`, `allowed_warning` or `rejected`; `resetsAt` is in epoch seconds. An
`assistant` message refused for the limit carries `"error":"rate_limit"` and the CLI's text.

Codex app-server: `account/rateLimits/updated {rateLimits:{limitId, primary, secondary,
rateLimitReachedType, …}}`, each window `{usedPercent, windowDurationMins, resetsAt}` (epoch
seconds) or null; a usage-limit failure is an `error` notification (or a failed turn) whose
`error.codexErrorInfo` is `usageLimitExceeded`.
"""

from __future__ import annotations

from typing import Any

from bridge.events import JSON, UsageLimit

CLAUDE_STATUSES = frozenset({"allowed", "allowed_warning", "rejected"})


def claude_rate_limit(m: JSON) -> UsageLimit:
    """A Claude `rate_limit_event`; raises `KeyError`/`TypeError` when it lacks its info."""
    info = m["rate_limit_info"]
    if not isinstance(info, dict):
        raise TypeError("rate_limit_info is not an object")
    status = info["status"]
    if status not in CLAUDE_STATUSES:
        raise TypeError(f"unknown rate limit status {status!r}")
    limit = info.get("rateLimitType")
    return UsageLimit(
        hit=status == "rejected",
        warning=status == "allowed_warning",
        resets_at=_epoch(info.get("resetsAt")),
        limit=limit if isinstance(limit, str) else None,
    )


def claude_refused(m: JSON, text: str) -> UsageLimit | None:
    """An `assistant` message the API refused for the limit (`error: rate_limit`)."""
    if m.get("error") != "rate_limit":
        return None
    return UsageLimit(hit=True, text=text or None)


def codex_rate_limits(params: JSON) -> UsageLimit | None:
    """Codex `account/rateLimits/updated`: hit when it names the limit reached, or a window
    is used up (the reset is that window's; the later one when both are). None when it says
    nothing (no window, nothing reached: what 0.169.0 sends after each turn without an
    account)."""
    limits = params.get("rateLimits")
    if not isinstance(limits, dict):
        raise TypeError("rateLimits is not an object")
    windows = {name: w for name in ("primary", "secondary")
               if isinstance(w := limits.get(name), dict)}
    full = {name: w for name, w in windows.items() if _percent(w) >= 100}
    reached = limits.get("rateLimitReachedType")
    hit = bool(reached) or bool(full) or limits.get("spendControlReached") is True
    if not windows and not hit:
        return None
    near = any(_percent(w) >= 90 for w in windows.values())
    pick = full or (windows if hit else {})
    resets = [r for w in pick.values() if (r := _epoch(w.get("resetsAt"))) is not None]
    name = reached if isinstance(reached, str) else ",".join(full) or None
    return UsageLimit(hit=hit, warning=near and not hit,
                      resets_at=max(resets) if resets else None, limit=name)


def codex_limit_error(error: Any) -> UsageLimit | None:
    """A Codex error object that says the usage limit was hit (`usageLimitExceeded`)."""
    if not isinstance(error, dict):
        return None
    info = error.get("codexErrorInfo")
    if info != "usageLimitExceeded" and not (isinstance(info, dict)
                                             and "usageLimitExceeded" in info):
        return None
    message = error.get("message")
    return UsageLimit(hit=True, text=message if isinstance(message, str) else None)


def _percent(window: JSON) -> float:
    used = window.get("usedPercent")
    return float(used) if isinstance(used, int | float) and not isinstance(used, bool) else 0.0


def _epoch(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value / 1000 if value > 1e11 else value)  # milliseconds, where sent so
