"""Envoy's bootstrap config: `render_envoy_config` fills `envoy/envoy.yaml.tmpl` (and
inlines `envoy/status.lua`) for a gateway in front of one or more gRPC servers."""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import Any

from google.protobuf import descriptor_pb2

from chatplane.config import gateway_file

TEMPLATE_NAME = "envoy.yaml.tmpl"
LUA_NAME = "status.lua"

ENVOY_DIR = Path(
    os.environ.get("CHATPLANE_ENVOY_DIR")
    or gateway_file(
        TEMPLATE_NAME, Path(__file__).resolve().parents[3] / "envoy" / TEMPLATE_NAME
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

ADMIN_SOCKET_MODE = 0o600
"""Mode of the admin interface's Unix socket: owner only."""

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
