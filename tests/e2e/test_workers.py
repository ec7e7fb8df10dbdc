"""`chatplane run` with several server processes behind one Envoy."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from pathlib import Path

import httpx
import pytest

from chatplane.config import Settings
from chatplane.workers import worker_environment
from tests.conftest import BOOTSTRAP_KEY


def test_worker_environment_splits_local_limits() -> None:
    settings = Settings(grpc_port=6000, rate_limit_per_minute=601, rate_limit_per_hour=0)
    env = worker_environment(settings, 1, 2)
    assert env["CHATPLANE_GRPC_PORT"] == "6001"
    assert env["CHATPLANE_WORKERS"] == "1"
    assert env["CHATPLANE_RATE_LIMIT_PER_MINUTE"] == "301"
    assert env["CHATPLANE_RATE_LIMIT_PER_HOUR"] == "0"  # unlimited stays unlimited
    shared = worker_environment(
        Settings(grpc_port=0, redis_url="redis://127.0.0.1:6379/0", rate_limit_per_minute=600),
        0,
        2,
    )
    assert shared["CHATPLANE_GRPC_PORT"] == "0"
    # With Redis the limit is shared exactly, so each worker keeps the full figure.
    assert shared.get("CHATPLANE_RATE_LIMIT_PER_MINUTE") == os.environ.get(
        "CHATPLANE_RATE_LIMIT_PER_MINUTE"
    )


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        if stat.rsplit(")", 1)[1].split()[1] == str(parent):
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    return (
        Path(f"/proc/{pid}").exists()
        and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    )


def _run_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `chatplane run` on its own embedded database, ports picked."""
    env = {
        **os.environ,
        "CHATPLANE_DATA_DIR": str(data_dir),
        "CHATPLANE_HTTP_PORT": "0",
        "CHATPLANE_GRPC_PORT": "0",
        "CHATPLANE_LOG_LEVEL": "WARNING",
    }
    for name in ("CHATPLANE_DATABASE_URL", "CHATPLANE_BOOTSTRAP_API_KEY", "CHATPLANE_WORKERS"):
        env.pop(name, None)
    return {**env, **extra}


async def _start_run(
    env: dict[str, str], *, stderr: int = asyncio.subprocess.DEVNULL
) -> tuple[asyncio.subprocess.Process, str]:
    """Start `chatplane run` and read its banner, up to the Envoy admin line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chatplane.cli",
        "run",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )
    assert proc.stdout is not None
    text = ""
    try:
        while "Envoy admin" not in text:
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line, "chatplane run exited early"
            text += line
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return proc, text


async def test_two_workers_share_the_traffic_and_stop_together(
    tmp_path: Path, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("runs the default embedded configuration")
    env = _run_env(tmp_path, CHATPLANE_WORKERS="2", CHATPLANE_BOOTSTRAP_API_KEY=BOOTSTRAP_KEY)
    proc, text = await _start_run(env)
    try:
        rest = re.search(r"REST \(Envoy\): (http://\S+)", text)
        admin = re.search(r"Envoy admin:\s+unix:(\S+)", text)
        ports = re.findall(r"127\.0\.0\.1:(\d+)", text.split("gRPC:")[1].split("\n")[0])
        assert rest and admin and len(ports) == 2
        headers = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
        async with httpx.AsyncClient(timeout=10) as http:
            created = await http.post(
                f"{rest.group(1)}/api/projects", json={"name": "w"}, headers=headers
            )
            pid = created.json()["project"]["id"]
            for _ in range(10):  # every worker sees the same database
                got = await http.get(f"{rest.group(1)}/api/projects/{pid}", headers=headers)
                assert got.status_code == 200
            from chatplane.gateway import _unix_get

            clusters = (await asyncio.to_thread(_unix_get, admin.group(1), "/clusters"))[1].decode()
        served = {
            port: int(n)
            for port, n in re.findall(
                r"chatplane_grpc::127\.0\.0\.1:(\d+)::rq_success::(\d+)", clusters
            )
        }
        assert set(served) == set(ports)
        assert all(n >= 3 for n in served.values()), served  # round-robin, not one worker
        workers = _children(proc.pid)
        assert len(workers) >= 2  # the two servers (and Envoy) are the run's children
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert not [w for w in workers if _alive(w)]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_run_prints_a_working_admin_key_once(tmp_path: Path, database_url: str) -> None:
    """The newcomer path: `chatplane run` on an empty data dir, the printed key, curl."""
    if not database_url.startswith("sqlite"):
        pytest.skip("runs the default embedded configuration")
    env = _run_env(tmp_path)

    async def run_once() -> tuple[str, str]:
        proc, text = await _start_run(env)
        assert proc.stdout is not None
        try:
            # The key line (first start only) follows the addresses.
            with contextlib.suppress(TimeoutError):
                text += (await asyncio.wait_for(proc.stdout.readline(), 2)).decode()
                text += (await asyncio.wait_for(proc.stdout.readline(), 1)).decode()
            rest = re.search(r"REST \(Envoy\): (http://\S+)", text)
            assert rest
            key = re.search(r"(abl_sk-\S+)", text)
            if key:
                async with httpx.AsyncClient(timeout=10) as http:
                    created = await http.post(
                        f"{rest.group(1)}/api/projects",
                        json={"name": "demo"},
                        headers={"Authorization": f"Bearer {key.group(1)}"},
                    )
                    assert created.status_code == 200
                    assert created.json()["project"]["name"] == "demo"
                    assert (await http.get(f"{rest.group(1)}/api/projects")).status_code == 401
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        return text, key.group(1) if key else ""

    first, key = await run_once()
    assert key, first
    second, again = await run_once()
    assert again == "" and "Admin key" not in second  # shown once
