"""The operator's kopf wiring without kopf running: background loops that fail start again."""

from __future__ import annotations

import asyncio

import pytest

from etl_operator import handlers


def test_failed_loop_is_logged_and_started_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(handlers, "RESTART_DELAY_SECONDS", 0.0)
    runs: list[int] = []

    async def loop() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError(f"run {len(runs)} fails")

    asyncio.run(handlers.keep_running("the test loop", loop))

    assert runs == [0, 1, 2]
    failures = [record for record in caplog.records if "the test loop failed" in record.getMessage()]
    assert len(failures) == 2
    assert failures[0].exc_info is not None


def test_cancelled_loop_stays_cancelled() -> None:
    started = asyncio.Event()

    async def loop() -> None:
        started.set()
        await asyncio.sleep(60)

    async def scenario() -> None:
        task = asyncio.create_task(handlers.keep_running("the test loop", loop))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
