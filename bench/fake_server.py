"""`python -m bench.fake_server`: the fake Anthropic server (tests/fakes/anthropic.py) in its
own process. Prints `PORT <n>` once listening; stops on SIGTERM/SIGINT or when stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.fakes.anthropic import FakeAnthropic  # noqa: E402


async def _trim(fake: FakeAnthropic) -> None:
    """The fake records every request; drop them so memory stays flat under load."""
    while True:
        await asyncio.sleep(1.0)
        fake.requests.clear()


async def _main() -> None:
    fake = FakeAnthropic()
    await fake.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    trim = asyncio.create_task(_trim(fake))
    print(f"PORT {fake.port}", flush=True)
    try:
        await stop.wait()
    finally:
        trim.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await trim
        await fake.stop()


if __name__ == "__main__":
    asyncio.run(_main())
