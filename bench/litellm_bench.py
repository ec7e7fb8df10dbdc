"""E. Side by side with the LiteLLM proxy, in the same run, against the same fake upstream.

LiteLLM's proxy (one worker, no database, its defaults otherwise) runs in its own process
from the side venv (bench/sidevenv.py) with one model alias, `claude-haiku-4-5` ->
`anthropic/claude-haiku-4-5` at the fake upstream's address. The load generator sends the
same OpenAI-shape body to LiteLLM's `/chat/completions` and to chatplane's
`/v1/chat/completions` (via Envoy), and chatplane's own REST `/api/v1/chat/complete`;
modes alternate call by call at concurrency 1 and loop by loop at concurrency 20, so
drift in the machine's load hits every mode alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from bench import procs
from bench.clients import MODEL, Clients
from bench.sidevenv import LITELLM, Tool
from bench.stats import Call, Sample, closed_loop, fmt, interleaved, ratio, warm_up

if TYPE_CHECKING:
    from bench.runner import Plan

MASTER_KEY = "sk-bench-litellm-master-0123456789abcdef"
START_TIMEOUT = 120.0  # seconds: LiteLLM imports a lot before it listens
ALTERNATIONS = 2  # c=20 loops per mode, alternating modes
CHATPLANE_MODES = ("rest_complete", "openai_complete")
MODES = ("litellm", *CHATPLANE_MODES)
LABELS = {
    "direct_json": "fake upstream direct, JSON (baseline)",
    "litellm": "LiteLLM proxy `POST /chat/completions`",
    "rest_complete": "chatplane REST `POST /api/v1/chat/complete` via Envoy",
    "openai_complete": "chatplane `POST /v1/chat/completions` via Envoy",
}
CPU_TARGET = 8.0  # issue 15: server + Envoy CPU per call at least 8x lower than LiteLLM's
ADDED_P50_TARGET_MS = 1.5  # issue 15: added p50 at c=1


@dataclass
class Side:
    """What section E measured, or why it did not run (`error`)."""

    version: str = ""
    error: str = ""
    c1: dict[str, Sample] = field(default_factory=dict)
    cn: dict[str, list[Sample]] = field(default_factory=dict)


CONFIG = """\
model_list:
  - model_name: {model}
    litellm_params:
      model: anthropic/{model}
      api_base: http://127.0.0.1:{fake_port}
      api_key: {fake_key}
general_settings:
  master_key: {master_key}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start(run_dir: Path, fake_port: int, tool: Tool) -> tuple[procs.Child, str]:
    """Start the proxy; its base URL once `/health/liveliness` answers 200."""
    assert tool.path is not None
    config = run_dir / "litellm.yaml"
    config.write_text(
        CONFIG.format(
            model=MODEL, fake_port=fake_port, fake_key=procs.FAKE_API_KEY, master_key=MASTER_KEY
        ),
        encoding="utf-8",
    )
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CHATPLANE_", "ANTHROPIC_"))},
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # offline: no cost map download
    }
    args = [str(tool.path), "--config", str(config), "--host", "127.0.0.1"]
    args += ["--port", str(port), "--num_workers", "1"]
    child = await procs.spawn("litellm", args, env, run_dir)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline and child.process.returncode is None:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"{base}/health/liveliness") as response:
                    if response.status == 200:
                        return child, base
            await asyncio.sleep(0.2)
    await child.stop()
    raise RuntimeError(
        f"LiteLLM did not start within {START_TIMEOUT:g} s (exit code "
        f"{child.process.returncode}):\n{child.tail(10)}"
    )


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and of its live descendants (uvicorn could fork workers)."""
    total = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        total += procs.cpu_seconds(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text(encoding="utf-8").split()
                todo.extend(int(child) for child in children)
    return total


async def measure(
    clients: Clients,
    litellm_base: str,
    plan: Plan,
    cpu_probe: Callable[[], dict[str, float]],
    say: Callable[[str], None],
) -> Side:
    """The side-by-side loops; `cpu_probe` must include a "LiteLLM" entry."""
    chatplane = clients.calls()
    headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
    url = f"{litellm_base}/chat/completions"
    body = clients.openai_body()  # the same bytes chatplane's OpenAI route gets

    async def litellm() -> tuple[float, None]:
        return await clients.post_json(url, body, headers), None

    calls: dict[str, Call] = {
        "direct_json": chatplane["direct_json"],
        "litellm": litellm,
        **{name: chatplane[name] for name in CHATPLANE_MODES},
    }
    side = Side()
    for call in calls.values():
        await warm_up(call, plan.c1_warmup)
    say(f"E. side by side, concurrency 1: up to {plan.c1_rounds} rounds of {len(calls)} modes")
    side.c1 = await interleaved(calls, rounds=plan.c1_rounds, max_seconds=plan.c1_seconds)
    side.cn = {name: [] for name in MODES}
    for turn in range(ALTERNATIONS):
        for name in MODES:
            await warm_up(calls[name], plan.cn_warmup, plan.concurrency)
            say(f"E. {name}, concurrency {plan.concurrency}, loop {turn + 1}/{ALTERNATIONS}")
            side.cn[name].append(
                await closed_loop(
                    name,
                    calls[name],
                    concurrency=plan.concurrency,
                    max_count=plan.cn_max_calls,
                    max_seconds=plan.cn_seconds,
                    cpu_probe=cpu_probe,
                )
            )
            await asyncio.sleep(0.3)
    return side


def merge(samples: list[Sample]) -> Sample:
    """One sample from several loops of a mode: pooled latencies, summed time and CPU."""
    out = Sample(samples[0].name if samples else "")
    for s in samples:
        out.latencies += s.latencies
        out.errors += s.errors
        out.first_error = out.first_error or s.first_error
        out.elapsed += s.elapsed
        for key, value in s.cpu.items():
            out.cpu[key] = out.cpu.get(key, 0.0) + value
    return out


def _per_call(s: Sample, *keys: str) -> float:
    if not s.count:
        return float("nan")
    return sum(s.cpu.get(key, float("nan")) for key in keys) * 1000 / s.count


def own_cpu_ms(name: str, s: Sample) -> float:
    """CPU ms per call of the proxy itself: LiteLLM's process, or chatplane server + Envoy."""
    if name == "litellm":
        return _per_call(s, "LiteLLM")
    return _per_call(s, "chatplane server", "Envoy")


