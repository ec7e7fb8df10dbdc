"""F. Where the chatplane server's CPU goes: py-spy samples of the server process while
the load generator runs REST complete at concurrency 20, grouped by what the code is.

py-spy (pinned in bench/sidevenv.py) attaches to the running server by pid (`py-spy
record --pid`: needs ptrace, which root or `kernel.yama.ptrace_scope=0` gives) and
samples its Python threads; a sample is attributed to the innermost frame that belongs to
a known group (so `json.dumps` called by the SDK counts as the SDK, `sqlalchemy` called by
the usage writer as usage recording).

`python -m bench` runs it after section E unless CHATPLANE_BENCH_PROFILE=0 (it costs ~10 s);
`python -m bench.profile` runs it alone, on a fake upstream, server and Envoy of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.sidevenv import PY_SPY, Tool
from bench.stats import Call, Sample, closed_loop, fmt, warm_up

SECONDS = 8
KEEP = Path(__file__).resolve().parents[1] / "var" / "bench" / "py-spy.raw"
RATE = 100  # samples per second
# --gil: only the thread holding the GIL, i.e. Python running (idle threads waiting on a
# queue would count otherwise); --native: the Cython and C frames too (uvloop, grpc's
# cygrpc), which are otherwise invisible and their time lands on `Runner.run`. Native
# stacks need the process paused at each sample, hence the modest rate (it still costs
# the server about a third of its throughput while sampling).
SPY_FLAGS = ("--gil", "--native", "--full-filenames")
GROUPS = (
    "anthropic SDK / HTTP client",
    "grpc.aio",
    "asyncio loop",
    "usage recording",
    "logging",
    "protobuf",
    "our code",
    "other",
)
_GC = ("gc_collect_main ", "gc_collect_with_callback ")
# The process's entry frames (below the event loop): they enclose every sample.
_ENTRY = ("/chatplane/cli.py", "/asyncio/runners.py")
# (substring of a frame's file, group), first match wins; files matching none are
# "transparent": the sample goes to the next frame out.
_RULES = (
    ("/chatplane/usage/", "usage recording"),
    ("/chatplane/chat/metering.py", "usage recording"),
    ("/chatplane/kit/batch.py", "usage recording"),
    ("/chatplane/observability/logs.py", "logging"),
    ("_pb2.py", "protobuf"),
    ("/google/protobuf/", "protobuf"),
    ("/chatplane/", "our code"),
    ("/anthropic/", "anthropic SDK / HTTP client"),
    ("/httpx", "anthropic SDK / HTTP client"),
    ("/httpcore/", "anthropic SDK / HTTP client"),
    ("/aiohttp/", "anthropic SDK / HTTP client"),
    ("/anyio/", "anthropic SDK / HTTP client"),
    ("/h11/", "anthropic SDK / HTTP client"),
    ("/yarl/", "anthropic SDK / HTTP client"),
    ("/multidict/", "anthropic SDK / HTTP client"),
    ("/google/_upb/", "protobuf"),
    ("grpc", "grpc.aio"),  # grpc/aio/*.py, cygrpc's Cython and grpc core's C++
    ("/uvloop/", "asyncio loop"),  # uvloop (the default loop) and its libuv
    ("/libuv", "asyncio loop"),
    ("_asynciomodule.c", "asyncio loop"),  # C tasks and futures
    ("/asyncio/", "asyncio loop"),
    ("/logging/", "logging"),
)


@dataclass
class Profile:
    """One profile, or why there is none (`error`)."""

    error: str = ""
    seconds: int = SECONDS  # the sampling window
    samples: int = 0
    loop: Sample | None = None
    groups: Counter[str] = field(default_factory=Counter)
    top: dict[str, Counter[str]] = field(default_factory=dict)  # group -> frame -> samples


def _frame_file(frame: str) -> str:
    # py-spy's raw frames: "function (/path/to/file.py:123)", "0x7f.. (/path/lib.so)"
    inside = frame.rpartition(" (")[2].removesuffix(")")
    path, _, line = inside.rpartition(":")
    return path if line.isdigit() else inside


def _group(frame: str) -> tuple[str, str] | None:
    path = _frame_file(frame)
    if path.endswith(_ENTRY):
        return None
    for needle, group in _RULES:
        if needle in path:
            function = frame.rpartition(" (")[0]
            return group, f"{function} ({Path(path).parent.name}/{Path(path).name})"
    return None


def _named(found: tuple[str, str], outer: list[str]) -> str:
    """A frame's label, or (for a stripped library's bare address) the label of the
    nearest enclosing frame of the same group that has a name."""
    if not found[1].startswith("0x"):
        return found[1]
    for frame in outer:
        other = _group(frame)
        if other is None or other[0] != found[0]:
            break
        if not other[1].startswith("0x"):
            return other[1]
    return found[1]


def classify(stack: list[str]) -> tuple[str, str]:
    """(group, innermost frame of that group) for one sampled stack, outermost first.

    Loop frames are weak: the loop both drives every task (outermost frames) and is
    called by libraries (`run_in_executor`, a transport's write); a sample counts for the
    loop only when no other group's frame encloses the loop frame."""
    if any(frame.startswith(_GC) for frame in stack):  # a collection, whoever allocated
        return "other", "Python's cyclic GC (gc_collect_main)"
    weak = None
    frames = stack[::-1]
    for i, frame in enumerate(frames):
        found = _group(frame)
        if found is None:
            continue
        if found[0] != "asyncio loop":
            leaf = frames[0].rpartition(" (")[0]
            if found[1].startswith("0x") and i > 0 and not leaf.startswith("0x"):
                return found[0], f"{leaf} in {found[1].rpartition('/')[2].rstrip(')')}"
            return found[0], _named(found, frames[i + 1 :])
        weak = weak or found
    if weak is not None:
        return weak
    leaf = stack[-1] if stack else "?"
    return "other", f"{leaf.rpartition(' (')[0]} ({Path(_frame_file(leaf)).name})"


def parse(raw: str) -> tuple[Counter[str], dict[str, Counter[str]], int]:
    groups: Counter[str] = Counter()
    top: dict[str, Counter[str]] = {}
    total = 0
    for line in raw.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        group, frame = classify(stack_text.split(";"))
        groups[group] += count
        top.setdefault(group, Counter())[frame] += count
        total += count
    return groups, top, total


async def run(
    tool: Tool,
    pid: int,
    call: Call,
    *,
    concurrency: int,
    run_dir: Path,
    cpu_probe: Callable[[], dict[str, float]],
    seconds: int = SECONDS,
) -> Profile:
    """Sample the server `pid` for `seconds` while `call` runs in a closed loop."""
    assert tool.path is not None
    out = run_dir / "py-spy.raw"
    log = run_dir / "py-spy.log"
    await warm_up(call, 40, concurrency)
    with log.open("wb") as err:
        spy = await asyncio.create_subprocess_exec(
            str(tool.path),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(RATE),
            "--duration",
            str(seconds),
            *SPY_FLAGS,
            "--format",
            "raw",
            "--output",
            str(out),
            stdout=err,
            stderr=err,
        )
    try:
        # The loop outlasts the sampling window (py-spy takes a moment to attach).
        loop = await closed_loop(
            "rest_complete",
            call,
            concurrency=concurrency,
            max_count=10**9,
            max_seconds=seconds + 1.0,
            cpu_probe=cpu_probe,
        )
        code = await asyncio.wait_for(spy.wait(), 30)
    finally:
        if spy.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                spy.kill()
            await spy.wait()
    if code != 0 or not out.exists():
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        return Profile(error=f"`py-spy record --pid` failed (exit {code}): {' | '.join(tail)}")
    raw = out.read_text(encoding="utf-8", errors="replace")
    with contextlib.suppress(OSError):  # kept for a closer look (a flamegraph, grep)
        KEEP.parent.mkdir(parents=True, exist_ok=True)
        KEEP.write_text(raw, encoding="utf-8")
    groups, top, total = parse(raw)
    return Profile(seconds=seconds, samples=total, loop=loop, groups=groups, top=top)


def render(p: Profile | None, *, litellm_ms: float | None, envoy_ms: float | None) -> list[str]:
    """The "where the time goes" table; the floor and the distance to 10x LiteLLM."""
    out = ["## F. Where the chatplane server's CPU goes (REST complete, concurrency 20)", ""]
    if p is None or p.error or p.loop is None or not p.loop.count or not p.samples:
        reason = p.error if p is not None and p.error else "not run"
        return [*out, f"**Not profiled in this run**: {reason}", ""]
    loop = p.loop
    server_ms = loop.cpu.get("chatplane server", float("nan")) * 1000 / loop.count
    out += [
        f"py-spy {PY_SPY.split('==')[1]} sampled the server at {RATE} Hz for {p.seconds} s "
        f"(`{' '.join(SPY_FLAGS)}`: {p.samples} samples of the thread holding the GIL, "
        f"Cython and C frames included) while {loop.count} calls ran ({fmt(loop.rps, 0)} "
        f"req/s; server CPU {fmt(server_ms, 3)} ms per call, from /proc). A sample counts for the "
        "innermost frame of a known group (library code called by our code counts as that "
        "library; stdlib, C internals and unknown packages count for their caller). CPU ms "
        "per call = share x the server's CPU per call: it assumes time holding the GIL is "
        "spread like the CPU time (grpc core's own threads, which run without it, are not "
        "sampled). Sampling slows the server; the shares are the figure to read.",
        "",
        "| group | share | CPU ms per call | what (top frames, % of all samples) |",
        "|---|---|---|---|",
    ]
    rows = [(group, p.groups.get(group, 0) / p.samples * server_ms) for group in GROUPS]
    for group, ms in sorted(rows, key=lambda row: -row[1]):
        frames = p.top.get(group, Counter()).most_common(3)
        what = "; ".join(f"`{name}` {n * 100 / p.samples:.0f}%" for name, n in frames)
        share = p.groups.get(group, 0) * 100 / p.samples
        out.append(f"| {group} | {fmt(share, 1)}% | {fmt(ms, 3)} | {what or '-'} |")
    floor_groups = ("grpc.aio", "asyncio loop")
    floor = sum(ms for group, ms in rows if group in floor_groups)
    out += [""]
    if envoy_ms is not None and not math.isnan(envoy_ms):
        floor += envoy_ms
        out.append(
            f"- Floor of this stack (grpc.aio + the event loop + Envoy's {fmt(envoy_ms, 3)} ms, "
            f"with no work of our own): about **{fmt(floor, 3)} ms of CPU per call**; measured "
            f"now, server + Envoy: {fmt(server_ms + envoy_ms, 3)} ms."
        )
        if litellm_ms is not None and not math.isnan(litellm_ms):
            goal = litellm_ms / 10
            out.append(
                f"- 10x LiteLLM's CPU per call ({fmt(litellm_ms, 3)} ms, section E) is "
                f"{fmt(goal, 3)} ms: {fmt(server_ms + envoy_ms - goal, 3)} ms to go, of which the "
                f"floor leaves at most {fmt(max(0.0, server_ms + envoy_ms - floor), 3)} ms "
                "that code changes on this stack can remove"
                + (
                    " (the floor alone is above the goal: 10x needs a different stack)."
                    if floor > goal
                    else "."
                )
            )
    out.append("")
    return out


async def _standalone(seconds: int, concurrency: int) -> list[str]:
    """Fake upstream, server and Envoy of their own; the profile of REST complete."""
    import tempfile  # noqa: PLC0415

    from bench import procs, sidevenv  # noqa: PLC0415
    from bench.clients import Clients  # noqa: PLC0415

    tool = (await sidevenv.ensure(litellm=False, py_spy=True))["py-spy"]
    if tool.path is None:
        return render(Profile(error=tool.error), litellm_ms=None, envoy_ms=None)
    with tempfile.TemporaryDirectory(prefix="chatplane-profile-") as tmp:
        run_dir = Path(tmp)
        fake, fake_port = await procs.start_fake(run_dir)
        server, grpc_port = await procs.start_server(run_dir, fake_port)
        envoy = await procs.start_envoy(run_dir, grpc_port)
        clients = Clients(
            rest_base=f"http://127.0.0.1:{envoy.http_port}",
            grpc_port=grpc_port,
            fake_base=f"http://127.0.0.1:{fake_port}",
            api_key=procs.BOOTSTRAP_KEY,
            fake_key=procs.FAKE_API_KEY,
        )
        try:
            await clients.open()
            await clients.create_project()
            pids = {"chatplane server": server.pid, "Envoy": envoy.pid}

            def probe() -> dict[str, float]:
                return {name: procs.cpu_seconds(pid) for name, pid in pids.items()}

            result = await run(
                tool,
                server.pid,
                clients.calls()["rest_complete"],
                concurrency=concurrency,
                run_dir=run_dir,
                cpu_probe=probe,
                seconds=seconds,
            )
        finally:
            await clients.close()
            await envoy.stop()
            await server.stop()
            await fake.stop()
    loop = result.loop
    envoy_ms = loop.cpu["Envoy"] * 1000 / loop.count if loop and loop.count else None
    return render(result, litellm_ms=None, envoy_ms=envoy_ms)


def main(argv: list[str] | None = None) -> int:
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--seconds", type=int, default=SECONDS)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args(argv)
    print("\n".join(asyncio.run(_standalone(args.seconds, args.concurrency))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
