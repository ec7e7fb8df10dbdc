"""What OpenTelemetry tracing costs: `python -m bench.tracing_cost [--quick]`.

Two `chatplane serve` processes side by side, each behind its own Envoy, against the fake
Anthropic upstream: one with no OTEL_* variable (tracing off: nothing installed), one
exporting OTLP/HTTP to a sink in this process (every RPC, LLM call and the SDK's own span
recorded and sent in batches). The same calls alternate between the two (c=1), so drift
on the machine hits both alike; CPU per call is each server's own CPU time (user +
system, all threads: the exporter's too) over its calls.

Modes: a cheap RPC (gRPC GetProject, one small read), a completion over gRPC
(CompleteChat) and one through Envoy (REST, with a W3C `traceparent`, as a traced caller
sends it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from bench.clients import Clients
from bench.stats import Call, Sample, interleaved, warm_up
from chatplane.gateway import EnvoyProcess
from tests.fakes.otlp import OtlpReceiver

MODES = ("grpc_get_project", "grpc_complete", "rest_complete")


@contextlib.contextmanager
def otel_environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ with exactly these OTEL_* variables while a server is spawned (the
    spawn copies it)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
    for name in saved:
        del os.environ[name]
    os.environ.update(values)
    try:
        yield
    finally:
        for name in values:
            os.environ.pop(name, None)
        os.environ.update(saved)


@dataclass
class Side:
    """One server (tracing off or on), its Envoy and its clients."""

    name: str
    server: procs.Child
    envoy: EnvoyProcess
    clients: Clients

    def calls(self) -> dict[str, Call]:
        clients = self.clients
        url = f"{clients.rest_base}/api/v1/chat/complete"
        body, headers = clients.chat_body(), clients.rest_headers

        async def rest_complete() -> tuple[float, None]:
            # A new trace per call, as from a traced REST client.
            traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
            return await clients.post_json(url, body, {**headers, "traceparent": traceparent}), None

        return {
            "grpc_get_project": clients.grpc_get_project,
            "grpc_complete": clients.calls()["grpc_complete"],
            "rest_complete": rest_complete,
        }


async def _side(name: str, run_dir: Path, fake_port: int, env: dict[str, str]) -> Side:
    side_dir = run_dir / name
    side_dir.mkdir()
    with otel_environment(env):
        server, grpc_port = await procs.start_server(side_dir, fake_port)
    envoy = await procs.start_envoy(side_dir, grpc_port)
    clients = Clients(
        rest_base=f"http://127.0.0.1:{envoy.http_port}",
        grpc_port=grpc_port,
        fake_base=f"http://127.0.0.1:{fake_port}",
        api_key=procs.BOOTSTRAP_KEY,
        fake_key=procs.FAKE_API_KEY,
    )
    await clients.open()
    await clients.create_project()
    return Side(name, server, envoy, clients)


@dataclass
class Cost:
    mode: str
    off: Sample
    on: Sample
    cpu_off_ms: float  # server CPU per call
    cpu_on_ms: float


async def measure(*, quick: bool = False) -> tuple[list[Cost], OtlpReceiver]:
    rounds, seconds = (150, 8.0) if quick else (1500, 30.0)
    run_dir = Path(tempfile.mkdtemp(prefix="tracing-bench-"))
    sink = OtlpReceiver()
    await sink.start()
    fake, fake_port = await procs.start_fake(run_dir)
    sides: list[Side] = []
    costs: list[Cost] = []
    try:
        sides.append(await _side("off", run_dir, fake_port, {}))
        on_env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.port}",
            "OTEL_SERVICE_NAME": "chatplane-bench",
        }
        sides.append(await _side("on", run_dir, fake_port, on_env))
        off, on = sides
        off_calls, on_calls = off.calls(), on.calls()
        for mode in MODES:
            await warm_up(off_calls[mode], 30)
            await warm_up(on_calls[mode], 30)
            before = {s.name: procs.cpu_seconds(s.server.pid) for s in sides}
            got = await interleaved(
                {"off": off_calls[mode], "on": on_calls[mode]}, rounds=rounds, max_seconds=seconds
            )
            used = {s.name: procs.cpu_seconds(s.server.pid) - before[s.name] for s in sides}
            costs.append(
                Cost(
                    mode,
                    got["off"],
                    got["on"],
                    used["off"] * 1000 / max(1, got["off"].count),
                    used["on"] * 1000 / max(1, got["on"].count),
                )
            )
    finally:
        for side in reversed(sides):
            await side.clients.close()
            await side.envoy.stop()
            await side.server.stop()  # the traced server flushes its last batch here
        await fake.stop()
        await sink.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    return costs, sink


def render(costs: list[Cost], sink: OtlpReceiver) -> list[str]:
    return [
        "## G. Tracing cost (`python -m bench.tracing_cost`)",
        "",
        "Two servers side by side, each behind its own Envoy: tracing off (no OTEL_* "
        "variable) and on (OTLP/HTTP to a local sink, every span exported). Calls "
        "alternate between them at c=1; CPU is the server process's own per call.",
        "",
        "| mode | calls off / on | p50 ms off | p50 ms on | p99 ms off | p99 ms on "
        "| CPU ms/call off | CPU ms/call on | CPU added |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {c.mode} | {c.off.count} / {c.on.count} | {c.off.p(50):.2f} | "
            f"{c.on.p(50):.2f} | {c.off.p(99):.2f} | {c.on.p(99):.2f} | "
            f"{c.cpu_off_ms:.3f} | {c.cpu_on_ms:.3f} | {c.cpu_on_ms - c.cpu_off_ms:+.3f} ms |"
            for c in costs
        ),
        "",
        f"- The sink received {len(sink.spans)} spans in {sink.requests} export requests.",
        "- Off, nothing is installed (no interceptor, no tracer provider; the helpers "
        "return at one check), so the off column is the server's cost without tracing.",
        "",
    ]


async def run(*, quick: bool = False) -> list[str]:
    costs, sink = await measure(quick=quick)
    return render(costs, sink)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tracing_cost")
    parser.add_argument("--quick", action="store_true", help="short loops (rougher figures)")
    args = parser.parse_args(argv)
    print("\n".join(asyncio.run(run(quick=args.quick))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
