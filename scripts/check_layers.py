"""Import-layer contract: dependencies point one way (docs/architecture in the README).

    api -> domains (iam, projects, chat, usage, ...) -> engines (lang, runtime, llm,
    ratelimit) -> storage, kit

Each top-level room of `src/chatplane` may import only the rooms listed for it below;
gRPC, protobuf and generated stubs only in `api/` and the composition root. Every import
counts, including those under TYPE_CHECKING. Exit status 1 lists each violation.

Usage: python scripts/check_layers.py [SRC_ROOT]   (default: src/chatplane)
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

BASE = {"errors", "kit", "config"}
# Metrics and logging helpers: domain-free, importable by the api layer, the domains and
# the composition root (never by engines, which stay free of process-wide state).
OBSERVABILITY = {"observability"}
ENGINES = {"lang", "runtime", "llm", "ratelimit"}
DOMAINS = {
    "iam",
    "projects",
    "chat",
    "usage",
    "agents",
    "sessions",
    "traces",
    "analytics",
    "testing",
}
# What each room may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "config": set(),
    "kit": set(),
    # kit only: the shared rule of which OTEL_* variables turn tracing on (kit/otel_env.py).
    "observability": {"kit"},
    "storage": BASE,
    "lang": {"errors", "kit"},
    "runtime": {"errors", "kit", "lang"},
    "llm": {"errors", "kit"},
    "ratelimit": {"errors", "kit"},
    **{domain: BASE | ENGINES | DOMAINS | OBSERVABILITY | {"storage"} for domain in DOMAINS},
    "api": BASE | ENGINES | DOMAINS | OBSERVABILITY | {"storage", "proto"},
    "app": BASE | ENGINES | DOMAINS | OBSERVABILITY | {"storage", "proto", "api"},
    "gateway": BASE | {"proto"},
    "workers": BASE | {"gateway"},
    "cli": BASE
    | ENGINES
    | DOMAINS
    | OBSERVABILITY
    | {"storage", "app", "gateway", "workers", "cli_agents", "cli_testing"},
    # `agents check` compiles locally; push and deploy speak REST (urllib), like any client.
    "cli_agents": BASE | {"lang", "cli_http"},
    # `test run` speaks REST (urllib) like any CI client.
    "cli_testing": BASE | {"cli_http"},
    "cli_http": set(),
}
# Third-party packages only some rooms may use.
WIRE = ("grpc", "grpc_health", "grpc_reflection", "grpc_status", "google.")
IO = ("sqlalchemy", "sqlmodel", "aiosqlite", "asyncpg", "httpx", "aiohttp", "anthropic", "redis")
WIRE_ROOMS = {"api", "app", "gateway"}
PURE_ROOMS = {"lang", "runtime", "kit", "errors"}
_GENERATED = re.compile(r"^chatplane\.[a-z_]+\.v\d+(\.|$)")


def room_of(module: str) -> str | None:
    """The room a `chatplane.*` module belongs to; "proto" for generated stubs."""
    if _GENERATED.match(module):
        return "proto"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "chatplane" else None


def imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    found: list[tuple[int, str]] = []
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def check(src: Path) -> list[str]:
    problems = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        room = room_of(module)
        if room is None or room == "proto":
            continue
        allowed = ALLOWED.get(room)
        if allowed is None:
            problems.append(f"{path}: room {room!r} is not in the layer table")
            continue
        for line, name in imports(path, module):
            where = f"{path}:{line}"
            target = room_of(name)
            if target is not None and target != room and target not in allowed:
                problems.append(f"{where}: {room} may not import {name} ({target})")
            if name.startswith(WIRE) and room not in WIRE_ROOMS:
                problems.append(f"{where}: {room} may not import {name} (gRPC/protobuf)")
            if name.split(".")[0] in IO and room in PURE_ROOMS:
                problems.append(f"{where}: {room} does no I/O, may not import {name}")
    return problems


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else Path("src/chatplane")
    problems = check(src)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"import layers: OK ({sum(1 for _ in src.rglob('*.py'))} modules)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
