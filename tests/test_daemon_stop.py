"""A stop that hangs says in the log what it still waits for."""

from __future__ import annotations

import asyncio
import logging

import pytest

from daemon.app import _log_slow_stop


async def test_a_slow_stop_logs_each_pending_task_and_where_it_waits(
        caplog: pytest.LogCaptureFixture) -> None:
    never = asyncio.Event()

    async def stuck_in_surface_stop() -> None:
        await never.wait()

    task = asyncio.create_task(stuck_in_surface_stop(), name="surface-telegram")
    await asyncio.sleep(0)  # it runs up to its wait
    try:
        with caplog.at_level(logging.WARNING, logger="agent-bridge"):
            _log_slow_stop()
        (record,) = [r for r in caplog.records if "still stopping" in r.getMessage()]
        text = record.getMessage()
        assert "surface-telegram: " in text and "stuck_in_surface_stop" in text
        assert "thread " in text  # and every thread's stack, for a hang outside the loop
    finally:
        task.cancel()
