"""What a first-time operator runs into (issue 12, items 8-10): `chatplane run` as a
subprocess, on its own data directory."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_workers import _children, _run_env, _start_run


async def cli_process(env: dict[str, str], *args: str, seconds: float = 60) -> tuple[int, str, str]:
    """`python -m chatplane.cli ARGS` run to its exit (killed past `seconds`): its exit
    status, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chatplane.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _is_envoy(pid: int) -> bool:
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return b"envoy" in cmdline.read()


@pytest.mark.usefixtures("sqlite_only")
async def test_the_first_admin_key_survives_a_failed_first_start(tmp_path: Path) -> None:
    """Item 8: the start fails after the database step (Envoy's files missing, as from a
    broken install); the key created in that step was printed, and works next time."""
    broken = _run_env(tmp_path, CHATPLANE_DESCRIPTOR=str(tmp_path / "missing.binpb"))
    code, out, err = await cli_process(broken, "run")
    assert code == 1, (out, err)
    key = re.search(r"Admin key \(shown once, store it now\): (abl_sk-\S+)", out)
    assert key, out
    assert "chatplane keys create" in out  # the way back if it is lost anyway
    proc, text = await _start_run(_run_env(tmp_path))
    try:
        assert "Admin key" not in text  # not created twice
        rest = re.search(r"REST \(Envoy\): (http://\S+)", text)
        assert rest
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(
                f"{rest.group(1)}/api/projects",
                headers={"Authorization": f"Bearer {key.group(1)}"},
            )
        assert response.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0


@pytest.mark.usefixtures("sqlite_only")
async def test_a_busy_http_port_is_a_clear_error(tmp_path: Path) -> None:
    """Item 9: a second `chatplane run` on the same HTTP port exits 1 with a clear line,
    before touching its database (it used to share the port and answer from its own)."""
    first, text = await _start_run(_run_env(tmp_path / "one"))
    try:
        rest = re.search(r"REST \(Envoy\): http://127\.0\.0\.1:(\d+)", text)
        assert rest
        port = rest.group(1)
        code, out, err = await cli_process(
            _run_env(tmp_path / "two", CHATPLANE_HTTP_PORT=port), "run", seconds=30
        )
        assert code == 1
        assert f"the HTTP port 127.0.0.1:{port} is in use" in err
        assert "Admin key" not in out  # nothing was created
        assert not (tmp_path / "two" / "chatplane.db").exists()
    finally:
        first.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(first.wait(), 30) == 0


def test_envoy_listener_does_not_share_its_port(tmp_path: Path) -> None:
    from chatplane.config import descriptor_path
    from chatplane.gateway import render_envoy_config

    config = render_envoy_config(
        http_port=8080, grpc_port=1, descriptor=descriptor_path(), admin_address_path=None
    )
    assert "enable_reuse_port: false" in config


@pytest.mark.usefixtures("sqlite_only")
async def test_envoy_dying_stops_the_run_with_a_clear_line(tmp_path: Path) -> None:
    """Item 10: Envoy killed -> `chatplane run` says so and exits 1 (a supervisor restarts
    the whole) instead of running on with REST down and gRPC health SERVING. Envoy's admin
    interface is an owner-only Unix socket, no TCP port."""
    proc, text = await _start_run(_run_env(tmp_path), stderr=asyncio.subprocess.PIPE)
    try:
        admin = re.search(r"Envoy admin:\s+unix:(\S+)", text)
        assert admin, text
        mode = os.stat(admin.group(1)).st_mode & 0o777
        assert mode & 0o077 == 0, oct(mode)  # owner only
        envoy_pids = [pid for pid in _children(proc.pid) if _is_envoy(pid)]
        assert len(envoy_pids) == 1
        os.kill(envoy_pids[0], signal.SIGKILL)
        assert proc.stderr is not None
        assert await asyncio.wait_for(proc.wait(), 30) == 1
        err = (await proc.stderr.read()).decode()
        assert "Envoy (the REST gateway) exited unexpectedly" in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
