"""Agent turn benchmarks: `python -m bench.agent_bench [--quick]`.

Separate processes, as in the completion benchmark: the fake Anthropic server, one
`chatplane serve`, one Envoy; the load generator is this process. Ratios within one run:

- A deterministic FLOW turn (no model) through Envoy at concurrency 1 (p50/p99) and 20
  (req/s), beside a plain `GET /api/projects/{id}` through the same Envoy as the
  baseline; target p50 < 3 ms at c=1.
- A reasoning turn with one model call (the fake upstream) beside the same model call
  made directly to the fake upstream: the added p50; target < 3 ms.
- A FLOW turn on sessions that already hold 1, 100 and 1,000 turns: the latency must not
  grow with history (ratio to the 1-turn session).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench import procs
from bench.clients import ANTHROPIC_VERSION, MODEL
from bench.stats import Sample, closed_loop, interleaved, warm_up

FLOW = """AGENT: Bench_Flow
GOAL: "Answer at once"
FLOW:
  entry_point: answer
  steps:
    - answer
  answer:
    REASONING: false
    GATHER:
      - said: required
        type: string
        validate: pattern(^\\w+$)
        prompt: "Say something"
    SET:
      count = ADD(COALESCE(count, 0), 1)
    RESPOND: "Turn {{count}}: you said {{said}}"
    CLEAR: [said]
    THEN: answer
