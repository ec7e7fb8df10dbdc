"""A/B of the chat completion paths between two source trees, in one run.

    python -m bench.ab --baseline /tmp/head   # e.g. `git archive HEAD | tar -x -C /tmp/head`
    python -m bench.ab --baseline /tmp/head --candidate /tmp/cand   # two trees, neither this one

Starts the fake Anthropic upstream once, then a `chatplane serve` + Envoy pair from the
baseline tree (A) and from this tree (B), and measures `rest_complete` and
`grpc_complete` the way `make bench` does (B1: concurrency 1, interleaved, p50; B2:
concurrency 20, closed loop, req/s), alternating A and B so drift hits both alike. Used
for changes on the hot path (usage group commit: issue 12, item 5).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
from pathlib import Path

from bench import procs
from bench.clients import Clients
from bench.stats import Sample, closed_loop, interleaved, warm_up
from chatplane.gateway import EnvoyProcess

MODES = ("rest_complete", "grpc_complete")


async def _server(run_dir: Path, name: str, src: Path, fake_port: int) -> tuple[procs.Child, int]:
    data_dir = run_dir / f"data-{name}"
    data_dir.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CHATPLANE_", "ANTHROPIC_"))},
        "PYTHONPATH": f"{src / 'src'}:{src / 'gen' / 'python'}",
        "CHATPLANE_GRPC_PORT": "0",
        "CHATPLANE_DATA_DIR": str(data_dir),
        "CHATPLANE_BOOTSTRAP_API_KEY": procs.BOOTSTRAP_KEY,
        "CHATPLANE_RATE_LIMIT_PER_MINUTE": "0",
        "CHATPLANE_RATE_LIMIT_PER_HOUR": "0",
        "CHATPLANE_LOG_LEVEL": "WARNING",
        "ANTHROPIC_API_KEY": procs.FAKE_API_KEY,
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{fake_port}",
    }
    child = await procs.spawn(
        f"chatplane-{name}", [sys.executable, "-m", "chatplane.cli", "serve"], env, run_dir
    )
    match = await child.wait_for_line(
        re.compile(r"^chatplane gRPC on 127\.0\.0\.1:(\d+)$", re.M), procs.STARTUP_TIMEOUT
    )
    return child, int(match.group(1))


async def _measure(baseline: Path, candidate: Path, rounds: int, seconds: float, runs: int) -> str:
    children: list[procs.Child] = []
    envoys: list[EnvoyProcess] = []
    clients: dict[str, Clients] = {}
    with tempfile.TemporaryDirectory(prefix="chatplane-ab-") as tmp:
        run_dir = Path(tmp)
        try:
            fake, fake_port = await procs.start_fake(run_dir)
            children.append(fake)
            trees = (("A", baseline), ("B", candidate))
            # Both servers before any gRPC client: forking this process while its grpc
            # threads run can abort the child before exec (grpc's fork handlers are
            # skipped then; seen once as "epoll_wait error: Bad file descriptor").
            grpc_ports = {}
            for name, src in trees:
                server, grpc_ports[name] = await _server(run_dir, name, src, fake_port)
                children.append(server)
            for name, src in trees:
                port = grpc_ports[name]
                envoy = EnvoyProcess(
                    http_port=0,
                    grpc_port=port,
                    descriptor=src / "gen" / "descriptor.binpb",
                    work_dir=run_dir / f"envoy-{name}",
                    log_path=run_dir / f"envoy-{name}.log",  # its access log too
                )
                await envoy.start()
                envoys.append(envoy)
                client = Clients(
                    rest_base=f"http://127.0.0.1:{envoy.http_port}",
                    grpc_port=port,
                    fake_base=f"http://127.0.0.1:{fake_port}",
                    api_key=procs.BOOTSTRAP_KEY,
                    fake_key=procs.FAKE_API_KEY,
                )
                await client.open()
                await client.create_project()
                clients[name] = client
            calls = {f"{m} {n}": clients[n].calls()[m] for m in MODES for n in ("A", "B")}
            for call in calls.values():
                await warm_up(call, 30)
            c1 = await interleaved(calls, rounds=rounds, max_seconds=seconds, alternate=True)
            cn: dict[str, list[Sample]] = {name: [] for name in calls}
            for _ in range(runs):
                for name, call in calls.items():
                    await warm_up(call, 40, 20)
                    cn[name].append(
                        await closed_loop(
                            name,
                            call,
                            concurrency=20,
                            max_count=40_000,
                            max_seconds=3.0,
                            cpu_probe=dict,
                        )
                    )
        finally:
            for client in clients.values():
                await client.close()
            for envoy in envoys:
                await envoy.stop()
            for child in reversed(children):
                await child.stop()
    lines = [
        f"A = {baseline}, B = {candidate}",
        "",
        f"| mode | c=1 p50 ms | c=1 p90 ms | c=20 req/s (mean of {runs} runs) | c=20 p50 ms |",
        "|---|---|---|---|---|",
    ]
    for name in calls:
        samples = cn[name]
        rps = sum(s.rps for s in samples) / len(samples)
        p50 = sum(s.p(50) for s in samples) / len(samples)
        each = ", ".join(f"{s.rps:.0f}" for s in samples)
        lines.append(
            f"| {name} | {c1[name].p(50):.2f} | {c1[name].p(90):.2f} | "
            f"{rps:.0f} ({each}) | {p50:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--baseline", type=Path, required=True, help="the A source tree")
    parser.add_argument(
        "--candidate",
        type=Path,
        default=procs.REPO_ROOT,
        help="the B source tree (default: this one)",
    )
    parser.add_argument("--rounds", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=3, help="c=20 loops per mode (alternating)")
    args = parser.parse_args(argv)
    trees = (args.baseline.resolve(), args.candidate.resolve())
    print(asyncio.run(_measure(*trees, args.rounds, args.seconds, args.runs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
