"""Overload: N concurrent SSE streams of the local model at once, through Envoy.

    python -m bench.overload [--streams 1000] [--max-inflight 0] [--delay-ms 20]

One `chatplane serve` (CHATPLANE_LOCAL_TOKEN_DELAY_MS=20, about 40 words per reply) behind
one Envoy configured as `chatplane run` configures it. All streams start together; for
each the client notes the status, the time to its first body byte (accepted) or to the
refusal (503 "Server overloaded"), and whether it hung (no answer within 60 s). Target
(issue 12, item 6): accepted streams' p95 time to first byte under 2 s, refusals within
1 s, nothing hangs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench import procs
from bench.stats import percentile
from chatplane.config import default_max_inflight, descriptor_path
from chatplane.gateway import EnvoyProcess

PROMPT = " ".join(f"word{i}" for i in range(36))  # the echo: about 40 words


async def _one(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, float, float]:
    """(status, seconds to first byte or refusal, seconds to the end); status 0: hung."""
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            if response.status != 200:
                await response.read()
                elapsed = time.perf_counter() - started
                return response.status, elapsed, elapsed
            first = 0.0
            async for _ in response.content.iter_any():
                if not first:
                    first = time.perf_counter() - started
            return 200, first, time.perf_counter() - started
    except (TimeoutError, aiohttp.ClientError):
        return 0, 0.0, time.perf_counter() - started


async def run(streams: int, max_inflight: int, delay_ms: int) -> str:
    with tempfile.TemporaryDirectory(prefix="chatplane-overload-") as tmp:
        run_dir = Path(tmp)
        env = {
            **{
                k: v for k, v in os.environ.items() if not k.startswith(("CHATPLANE_", "ANTHROPIC"))
            },
            "CHATPLANE_GRPC_PORT": "0",
            "CHATPLANE_DATA_DIR": str(run_dir / "data"),
            "CHATPLANE_BOOTSTRAP_API_KEY": procs.BOOTSTRAP_KEY,
            "CHATPLANE_RATE_LIMIT_PER_MINUTE": "0",
            "CHATPLANE_RATE_LIMIT_PER_HOUR": "0",
            "CHATPLANE_SESSION_RATE_LIMIT_PER_MINUTE": "0",
            "CHATPLANE_LOCAL_TOKEN_DELAY_MS": str(delay_ms),
            "CHATPLANE_LOG_LEVEL": "WARNING",
        }
        if max_inflight:
            env["CHATPLANE_MAX_INFLIGHT"] = str(max_inflight)
        limit = max_inflight or default_max_inflight()
        server = await procs.spawn(
            "chatplane", [sys.executable, "-m", "chatplane.cli", "serve"], env, run_dir
        )
        envoy: EnvoyProcess | None = None
        try:
            match = await server.wait_for_line(
                re.compile(r"^chatplane gRPC on 127\.0\.0\.1:(\d+)$", re.M), procs.STARTUP_TIMEOUT
            )
            envoy = EnvoyProcess(
                http_port=0,
                grpc_port=int(match.group(1)),
                descriptor=descriptor_path(),
                work_dir=run_dir / "envoy",
                max_upstream_requests=limit,  # as `chatplane run` sets it
            )
            await envoy.start()
            base = f"http://127.0.0.1:{envoy.http_port}"
            headers = {
                "Authorization": f"Bearer {procs.BOOTSTRAP_KEY}",
                "Content-Type": "application/json",
            }
            connector = aiohttp.TCPConnector(limit=0, force_close=False)
            timeout = aiohttp.ClientTimeout(total=60)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                async with session.post(
                    f"{base}/api/projects", data=b'{"name":"overload"}', headers=headers
                ) as response:
                    project = (await response.json())["project"]["id"]
                body = json.dumps(
                    {"projectId": project, "messages": [{"role": "user", "content": PROMPT}]}
                ).encode()
                url = f"{base}/api/v1/chat/stream"
                await asyncio.gather(*(_one(session, url, body, headers) for _ in range(20)))
                started = time.perf_counter()
                results = await asyncio.gather(
                    *(_one(session, url, body, headers) for _ in range(streams))
                )
                wall = time.perf_counter() - started
        finally:
            if envoy is not None:
                await envoy.stop()
            await server.stop()
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    hung = [r for r in results if r[0] == 0]
    other = [r for r in results if r[0] not in (0, 200, 503)]
    ttfb = [r[1] for r in ok]
    refusal = [r[1] for r in refused]
    return "\n".join(
        [
            f"{streams} concurrent streams, max in flight {limit}, token delay {delay_ms} ms, "
            f"{wall:.1f} s in all",
            "",
            "| | count | p50 s | p95 s | max s |",
            "|---|---|---|---|---|",
            f"| accepted: time to first byte | {len(ok)} | {percentile(ttfb, 50):.2f} | "
            f"{percentile(ttfb, 95):.2f} | {max(ttfb, default=float('nan')):.2f} |",
            f"| accepted: whole stream | {len(ok)} | {percentile([r[2] for r in ok], 50):.2f} | "
            f"{percentile([r[2] for r in ok], 95):.2f} | "
            f"{max((r[2] for r in ok), default=float('nan')):.2f} |",
            f"| refused (503 Server overloaded) | {len(refused)} | "
            f"{percentile(refusal, 50):.2f} | {percentile(refusal, 95):.2f} | "
            f"{max(refusal, default=float('nan')):.2f} |",
            f"| hung (no answer in 60 s) | {len(hung)} | | | |",
            f"| other statuses | {len(other)} {sorted({r[0] for r in other})} | | | |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--max-inflight", type=int, default=0, help="0: the server default")
    parser.add_argument("--delay-ms", type=int, default=20)
    args = parser.parse_args(argv)
    print(asyncio.run(run(args.streams, args.max_inflight, args.delay_ms)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