"""
REASONING = 'AGENT: Bench_Reasoning\nGOAL: "Answer briefly"\n'
PROMPT = "Say hello to the benchmark in about ten words please"
Call = Callable[[], Awaitable[tuple[float, float | None]]]


class AgentClients:
    def __init__(self, http: aiohttp.ClientSession, rest: str, fake: str, key: str) -> None:
        self.http = http
        self.rest = rest
        self.fake = fake
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(
            f"{self.rest}{path}", data=json.dumps(body), headers=self.headers
        ) as r:
            text = await r.text()
            if r.status != 200:
                raise RuntimeError(f"POST {path}: {r.status} {text[:300]}")
            return dict(json.loads(text))

    async def project(self, source: str, name: str, **fields: str) -> str:
        pid = str((await self._post("/api/projects", {"name": name, **fields}))["project"]["id"])
        async with self.http.put(
            f"{self.rest}/api/projects/{pid}/agents/{name}",
            data=json.dumps({"source": source}),
            headers=self.headers,
        ) as r:
            if r.status != 200:
                raise RuntimeError(f"PUT agent: {r.status} {await r.text()}")
        await self._post(
            f"/api/projects/{pid}/deployments", {"environment": "dev", "entryAgentName": name}
        )
        return pid

    async def turn(self, pid: str, session: str = "", message: str = "hi") -> dict[str, Any]:
        body: dict[str, Any] = {"projectId": pid, "message": message, "metadata": {"n": 1}}
        if session:
            body["sessionId"] = session
        return await self._post("/api/v1/chat/agent", body)

    def timed_turn(self, pid: str, session: str = "") -> Call:
        async def call() -> tuple[float, float | None]:
            started = time.perf_counter()
            await self.turn(pid, session)
            return time.perf_counter() - started, None

        return call

    def get_project(self, pid: str) -> Call:
        async def call() -> tuple[float, float | None]:
            started = time.perf_counter()
            async with self.http.get(f"{self.rest}/api/projects/{pid}", headers=self.headers) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"GET project: {r.status}")
            return time.perf_counter() - started, None

        return call

    def direct_model(self) -> Call:
        body = json.dumps(
            {
                "model": MODEL,
                "max_tokens": 4096,
                "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
            }
        )
        headers = {
            "x-api-key": procs.FAKE_API_KEY,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
        }

        async def call() -> tuple[float, float | None]:
            started = time.perf_counter()
            async with self.http.post(f"{self.fake}/v1/messages", data=body, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"fake: {r.status}")
            return time.perf_counter() - started, None

        return call


def _ms(sample: Sample, q: float) -> str:
    return f"{sample.p(q):.2f}"  # Sample.p is already in ms


async def run(*, quick: bool = False) -> list[str]:
    rounds, seconds, loop_seconds = (60, 10.0, 2.0) if quick else (400, 40.0, 8.0)
    run_dir = Path(tempfile.mkdtemp(prefix="agent-bench-"))
    fake, fake_port = await procs.start_fake(run_dir)
    server, grpc_port = await procs.start_server(run_dir, fake_port)
    envoy = await procs.start_envoy(run_dir, grpc_port)
    lines: list[str] = []
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100), timeout=aiohttp.ClientTimeout(total=15)
        ) as http:
            c = AgentClients(
                http,
                f"http://127.0.0.1:{envoy.http_port}",
                f"http://127.0.0.1:{fake_port}",
                procs.BOOTSTRAP_KEY,
            )
            flow = await c.project(FLOW, "Bench_Flow")
            reasoning = await c.project(REASONING, "Bench_Reasoning", defaultModel=MODEL)
            flow_session = (await c.turn(flow))["sessionId"]
            reasoning_session = (await c.turn(reasoning, message=PROMPT))["sessionId"]
            calls = {
                "get_project": c.get_project(flow),
                "flow_turn": c.timed_turn(flow, flow_session),
                "direct_model": c.direct_model(),
                "reasoning_turn": c.timed_turn(reasoning, reasoning_session),
            }
            for call in calls.values():
                await warm_up(call, 10)
            c1 = await interleaved(calls, rounds=rounds, max_seconds=seconds)

            def no_cpu() -> dict[str, float]:
                return {}

            cn = await closed_loop(
                "flow_turn_c20",
                c.timed_turn(flow),  # a new session per call: no lock contention
                concurrency=20,
                max_count=20_000,
                max_seconds=loop_seconds,
                cpu_probe=no_cpu,
            )
            base = await closed_loop(
                "get_project_c20",
                c.get_project(flow),
                concurrency=20,
                max_count=20_000,
                max_seconds=loop_seconds,
                cpu_probe=no_cpu,
            )
            # History: sessions holding 1, 100 and 1,000 turns.
            histories: dict[int, str] = {}
            for size in (1, 100, 1000):
                sid = (await c.turn(flow))["sessionId"]
                for _ in range(size - 1):
                    await c.turn(flow, sid)
                histories[size] = sid
            hist = await interleaved(
                {f"history_{n}": c.timed_turn(flow, sid) for n, sid in histories.items()},
                rounds=rounds // 2,
                max_seconds=seconds / 2,
            )
    finally:
        await envoy.stop()
        await server.stop()
        await fake.stop()
        shutil.rmtree(run_dir, ignore_errors=True)

    g, f, d, r = c1["get_project"], c1["flow_turn"], c1["direct_model"], c1["reasoning_turn"]
    lines += [
        "## D. Agent turns (`python -m bench.agent_bench`)",
        "",
        "Through Envoy, one `chatplane serve`, the fake Anthropic upstream. c=1 loops "
        "interleave the modes; ratios are within this run.",
        "",
        "| mode (c=1) | calls | p50 ms | p99 ms |",
        "|---|---|---|---|",
        *(f"| {s.name} | {s.count} | {_ms(s, 50)} | {_ms(s, 99)} |" for s in (g, f, d, r)),
        "",
        f"- Deterministic FLOW turn p50: {_ms(f, 50)} ms (target < 3 ms), "
        f"{f.p(50) / g.p(50):.2f}x a plain GET of the project through the same Envoy.",
        f"- Reasoning turn with one model call: +{r.p(50) - d.p(50):.2f} ms at p50 "
        "over calling the fake upstream directly (target < 3 ms).",
        f"- Concurrency 20: FLOW turns {cn.rps:.0f} req/s (new session per call), "
        f"GET project {base.rps:.0f} req/s ({cn.rps / base.rps:.2f}x).",
        "",
        "| session history (c=1) | p50 ms | p99 ms | p50 vs 1 turn |",
        "|---|---|---|---|",
        *(
            f"| {n} turns | {_ms(hist[f'history_{n}'], 50)} | {_ms(hist[f'history_{n}'], 99)} | "
            f"{hist[f'history_{n}'].p(50) / hist['history_1'].p(50):.2f}x |"
            for n in (1, 100, 1000)
        ),
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent_bench")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print("\n".join(asyncio.run(run(quick=args.quick))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
