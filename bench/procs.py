"""The processes of a run: the fake upstream, the chatplane server, Envoy; /proc readings."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from chatplane.config import descriptor_path
from chatplane.gateway import EnvoyProcess

REPO_ROOT = Path(__file__).resolve().parents[1]
FAKE_API_KEY = "sk-ant-test-key"  # tests/fakes/anthropic.py's default
BOOTSTRAP_KEY = "abl_sk-bench-bootstrap-admin-key"
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 8.0

_PR_SET_PDEATHSIG = 1
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the bench process dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """A child process whose stdout and stderr go to files in the run's directory."""

    name: str
    process: asyncio.subprocess.Process
    stdout: Path
    stderr: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 25) -> str:
        out = []
        for path in (self.stdout, self.stderr):
            if path.exists():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()
                out.extend(text[-lines:])
        return "\n".join(out)

    async def wait_for_line(self, pattern: re.Pattern[str], seconds: float) -> re.Match[str]:
        """Poll the child's stdout file until a line matches (or the child dies)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            text = self.stdout.read_text(encoding="utf-8", errors="replace")
            match = pattern.search(text)
            if match:
                return match
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise RuntimeError(
            f"{self.name} did not start (exit code {self.process.returncode}):\n{self.tail()}"
        )

    async def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()


class Watchdog:
    """`bench.watchdog` in its own process: stops the listed processes if we die abruptly."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.watchdog",
            stdin=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )

    async def watch(self, pid: int | None) -> None:
        from bench.watchdog import start_time  # noqa: PLC0415

        started = None if pid is None else start_time(pid)
        if self._process is None or self._process.stdin is None or started is None:
            return
        self._process.stdin.write(f"{pid} {started}\n".encode())
        await self._process.stdin.drain()

    async def watch_dir(self, path: Path) -> None:
        if self._process is None or self._process.stdin is None:
            return
        self._process.stdin.write(f"dir {path}\n".encode())
        await self._process.stdin.drain()

    async def close(self) -> None:
        """Everything is stopped: tell the watchdog, which then exits without acting."""
        process = self._process
        if process is None:
            return
        self._process = None
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.write(b"done\n")
                await process.stdin.drain()
                process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()


async def spawn(name: str, args: list[str], env: dict[str, str], run_dir: Path) -> Child:
    stdout = run_dir / f"{name}.out"
    stderr = run_dir / f"{name}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            cwd=REPO_ROOT,
            preexec_fn=_die_with_parent,
        )
    return Child(name, process, stdout, stderr)


async def start_fake(run_dir: Path) -> tuple[Child, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = await spawn("fake-anthropic", [sys.executable, "-m", "bench.fake_server"], env, run_dir)
    match = await child.wait_for_line(re.compile(r"^PORT (\d+)$", re.M), STARTUP_TIMEOUT)
    return child, int(match.group(1))


async def start_server(
    run_dir: Path, fake_port: int, *, reuse_data: bool = False
) -> tuple[Child, int]:
    """A `chatplane serve` process; `reuse_data` starts another one on the same database."""
    data_dir = run_dir / "data"
    data_dir.mkdir(exist_ok=reuse_data)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CHATPLANE_", "ANTHROPIC_"))},
        "CHATPLANE_GRPC_PORT": "0",
        "CHATPLANE_HOST": "127.0.0.1",
        "CHATPLANE_DATA_DIR": str(data_dir),
        "CHATPLANE_BOOTSTRAP_API_KEY": BOOTSTRAP_KEY,
        "CHATPLANE_RATE_LIMIT_PER_MINUTE": "1000000000",
        "CHATPLANE_RATE_LIMIT_PER_HOUR": "1000000000",
        "CHATPLANE_SESSION_RATE_LIMIT_PER_MINUTE": "0",
        "CHATPLANE_MAX_ACTIVE_SESSIONS": "0",
        "CHATPLANE_LOG_LEVEL": "WARNING",
        "CHATPLANE_SHUTDOWN_GRACE_SECONDS": "2",
        "ANTHROPIC_API_KEY": FAKE_API_KEY,
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{fake_port}",
    }
    child = await spawn("chatplane", [sys.executable, "-m", "chatplane.cli", "serve"], env, run_dir)
    match = await child.wait_for_line(
        re.compile(r"^chatplane gRPC on 127\.0\.0\.1:(\d+)$", re.M), STARTUP_TIMEOUT
    )
    return child, int(match.group(1))


async def start_envoy(
    run_dir: Path, grpc_port: int | list[int], *, name: str = "envoy"
) -> EnvoyProcess:
    envoy = EnvoyProcess(
        http_port=0,
        grpc_port=grpc_port,
        descriptor=descriptor_path(),
        work_dir=run_dir / name,
        host="127.0.0.1",
        log_path=run_dir / f"{name}.log",
    )
    await envoy.start()
    return envoy


def _status_kb(pid: int, field: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else None


def rss_mib(pid: int | None) -> float | None:
    """VmRSS (resident set now) of a live process, MiB."""
    if pid is None:
        return None
    kb = _status_kb(pid, "VmRSS")
    return None if kb is None else kb / 1024


def peak_rss_mib(pid: int | None) -> float | None:
    """VmHWM (peak resident set) of a live process, MiB."""
    if pid is None:
        return None
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else kb / 1024


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    if pid is None or pid == os.getpid():
        times = os.times()
        return times.user + times.system
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime
