"""Several server processes behind one Envoy: Python runs one core per process.

`chatplane run` with CHATPLANE_WORKERS=N > 1 migrates and bootstraps once, then starts N
`chatplane serve` processes, each on its own gRPC port, and Envoy round-robins across
them. Without Redis each worker enforces 1/N of the per-tenant rate limits (Envoy spreads
calls evenly, so the tenant's total stays close to the limit); with CHATPLANE_REDIS_URL the
limit is shared exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import signal
import sys

from chatplane.config import Settings

STARTUP_SECONDS = 60.0
_LISTENING = re.compile(r"gRPC on [^\s:]+:(\d+)")


def worker_environment(settings: Settings, index: int, count: int) -> dict[str, str]:
    """The environment of worker `index` of `count`."""
    env = dict(os.environ)
    env["CHATPLANE_WORKERS"] = "1"
    env["CHATPLANE_GRPC_PORT"] = str(settings.grpc_port + index) if settings.grpc_port else "0"
    if not settings.redis_url:
        for name, limit in (
            ("CHATPLANE_RATE_LIMIT_PER_MINUTE", settings.rate_limit_per_minute),
            ("CHATPLANE_RATE_LIMIT_PER_HOUR", settings.rate_limit_per_hour),
        ):
            env[name] = str(math.ceil(limit / count) if limit > 0 else 0)
    return env


class WorkerPool:
    """Starts, watches and stops the worker processes."""

    def __init__(self, settings: Settings, count: int) -> None:
        self._settings = settings
        self._count = count
        self._procs: list[asyncio.subprocess.Process] = []
        self._drains: list[asyncio.Task[None]] = []
        self.ports: list[int] = []

    async def start(self) -> list[int]:
        """Start every worker at once and wait until each listens."""
        try:
            for index in range(self._count):
                self._procs.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "chatplane.cli",
                        "serve",
                        env=worker_environment(self._settings, index, self._count),
                        stdout=asyncio.subprocess.PIPE,
                    )
                )
            ports = asyncio.gather(*(self._port_of(p) for p in self._procs))
            self.ports = list(await asyncio.wait_for(ports, STARTUP_SECONDS))
            self._drains = [asyncio.create_task(self._drain(p)) for p in self._procs]
        except BaseException:
            await self.stop()
            raise
        return self.ports

    @staticmethod
    async def _port_of(proc: asyncio.subprocess.Process) -> int:
        assert proc.stdout is not None
        while line := (await proc.stdout.readline()).decode():
            found = _LISTENING.search(line)
            if found:
                return int(found.group(1))
        raise RuntimeError(f"worker {proc.pid} exited with {await proc.wait()} before listening")

    @staticmethod
    async def _drain(proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            sys.stdout.write(line.decode())

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    async def stop(self) -> None:
        """SIGTERM every worker; each drains in-flight calls within its grace period."""
        for proc in self._procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        deadline = self._settings.shutdown_grace_seconds + 5.0
        for proc in self._procs:
            try:
                await asyncio.wait_for(proc.wait(), deadline)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for task in self._drains:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._procs.clear()
        self._drains.clear()