def render(side: Side | None, plan: Plan) -> list[str]:
    out = ["## E. Side by side: LiteLLM proxy and chatplane, same upstream, same run", ""]
    if side is None or side.error:
        reason = side.error if side is not None else "not run"
        return [*out, f"**Not measured in this run**: {reason}", ""]
    out += [
        f"LiteLLM proxy {side.version} (`{LITELLM}` in var/bench/litellm-venv; one worker, "
        "no database, its default logging: one uvicorn access-log line per request, as "
        "Envoy's access log does for chatplane) in front of the same fake upstream process, "
        "model alias `claude-haiku-4-5` -> `anthropic/claude-haiku-4-5`. LiteLLM and "
        "chatplane's `/v1/chat/completions` get the same request body; modes alternate "
        f"call by call at concurrency 1, and loop by loop ({ALTERNATIONS} loops of up to "
        f"{plan.cn_seconds:g} s each per mode) at concurrency {plan.concurrency}.",
        "",
        f"Concurrency {plan.concurrency} (CPU: per successful call, of the proxy's own "
        "process(es): LiteLLM's, or chatplane server + Envoy):",
        "",
        "| mode | calls | errors | req/s | p50 ms | p99 ms | CPU ms/call (proxy) | "
        "of it Envoy | fake | loadgen |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    merged = {name: merge(samples) for name, samples in side.cn.items() if samples}
    for name, s in merged.items():
        errors = str(s.errors) if not s.errors else f"{s.errors} ({s.first_error})"
        envoy = "-" if name == "litellm" else fmt(_per_call(s, "Envoy"))
        out.append(
            f"| {LABELS[name]} | {s.count} | {errors} | {fmt(s.rps, 0)} | {fmt(s.p(50))} | "
            f"{fmt(s.p(99))} | {fmt(own_cpu_ms(name, s))} | {envoy} | "
            f"{fmt(_per_call(s, 'fake upstream'))} | {fmt(_per_call(s, 'load generator'))} |"
        )
    out += ["", f"Concurrency 1 ({plan.c1_rounds} rounds at most, {plan.c1_seconds:g} s):", ""]
    out += [
        "| mode | calls | p50 ms | p99 ms | added p50 ms over direct |",
        "|---|---|---|---|---|",
    ]
    base = side.c1.get("direct_json")
    for name, one in side.c1.items():
        extra = "baseline" if base is None or one is base else f"{one.p(50) - base.p(50):+.2f}"
        out.append(
            f"| {LABELS[name]} | {one.count} | {fmt(one.p(50))} | {fmt(one.p(99))} | {extra} |"
        )
    lite = merged.get("litellm")
    lite1 = side.c1.get("litellm")
    out += ["", "Ratios, chatplane against LiteLLM in this run:", ""]
    for name in CHATPLANE_MODES:
        ours, ours1 = merged.get(name), side.c1.get(name)
        if ours is None or lite is None or ours1 is None or lite1 is None or base is None:
            continue
        ours_ms = own_cpu_ms(name, ours)
        cpu_ratio = own_cpu_ms("litellm", lite) / ours_ms if ours_ms else float("nan")
        added = ours1.p(50) - base.p(50)
        out.append(
            f"- {LABELS[name]}: **{ratio(ours.rps, lite.rps)} LiteLLM's req/s** at concurrency "
            f"{plan.concurrency}; CPU per call (server + Envoy) **{ratio(cpu_ratio, 1.0)} lower** "
            f"than LiteLLM's (target {CPU_TARGET:g}x: "
            f"{'met' if cpu_ratio >= CPU_TARGET else '**missed**'}); p50 at concurrency 1 "
            f"{ratio(lite1.p(50), ours1.p(50))} lower; added p50 {added:+.2f} ms over the direct "
            f"call (target under {ADDED_P50_TARGET_MS:g} ms: "
            f"{'met' if added < ADDED_P50_TARGET_MS else '**missed**'})."
        )
    out.append("")
    return out
