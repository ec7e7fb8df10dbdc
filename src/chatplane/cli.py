"""`chatplane` command line: serve, run (server + Envoy), migrate, keys, tenants, clients."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from chatplane import cli_agents, cli_testing
from chatplane.app import App, serve_until_signal
from chatplane.config import ConfigError, Settings, default_max_inflight, descriptor_path
from chatplane.errors import ChatplaneError
from chatplane.iam import scopes
from chatplane.iam.service import IamService
from chatplane.iam.types import Bootstrap
from chatplane.observability import logs, metrics

if TYPE_CHECKING:
    from chatplane.gateway import EnvoyProcess


def _setup_logging(level: str, fmt: str = "json") -> None:
    """JSON lines on stderr (CHATPLANE_LOG_FORMAT=text: the classic text lines), each with
    the request id of the call it belongs to."""
    logs.configure(level, fmt, stream=sys.stderr)


def _print_bootstrap(created: Bootstrap) -> None:
    """Print a first start's admin key the moment it exists (App.on_bootstrap), before
    anything else in start-up can fail and take it with it."""
    if created.admin_secret:
        print(
            f"First start: created tenant {created.tenant_id} and an admin API key.\n"
            f"  Admin key (shown once, store it now): {created.admin_secret}\n"
            "  (Lost it? `chatplane keys create --name admin` makes another.)",
            flush=True,
        )


async def _serve(settings: Settings) -> None:
    app = App(settings)
    app.on_bootstrap = _print_bootstrap
    started = asyncio.Event()
    task = asyncio.create_task(serve_until_signal(app, on_started=[started]))
    await asyncio.wait([task, asyncio.create_task(started.wait())], return_when="FIRST_COMPLETED")
    if started.is_set():
        print(f"chatplane gRPC on {settings.host}:{app.grpc_port}", flush=True)
    await task


def _check_port_free(host: str, port: int, what: str, variable: str) -> None:
    """Fail at once, before any start-up work, when another process listens on `port`
    (e.g. a second `chatplane run`): the listeners do not share ports (no SO_REUSEPORT)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise RuntimeError(
                f"the {what} port {host}:{port} is in use ({exc.strerror}); is another "
                f"chatplane running? Stop it or set {variable}"
            ) from None


async def _run(settings: Settings) -> int:
    """The gRPC server (or CHATPLANE_WORKERS server processes) and Envoy; Ctrl-C stops all."""
    from chatplane.gateway import EnvoyProcess  # noqa: PLC0415
    from chatplane.workers import WorkerPool  # noqa: PLC0415

    _check_port_free(settings.host, settings.http_port, "HTTP", "CHATPLANE_HTTP_PORT")
    if settings.grpc_port:
        for index in range(settings.workers):
            port = settings.grpc_port + index
            _check_port_free(settings.host, port, "gRPC", "CHATPLANE_GRPC_PORT")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app: App | None = None
    pool: WorkerPool | None = None
    exit_code = 0
    if settings.workers > 1:
        async with _iam(settings):  # migrate and bootstrap once, before the workers
            pass
        if metrics.multiprocess_dir() is None:
            # Every worker writes its metrics there; any of them answers for all.
            metrics.prepare_multiprocess((settings.data_dir / "prometheus").resolve())
        pool = WorkerPool(settings, settings.workers)
        ports = await pool.start()
    else:
        app = App(settings)
        app.on_bootstrap = _print_bootstrap
        try:
            await app.start()
        except BaseException:
            await app.close()
            raise
        ports = [app.grpc_port]
    envoy = EnvoyProcess(
        http_port=settings.http_port,
        grpc_port=ports,
        descriptor=descriptor_path(),
        work_dir=settings.data_dir / "envoy",
        host=settings.host,
        concurrency=settings.envoy_concurrency,
        # What the servers admit in all: Envoy sheds the excess itself (cheaper than a
        # round trip), with the servers' own answer, 503 "Server overloaded".
        max_upstream_requests=len(ports) * (settings.max_inflight or default_max_inflight()),
    )
    try:
        await envoy.start()
        grpc_addresses = ", ".join(f"{settings.host}:{port}" for port in ports)
        print(
            f"chatplane is up\n  REST (Envoy): http://{settings.host}:{envoy.http_port}\n"
            f"  gRPC:         {grpc_addresses} (also through Envoy)\n"
            f"  Envoy admin:  {envoy.admin_address} (owner only)",
            flush=True,
        )
        code = await _until_stopped_or_envoy_dies(stop, envoy)
        if code is not None:
            # REST is down: say so, report NOT_SERVING, and exit non-zero so a supervisor
            # (systemd, Kubernetes) restarts the whole.
            print(
                f"chatplane: Envoy (the REST gateway) exited unexpectedly with code {code}; "
                "REST is down, stopping (exit 1)",
                file=sys.stderr,
                flush=True,
            )
            if app is not None:
                await app.server.health.enter_graceful_shutdown()
            exit_code = 1
    finally:
        # Servers first: in-flight calls finish while Envoy still carries their bytes.
        if app is not None:
            await app.stop()
        if pool is not None:
            await pool.stop()
        await envoy.stop()
    return exit_code


