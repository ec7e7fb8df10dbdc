"""CPU per provider call, lean transport vs the SDK's path (issue 15):
`python -m bench.provider_bench [--calls N] [--rounds R] [--concurrency C]`.

The fake Anthropic upstream runs in its own process (`bench.fake_server`), so this
process's CPU time (`time.process_time`) is the provider's alone: building and sending
the request, reading and mapping the response. Per round, each workload runs `--calls`
calls on each transport, the order of the two alternating between rounds so drift on a
shared machine hits both alike:

- complete / stream, sequential: one call at a time;
- complete / stream, concurrent: `--concurrency` workers sharing the calls.

Printed: the median over rounds of CPU milliseconds per call per transport, and the lean
path's share of the SDK path's CPU (ratio) with the reduction it means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from chatplane.llm.anthropic import AnthropicProvider
from chatplane.llm.anthropic.provider import Transport
from chatplane.llm.types import CompletionParams, Message, ToolSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
FAKE_API_KEY = "sk-ant-test-key"  # tests/fakes/anthropic.py's default
TRANSPORTS: tuple[Transport, Transport] = ("lean", "sdk")

# A modest chat turn: system prompt, a short history, one tool; the fake echoes the last
# user text, so the stream carries one text delta per word (25 here).
PARAMS = CompletionParams(
    model="claude-sonnet-4-6",
    messages=(
        Message("system", "You are a concise assistant for a weather service."),
        Message("user", "Hello, who are you?"),
        Message("assistant", "I answer questions about the weather."),
        Message(
            "user",
            "Please tell me in a few words what the weather will be like in Paris and"
            " in Rome tomorrow morning, and whether I need an umbrella",
        ),
    ),
    tools=(
        ToolSpec(
            "get_weather",
            "Current weather for a city",
            {"type": "object", "properties": {"city": {"type": "string"}}},
        ),
    ),
    max_tokens=512,
)


async def start_fake() -> tuple[asyncio.subprocess.Process, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.fake_server",
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.PIPE,  # the server stops when this closes, too
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    match = re.match(rb"PORT (\d+)", line)
    if match is None:
        process.kill()
        raise RuntimeError(f"fake upstream did not start: {line!r}")
    return process, int(match.group(1))


async def stop_fake(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        process.kill()
        await process.wait()


async def one_complete(provider: AnthropicProvider) -> None:
    await provider.complete(PARAMS)


async def one_stream(provider: AnthropicProvider) -> None:
    async for _ in provider.stream(PARAMS):
        pass


async def cpu_per_call(
    call: Callable[[AnthropicProvider], Awaitable[None]],
    provider: AnthropicProvider,
    calls: int,
    concurrency: int,
) -> float:
    """CPU milliseconds of this process per call, over `calls` calls."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await call(provider)

    shares = [calls // concurrency + (i < calls % concurrency) for i in range(concurrency)]
    gc.collect()
    started = time.process_time()
    await asyncio.gather(*(worker(n) for n in shares if n))
    return (time.process_time() - started) * 1000 / calls


WORKLOADS: dict[str, tuple[Callable[[AnthropicProvider], Awaitable[None]], bool]] = {
    "complete, sequential": (one_complete, False),
    "stream, sequential": (one_stream, False),
    "complete, concurrent": (one_complete, True),
    "stream, concurrent": (one_stream, True),
}


async def run(calls: int, rounds: int, concurrency: int) -> None:
    process, port = await start_fake()
    url = f"http://127.0.0.1:{port}"
    providers = {
        t: AnthropicProvider(FAKE_API_KEY, url, max_retries=0, transport=t) for t in TRANSPORTS
    }
    try:
        for t, p in providers.items():
            assert p.transport == t, "OpenTelemetry tracing is configured: both would use the SDK"
            for call, _ in WORKLOADS.values():  # warm-up: connections, imports, caches
                for _ in range(50):
                    await call(p)
        results: dict[tuple[str, Transport], list[float]] = {}
        for r in range(rounds):
            order = TRANSPORTS if r % 2 == 0 else TRANSPORTS[::-1]
            for name, (call, concurrent) in WORKLOADS.items():
                for t in order:
                    c = concurrency if concurrent else 1
                    ms = await cpu_per_call(call, providers[t], calls, c)
                    results.setdefault((name, t), []).append(ms)
            print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    finally:
        for p in providers.values():
            await p.aclose()
        await stop_fake(process)

    print(
        f"CPU ms per call of this process (median of {rounds} rounds x {calls} calls;"
        f" concurrent = {concurrency} workers)"
    )
    print(f"{'workload':<22} {'lean':>7} {'sdk':>7} {'lean/sdk':>9} {'less CPU':>9}")
    for name in WORKLOADS:
        lean = statistics.median(results[(name, "lean")])
        sdk = statistics.median(results[(name, "sdk")])
        print(f"{name:<22} {lean:7.3f} {sdk:7.3f} {lean / sdk:9.2f} {1 - lean / sdk:9.0%}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=400, help="calls per workload and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args(argv)
    asyncio.run(run(args.calls, args.rounds, args.concurrency))


if __name__ == "__main__":
    main()
