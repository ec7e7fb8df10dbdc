"""Envoy's worker count (`--concurrency`), measured: one chatplane server behind three
Envoys at once (1 worker, 2 workers, Envoy's default of one per CPU), REST complete at
concurrency 1 (interleaved) and 20 (closed loops, the Envoys alternating).

    python -m bench.envoy_workers [--runs 3] [--seconds 4]

The figures behind `chatplane.gateway.default_concurrency` (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from bench import procs
from bench.clients import Clients
from bench.litellm_bench import merge
from bench.stats import Sample, closed_loop, interleaved, warm_up
from chatplane.config import descriptor_path
from chatplane.gateway import EnvoyProcess

# 0: no --concurrency flag, Envoy's own default (one worker per hardware thread).
SETTINGS = {"1 worker": 1, "2 workers": 2, "Envoy's default (1 per CPU)": 0}


async def _measure(runs: int, seconds: float, rounds: int) -> str:
    children: list[procs.Child] = []
    envoys: dict[str, EnvoyProcess] = {}
    clients: dict[str, Clients] = {}
    with tempfile.TemporaryDirectory(prefix="chatplane-envoy-workers-") as tmp:
        run_dir = Path(tmp)
        try:
            fake, fake_port = await procs.start_fake(run_dir)
            children.append(fake)
            server, grpc_port = await procs.start_server(run_dir, fake_port)
            children.append(server)
            for i, (name, concurrency) in enumerate(SETTINGS.items()):
                envoy = EnvoyProcess(
                    http_port=0,
                    grpc_port=grpc_port,
                    descriptor=descriptor_path(),
                    work_dir=run_dir / f"envoy-{i}",
                    log_path=run_dir / f"envoy-{i}.log",
                    concurrency=concurrency,
                )
                await envoy.start()
                envoys[name] = envoy
            for name, envoy in envoys.items():
                client = Clients(
                    rest_base=f"http://127.0.0.1:{envoy.http_port}",
                    grpc_port=grpc_port,
                    fake_base=f"http://127.0.0.1:{fake_port}",
                    api_key=procs.BOOTSTRAP_KEY,
                    fake_key=procs.FAKE_API_KEY,
                )
                await client.open()
                if clients:  # one project for all
                    client.project_id = next(iter(clients.values())).project_id
                else:
                    await client.create_project()
                clients[name] = client
            calls = {name: client.calls()["rest_complete"] for name, client in clients.items()}
            for call in calls.values():
                await warm_up(call, 50)
            c1 = await interleaved(calls, rounds=rounds, max_seconds=60)
            cn: dict[str, list[Sample]] = {name: [] for name in calls}
            names = list(calls)
            for run in range(runs):
                # A different setting goes first in each run (no order effect).
                for name in names[run % len(names) :] + names[: run % len(names)]:
                    call = calls[name]
                    envoy_pid = envoys[name].pid

                    def probe(pid: int | None = envoy_pid) -> dict[str, float]:
                        return {
                            "Envoy": procs.cpu_seconds(pid),
                            "chatplane server": procs.cpu_seconds(server.pid),
                        }

                    await warm_up(call, 40, 20)
                    cn[name].append(
                        await closed_loop(
                            name,
                            call,
                            concurrency=20,
                            max_count=10**9,
                            max_seconds=seconds,
                            cpu_probe=probe,
                        )
                    )
            rss = {name: procs.rss_mib(envoy.pid) for name, envoy in envoys.items()}
        finally:
            for client in clients.values():
                await client.close()
            for envoy in envoys.values():
                await envoy.stop()
            for child in reversed(children):
                await child.stop()
    lines = [
        f"nproc {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.2f}",
        "",
        f"| Envoy workers | c=1 p50 ms | c=20 req/s (each of {runs} loops) | c=20 p50 ms | "
        "c=20 p99 ms | Envoy CPU ms/call | server CPU ms/call | Envoy RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, samples in cn.items():
        s = merge(samples)
        each = ", ".join(f"{x.rps:.0f}" for x in samples)
        envoy_ms = s.cpu["Envoy"] * 1000 / s.count
        server_ms = s.cpu["chatplane server"] * 1000 / s.count
        lines.append(
            f"| {name} | {c1[name].p(50):.2f} | {s.rps:.0f} ({each}) | {s.p(50):.1f} | "
            f"{s.p(99):.1f} | {envoy_ms:.3f} | {server_ms:.3f} | {rss[name] or 0:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.envoy_workers", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="c=20 loops per setting")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each c=20 loop")
    parser.add_argument("--rounds", type=int, default=300, help="c=1 rounds")
    args = parser.parse_args(argv)
    print(asyncio.run(_measure(args.runs, args.seconds, args.rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
