"""One benchmark run: start everything, measure, stop everything, report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from bench import agent_bench, lang_bench, litellm_bench, procs, sidevenv, tracing_cost
from bench import profile as server_profile
from bench.clients import Clients
from bench.report import render
from bench.stats import Sample, closed_loop, interleaved, warm_up
from chatplane.gateway import EnvoyProcess, find_envoy

RUN_TIMEOUT = 540.0  # seconds: the whole run is cancelled past this (installs excluded)
# Knobs: CHATPLANE_BENCH_LITELLM=0 skips section E (the LiteLLM side by side),
# CHATPLANE_BENCH_PROFILE=0 skips section F (the py-spy profile).
LITELLM_ON = os.environ.get("CHATPLANE_BENCH_LITELLM", "1") != "0"
PROFILE_ON = os.environ.get("CHATPLANE_BENCH_PROFILE", "1") != "0"
CHAT_MODES = [
    "direct_json",
    "rest_complete",
    "grpc_complete",
    "direct_sse",
    "rest_stream",
    "grpc_stream",
]


@dataclass(frozen=True)
class Plan:
    """Counts and time bounds of every loop."""

    foundation_warmup: int = 200
    foundation_calls: int = 2000
    foundation_seconds: float = 40.0
    c1_warmup: int = 30
    c1_rounds: int = 400
    c1_seconds: float = 45.0
    concurrency: int = 20
    cn_warmup: int = 100
    cn_max_calls: int = 40_000
    cn_seconds: float = 8.0


QUICK = Plan(
    foundation_warmup=50,
    foundation_calls=300,
    foundation_seconds=10.0,
    c1_warmup=10,
    c1_rounds=60,
    c1_seconds=10.0,
    cn_warmup=40,
    cn_max_calls=5000,
    cn_seconds=2.0,
)


@dataclass
class Results:
    plan: Plan
    command: str
    started_at: str
    machine: dict[str, str] = field(default_factory=dict)
    provider_check: dict[str, str] = field(default_factory=dict)
    foundation: dict[str, Sample] = field(default_factory=dict)
    c1: dict[str, Sample] = field(default_factory=dict)
    cn: dict[str, Sample] = field(default_factory=dict)
    # B3: the REST modes again with two server processes behind one Envoy.
    workers2: dict[str, Sample] = field(default_factory=dict)
    rss_start: dict[str, float | None] = field(default_factory=dict)
    rss_peak: dict[str, float | None] = field(default_factory=dict)
    usage: list[dict[str, Any]] = field(default_factory=list)
    # C: the agent language (compile, deploy), in-process.
    lang: list[lang_bench.Timing] = field(default_factory=list)
    agent: list[str] = field(default_factory=list)  # section D, rendered by agent_bench
    tracing: list[str] = field(default_factory=list)  # section G, rendered by tracing_cost
    tools: dict[str, sidevenv.Tool] = field(default_factory=dict)  # LiteLLM, py-spy
    litellm: litellm_bench.Side | None = None  # section E
    profile: server_profile.Profile | None = None  # section F
    duration: float = 0.0


def _machine() -> dict[str, str]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        envoy = subprocess.run(  # noqa: S603
            [find_envoy(), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        envoy_version = next((w for w in envoy.split() if w.count(".") >= 2 and "/" in w), "")
        envoy_version = envoy_version.split("/")[1] if envoy_version else envoy.strip()[:60]
    except (OSError, subprocess.SubprocessError):
        envoy_version = "?"

    def version(name: str) -> str:
        try:
            return importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            return "?"

    try:
        loadavg = " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])
    except OSError:
        loadavg = "?"
    return {
        "loadavg": loadavg,
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu or platform.processor() or "?",
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "envoy": envoy_version,
        "grpcio": version("grpcio"),
        "aiohttp": version("aiohttp"),
        "anthropic": version("anthropic"),
    }


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _measure(results: Results, run_dir: Path) -> None:
    plan = results.plan
    children: list[procs.Child] = []
    envoy: EnvoyProcess | None = None
    clients: Clients | None = None
    watchdog = procs.Watchdog()
    await watchdog.start()
    await watchdog.watch_dir(run_dir)
    try:
        fake, fake_port = await procs.start_fake(run_dir)
        children.append(fake)
        await watchdog.watch(fake.pid)
        server, grpc_port = await procs.start_server(run_dir, fake_port)
        children.append(server)
        await watchdog.watch(server.pid)
        envoy = await procs.start_envoy(run_dir, grpc_port)
        await watchdog.watch(envoy.pid)
        _say(
            f"fake upstream :{fake_port} (pid {fake.pid}), chatplane gRPC :{grpc_port} "
            f"(pid {server.pid}), Envoy :{envoy.http_port} (pid {envoy.pid})"
        )
        results.rss_start = {
            "chatplane server": procs.rss_mib(server.pid),
            "Envoy": procs.rss_mib(envoy.pid),
        }
        clients = Clients(
            rest_base=f"http://127.0.0.1:{envoy.http_port}",
            grpc_port=grpc_port,
            fake_base=f"http://127.0.0.1:{fake_port}",
            api_key=procs.BOOTSTRAP_KEY,
            fake_key=procs.FAKE_API_KEY,
        )
        await clients.open()
        await clients.create_project()
        results.provider_check = await clients.check_provider()
        _say(f"provider check passed: {results.provider_check}")

        # A. Foundation: GetProject, REST via Envoy vs direct gRPC.
        foundation = {
            "grpc": clients.grpc_get_project,
            "rest": clients.rest_get_project,
            "health": clients.grpc_health_check,
        }
        for call in foundation.values():
            await warm_up(call, plan.foundation_warmup)
        _say(f"A. foundation: {plan.foundation_calls} interleaved GetProject calls per path")
        results.foundation = await interleaved(
            foundation, rounds=plan.foundation_calls, max_seconds=plan.foundation_seconds
        )

        # B1. Chat at concurrency 1.
        calls = clients.calls()
        for name in CHAT_MODES:
            await warm_up(calls[name], plan.c1_warmup)
        _say(f"B1. chat, concurrency 1: {plan.c1_rounds} interleaved rounds of 6 modes")
        results.c1 = await interleaved(
            {name: calls[name] for name in CHAT_MODES},
            rounds=plan.c1_rounds,
            max_seconds=plan.c1_seconds,
        )

        # B2. Chat at concurrency N.
        pids = {
            "load generator": os.getpid(),
            "Envoy": envoy.pid,
            "chatplane server": server.pid,
            "fake upstream": fake.pid,
        }

        def cpu_probe() -> dict[str, float]:
            return {name: procs.cpu_seconds(pid) for name, pid in pids.items()}

        for name in CHAT_MODES:
            await warm_up(calls[name], plan.cn_warmup, plan.concurrency)
            _say(f"B2. {name}, concurrency {plan.concurrency}, up to {plan.cn_seconds:g} s")
            results.cn[name] = await closed_loop(
                name,
                calls[name],
                concurrency=plan.concurrency,
                max_count=plan.cn_max_calls,
                max_seconds=plan.cn_seconds,
                cpu_probe=cpu_probe,
            )
            await asyncio.sleep(0.3)  # let the usage writer's batch go out between modes

        results.rss_peak = {
            "chatplane server": procs.peak_rss_mib(server.pid),
            "Envoy": procs.peak_rss_mib(envoy.pid),
        }
        results.usage = await clients.usage_by_model()

        # E. LiteLLM side by side; F. the server's profile.
        await _side_by_side(
            results,
            run_dir,
            fake_port=fake_port,
            clients=clients,
            cpu_probe=cpu_probe,
        )
        spy = results.tools.get("py-spy")
        if PROFILE_ON and spy is not None:
            if spy.path is None:
                results.profile = server_profile.Profile(error=spy.error)
            else:
                _say(f"F. profile: py-spy on the server, rest_complete, c={plan.concurrency}")
                results.profile = await server_profile.run(
                    spy,
                    server.pid,
                    calls["rest_complete"],
                    concurrency=plan.concurrency,
                    run_dir=run_dir,
                    cpu_probe=cpu_probe,
                    seconds=_profile_seconds(plan),
                )

        # B3. The REST modes with a second server process (CHATPLANE_WORKERS=2's layout):
        # a second Envoy round-robins over both servers, which share the database.
        second, second_port = await procs.start_server(run_dir, fake_port, reuse_data=True)
        children.append(second)
        await watchdog.watch(second.pid)
        envoy2 = await procs.start_envoy(run_dir, [grpc_port, second_port], name="envoy2")
        await watchdog.watch(envoy2.pid)
        try:
            pids["chatplane server 2"] = second.pid
            pids["Envoy"] = envoy2.pid
            clients.rest_base = f"http://127.0.0.1:{envoy2.http_port}"
            two = clients.calls()
            for name in ("rest_complete", "rest_stream"):
                await warm_up(two[name], plan.cn_warmup, plan.concurrency)
                _say(f"B3. {name}, 2 workers, concurrency {plan.concurrency}")
                results.workers2[name] = await closed_loop(
                    name,
                    two[name],
                    concurrency=plan.concurrency,
                    max_count=plan.cn_max_calls,
                    max_seconds=plan.cn_seconds,
                    cpu_probe=cpu_probe,
                )
                await asyncio.sleep(0.3)
        finally:
            await envoy2.stop()
    except Exception:
        for child in children:
            print(f"--- {child.name} output (tail) ---\n{child.tail()}", file=sys.stderr)
        log = run_dir / "envoy.log"
        if log.exists():
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:]
            print("--- envoy log (tail) ---\n" + "\n".join(tail), file=sys.stderr)
        raise
    finally:
        if clients is not None:
            await clients.close()
        if envoy is not None:
            await envoy.stop()
        for child in reversed(children):
            await child.stop()
        await watchdog.close()


def _profile_seconds(plan: Plan) -> int:
    return 3 if plan == QUICK else server_profile.SECONDS


async def _side_by_side(
    results: Results,
    run_dir: Path,
    *,
    fake_port: int,
    clients: Clients,
    cpu_probe: Callable[[], dict[str, float]],
) -> None:
    """Section E: start LiteLLM, measure, stop it; a failure is reported, not raised."""
    if not LITELLM_ON:
        results.litellm = litellm_bench.Side(error="skipped (CHATPLANE_BENCH_LITELLM=0)")
        return
    tool = results.tools.get("litellm")
    if tool is None or tool.path is None:
        error = tool.error if tool is not None else "not installed"
        results.litellm = litellm_bench.Side(error=f"LiteLLM is not available: {error}")
        return
    _say(f"E. starting LiteLLM proxy {tool.version} (one worker, no database)")
    try:
        child, base = await litellm_bench.start(run_dir, fake_port, tool)
    except (OSError, RuntimeError) as exc:
        results.litellm = litellm_bench.Side(error=f"LiteLLM did not start: {exc}")
        return
    try:

        def probe() -> dict[str, float]:
            return {**cpu_probe(), "LiteLLM": litellm_bench.tree_cpu_seconds(child.pid)}

        results.litellm = await litellm_bench.measure(clients, base, results.plan, probe, _say)
        results.litellm.version = tool.version
    except Exception as exc:
        print(f"--- litellm output (tail) ---\n{child.tail()}", file=sys.stderr)
        results.litellm = litellm_bench.Side(error=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        await child.stop()


async def _run(results: Results) -> None:
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, main_task.cancel)
    started = time.perf_counter()
    # LiteLLM and py-spy live in a venv of their own, installed on first use (outside the
    # run's time limit: pip can take minutes).
    results.tools = await sidevenv.ensure(litellm=LITELLM_ON, py_spy=PROFILE_ON, say=_say)
    for tool in results.tools.values():
        _say(f"{tool.name}: {tool.version or tool.error}")
    with tempfile.TemporaryDirectory(prefix="chatplane-bench-") as tmp:
        async with asyncio.timeout(RUN_TIMEOUT):
            await _measure(results, Path(tmp))
        _say("C. agent language: compile a 500-line agent, deploy a 20-agent project")
        results.lang = await lang_bench.run(quick=results.plan == QUICK)
        _say("D. agent turns: deterministic and reasoning turns through Envoy, history")
        results.agent = await agent_bench.run(quick=results.plan == QUICK)
        _say("G. tracing cost: off vs on")
        results.tracing = await tracing_cost.run(quick=results.plan == QUICK)
    results.duration = time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="short loops (a smoke test; figures are rougher)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=procs.REPO_ROOT / "BENCHMARKS.md",
        help="where to write the report (default: BENCHMARKS.md at the repository root)",
    )
    args = parser.parse_args(argv)
    command = "python -m bench" + ("".join(f" {shlex.quote(a)}" for a in sys.argv[1:]))
    if os.environ.get("MAKELEVEL") and not sys.argv[1:]:
        command = "make bench"
    results = Results(
        plan=QUICK if args.quick else Plan(),
        command=command,
        started_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=_machine(),
    )
    wall = time.perf_counter()
    try:
        asyncio.run(_run(results))
    except (KeyboardInterrupt, asyncio.CancelledError):
        _say("interrupted; every process of the run was stopped")
        return 130
    except TimeoutError:
        traceback.print_exc()
        _say(f"timed out (the whole run is limited to {RUN_TIMEOUT:g} s); everything was stopped")
        return 1
    text = render(results)
    print(text)
    args.output.write_text(text, encoding="utf-8")
    _say(f"wrote {args.output} ({time.perf_counter() - wall:.1f} s in all)")
    return 0