async def _until_stopped_or_envoy_dies(stop: asyncio.Event, envoy: EnvoyProcess) -> int | None:
    """Wait for a stop signal; None then. Envoy exiting first (not because the same
    Ctrl-C or SIGTERM reached it too) returns its exit code."""
    stopping = asyncio.create_task(stop.wait())
    exited = asyncio.create_task(envoy.wait())
    try:
        await asyncio.wait({stopping, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited.done() and not stop.is_set():
            with contextlib.suppress(TimeoutError):  # the signal that stopped it may follow
                await asyncio.wait_for(stop.wait(), 0.5)
        return None if stop.is_set() else exited.result()
    finally:
        for task in (stopping, exited):
            task.cancel()


@contextlib.asynccontextmanager
async def _iam(settings: Settings) -> AsyncIterator[tuple[IamService, str]]:
    """The IAM service on a migrated database, and the default tenant's id."""
    app = App(settings)
    try:
        await app.open()
        created = app.bootstrap
        if created is not None and created.admin_secret:  # never created silently
            print(
                f"First start: tenant {created.tenant_id}, admin key (shown once): "
                f"{created.admin_secret}",
                file=sys.stderr,
            )
        yield app.iam, await app.iam.default_tenant_id()
    finally:
        await app.close()


def _print_json(value: dict[str, object]) -> None:
    print(json.dumps(value, indent=2))


async def _keys(settings: Settings, args: argparse.Namespace) -> int:
    async with _iam(settings) as (iam, default_tenant):
        tenant = args.tenant or default_tenant
        if args.keys_command == "create":
            # A publishable key without --scopes gets the Chat API's two (the service's rule).
            every = "" if args.type == "publishable" else ",".join(scopes.ALL_SCOPES)
            wanted = args.scopes or every
            created = await iam.create_key(
                tenant,
                args.name,
                [name for name in wanted.split(",") if name],
                key_type=args.type,
                allowed_origins=[o for o in (args.allowed_origins or "").split(",") if o],
            )
            out: dict[str, object] = {
                "id": created.key.id,
                "tenantId": tenant,
                "type": created.key.type,
                "secret": created.secret,
                "scopes": list(created.key.scopes),
            }
            if created.key.allowed_origins:
                out["allowedOrigins"] = list(created.key.allowed_origins)
            _print_json(out)
        elif args.keys_command == "list":
            for key in await iam.list_keys(tenant):
                state = "revoked" if key.revoked_at else "active"
                print(f"{key.id}\t{key.prefix}…\t{state}\t{key.name}\t{' '.join(key.scopes)}")
        else:
            key = await iam.revoke_key(tenant, args.key_id)
            print(f"revoked {key.id}")
    return 0


async def _tenants(settings: Settings, args: argparse.Namespace) -> int:
    async with _iam(settings) as (iam, default_tenant):
        if args.tenants_command == "configure":
            tenant = await iam.configure_tenant(
                args.tenant or default_tenant,
                anthropic_api_key=args.anthropic_api_key,
                default_model=args.default_model,
            )
            print(f"configured tenant {tenant.id}")
            return 0
        tenant = await iam.create_tenant(args.name)
        created = await iam.create_key(tenant.id, "admin", list(scopes.ALL_SCOPES))
        _print_json({"tenantId": tenant.id, "adminKey": created.secret})
    return 0


async def _clients(settings: Settings, args: argparse.Namespace) -> int:
    async with _iam(settings) as (iam, default_tenant):
        client = await iam.create_client(
            args.tenant or default_tenant, args.name, args.scopes.split(",")
        )
        _print_json(
            {"appId": client.id, "tenantId": client.tenant_id, "clientSecret": client.secret}
        )
    return 0


async def _migrate(settings: Settings) -> int:
    app = App(settings)
    try:
        await app.db.migrate()
    finally:
        await app.close()
    print("database is at the latest migration")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatplane", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the gRPC server")
    sub.add_parser("run", help="run the gRPC server and the Envoy REST gateway")
    sub.add_parser("migrate", help="apply database migrations")

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    create = keys.add_parser("create", help="create a key and print its secret once")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scopes",
        help="comma-separated (default: all; a publishable key: session:read,session:execute)",
    )
    create.add_argument(
        "--type",
        choices=("secret", "publishable"),
        default="secret",
        help="publishable: a pk_live_ key for the Chat API in browsers (needs --allowed-origins)",
    )
    create.add_argument(
        "--allowed-origins", help="comma-separated origins a publishable key may be used from"
    )
    create.add_argument("--tenant", help="tenant id (default: the first tenant)")
    listing = keys.add_parser("list", help="list keys")
    listing.add_argument("--tenant")
    revoke = keys.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id")
    revoke.add_argument("--tenant")

    tenants = sub.add_parser("tenants", help="manage tenants").add_subparsers(
        dest="tenants_command", required=True
    )
    tcreate = tenants.add_parser("create", help="create a tenant and its admin key")
    tcreate.add_argument("--name", required=True)
    configure = tenants.add_parser(
        "configure", help="set a tenant's Anthropic key (stored encrypted) and default model"
    )
    configure.add_argument("--tenant", help="tenant id (default: the first tenant)")
    configure.add_argument("--anthropic-api-key", help='the key; "" clears it')
    configure.add_argument("--default-model")

    clients = sub.add_parser("clients", help="JWT clients (`auth:` header)").add_subparsers(
        dest="clients_command", required=True
    )
    ccreate = clients.add_parser("create", help="register a client; prints appId and secret")
    ccreate.add_argument("--name", required=True)
    ccreate.add_argument("--scopes", default=f"{scopes.ANALYTICS_READ},{scopes.SESSION_READ}")
    ccreate.add_argument("--tenant")
    cli_agents.add_parsers(sub)  # agents check|push, deploy
    cli_testing.add_parsers(sub)  # test run
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:  # one line per bad variable, no traceback
        print(f"chatplane: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings.log_level, settings.log_format)
    try:
        return _dispatch(settings, args)
    except ChatplaneError as exc:
        print(f"chatplane: {exc.message}", file=sys.stderr)
        return 1
    except (RuntimeError, OSError) as exc:  # e.g. a port in use, Envoy failing to start
        print(f"chatplane: {exc}", file=sys.stderr)
        return 1


EVENT_LOOPS = ("asyncio", "uvloop")


def install_event_loop(choice: str) -> str:
    """Install the event loop policy of CHATPLANE_EVENT_LOOP before the server's loop starts
    (grpc.aio runs on the loop that is running): `uvloop`, `asyncio`, or empty for uvloop
    when it is importable. Returns the loop installed."""
    if choice not in ("", *EVENT_LOOPS):
        raise RuntimeError(
            f"CHATPLANE_EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, got {choice!r}"
        )
    if choice == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        if choice == "uvloop":
            raise RuntimeError("CHATPLANE_EVENT_LOOP=uvloop but uvloop is not installed") from None
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def _dispatch(settings: Settings, args: argparse.Namespace) -> int:
    if args.command in cli_agents.COMMANDS:
        return cli_agents.run(args)
    if args.command in cli_testing.COMMANDS:
        return cli_testing.run(args)
    if args.command == "serve":
        install_event_loop(settings.event_loop)  # workers are `serve` processes too
        asyncio.run(_serve(settings))
        return 0
    if args.command == "run":
        install_event_loop(settings.event_loop)
        return asyncio.run(_run(settings))
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "keys":
        return asyncio.run(_keys(settings, args))
    if args.command == "tenants":
        return asyncio.run(_tenants(settings, args))
    return asyncio.run(_clients(settings, args))


if __name__ == "__main__":
    raise SystemExit(main())
