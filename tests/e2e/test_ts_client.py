"""The generated TypeScript clients (gen/ts) end to end: examples/clients/ts, compiled with
tsc and run by node, calls CreateProject, CompleteChat and StreamChat over gRPC straight to
a real server and through a real Envoy, with the fake Anthropic upstream behind them.

node and npm are required (CI has them): a missing tool or a failing `npm ci` fails the
test, it is never skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chatplane.app import App
from chatplane.config import descriptor_path
from chatplane.gateway import EnvoyProcess
from tests.conftest import make_settings, new_tenant
from tests.fakes.anthropic import FakeAnthropic, default_reply_text

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "examples" / "clients" / "ts"
# tsc keeps the repository layout under dist/ (see the example's tsconfig.json).
MAIN = CLIENT / "dist" / "examples" / "clients" / "ts" / "src" / "main.js"
MODEL = "claude-haiku-4-5"
MESSAGE = "Describe the generated TypeScript client."
CALLS = ("CreateProject", "CompleteChat", "StreamChat")


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is required for the TypeScript client test (it is not skipped)"
    return path


def _run(*cmd: str) -> None:
    done = subprocess.run(cmd, cwd=CLIENT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def client_main() -> Path:
    """Installs the pinned packages (only when node_modules does not match the lock, as
    `make gen` does) and compiles the example together with gen/ts."""
    npm = _tool("npm")
    lock = CLIENT / "package-lock.json"
    stamp = CLIENT / "node_modules" / ".lock-stamp"
    if not (stamp.is_file() and stamp.read_bytes() == lock.read_bytes()):
        _run(npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
        shutil.copyfile(lock, stamp)
    _run(npm, "run", "--silent", "build")
    assert MAIN.is_file()
    return MAIN


@dataclass
class Stack:
    fake: FakeAnthropic
    app: App
    envoy: EnvoyProcess


@pytest.fixture(scope="module")
async def stack(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    fake = FakeAnthropic()
    await fake.start()
    data = tmp_path_factory.mktemp("ts-client")
    url = database_url
    if url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{data / 'ts.db'}"
    app = App(
        make_settings(data, url, anthropic_api_key=fake.api_key, anthropic_base_url=fake.base_url)
    )
    await app.start()
    envoy = EnvoyProcess(
        http_port=0, grpc_port=app.grpc_port, descriptor=descriptor_path(), work_dir=data / "envoy"
    )
    await envoy.start()
    try:
        yield Stack(fake, app, envoy)
    finally:
        await envoy.stop()
        await app.stop(1.0)
        await fake.stop()


async def run_client(main: Path, stack: Stack, api_key: str) -> tuple[int, str, str]:
    """Runs the example against both addresses (asynchronously: the server shares this
    event loop). The key travels in the environment, not on the command line."""
    proc = await asyncio.create_subprocess_exec(
        _tool("node"),
        str(main),
        "--grpc",
        f"127.0.0.1:{stack.app.grpc_port}",
        "--envoy",
        f"http://127.0.0.1:{stack.envoy.http_port}",
        "--model",
        MODEL,
        "--message",
        MESSAGE,
        env={**os.environ, "CHATPLANE_API_KEY": api_key},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def grpc_route_requests(envoy: EnvoyProcess) -> int:
    """Requests Envoy's native-gRPC route has completed (its `grpc` stat prefix)."""
    status, body = await envoy.admin_get("/stats?filter=route%5C.grpc%5C.upstream_rq_completed")
    assert status == 200, body
    match = re.search(rb"route\.grpc\.upstream_rq_completed: (\d+)", body)
    return int(match.group(1)) if match else 0


async def test_calls_over_grpc_and_through_envoy(stack: Stack, client_main: Path) -> None:
    owner = await new_tenant(stack.app)
    via_envoy_before = await grpc_route_requests(stack.envoy)
    upstream_before = stack.fake.request_count

    code, out, err = await run_client(client_main, stack, owner.key)

    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
    records: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines()]
    assert [(r["via"], r["call"]) for r in records] == [
        (via, call) for via in ("grpc", "envoy") for call in CALLS
    ]
    expected = default_reply_text({"messages": [{"role": "user", "content": MESSAGE}]})
    for via in ("grpc", "envoy"):
        created, completed, streamed = (r for r in records if r["via"] == via)
        # The project exists in the caller's tenant, as the server stored it.
        project = await stack.app.projects.get(owner.tenant_id, created["projectId"])
        assert project.name == created["name"] == f"ts-client-{via}"
        # The completion is the fake upstream's answer, resolved to the requested model.
        assert completed["content"] == expected
        assert completed["model"] == MODEL
        assert completed["finishReason"] == "end_turn"
        assert completed["inputTokens"] > 0 and completed["outputTokens"] > 0
        # The stream's deltas (one per word upstream) concatenate to the same text.
        assert len(streamed["deltas"]) == len(expected.split())
        assert streamed["text"] == "".join(streamed["deltas"]) == expected
        assert streamed["model"] == MODEL
        assert streamed["totalTokens"] > 0

    # Two completions and two streams reached the upstream, each with the user's message.
    sent = stack.fake.requests[upstream_before:]
    assert len(sent) == 4
    assert [r.body.get("stream") is True for r in sent] == [False, True, False, True]
    assert all(default_reply_text(r.body) == expected for r in sent)
    # The "envoy" calls really went through the gateway's native-gRPC route.
    assert await grpc_route_requests(stack.envoy) - via_envoy_before == len(CALLS)


async def test_failure_exits_nonzero(stack: Stack, client_main: Path) -> None:
    code, out, err = await run_client(client_main, stack, "abl_sk-not-a-real-key")

    assert code == 1
    assert out == ""  # the first call (CreateProject) already failed
    assert "Unauthenticated" in err
